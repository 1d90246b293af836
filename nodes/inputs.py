"""Inputs that several nodes share, declared once (same name, default and tooltip everywhere)."""

from __future__ import annotations

from ..deflicker_impl.flicker_field import FlickerFieldConfig

_FIELD = FlickerFieldConfig()

STRENGTH = ("FLOAT", {
    "default": _FIELD.strength, "min": 0.0, "max": 1.0, "step": 0.05,
    "tooltip": "How much of the correction to apply: 1 = all of it, 0 = the input unchanged, "
               "0.5 = half way (a gentler look, or to judge what the node does).",
})
FLICKER_WINDOW = ("INT", {
    "default": _FIELD.flicker_window, "min": 0, "max": 1000, "step": 1,
    "tooltip": "Frames a change must last to count as the scene's own light: a lamp switched "
               "on, a fade, a grade that drifts are kept; faster changes that come back "
               "(flicker) are removed. A flash shorter than this is treated as flicker. "
               "0 = keep no persistent change: every colour step is removed, e.g. the seams "
               "that sliding-window generators (Wan and others) leave between chunks.",
})
