"""Inputs that several nodes share, declared once (same name, default and tooltip everywhere)."""

from __future__ import annotations

from ..deflicker_impl.flicker_field import FlickerFieldConfig

_FIELD = FlickerFieldConfig()

STRENGTH = ("FLOAT", {
    "default": _FIELD.strength, "min": 0.0, "max": 1.0, "step": 0.05,
    "tooltip": "How much of the correction to apply: 1 = all of it, 0 = the input unchanged, "
               "0.5 = half way (a gentler look, or to judge what the node does).",
})
FAITHFUL = ("BOOLEAN", {
    "default": False,
    "tooltip": "Faithful colour: take the atlas's colour only where the atlas shows the "
               "frame's content (its confidence) and carry the flicker correction measured "
               "there to the rest of the frame; keep changes longer than flicker_window (the "
               "scene's own light). Best on generated clips with turning characters, appearing "
               "objects, fades or lamps. Off: the atlas's colour everywhere, strongest on "
               "steady flicker and old film.",
})
FLICKER_WINDOW = ("INT", {
    "default": _FIELD.flicker_window, "min": 0, "max": 1000, "step": 1,
    "tooltip": "Frames a change must last to count as the scene's own light: a lamp switched "
               "on, a fade, a grade that drifts are kept; faster changes that come back "
               "(flicker) are removed. A flash shorter than this is treated as flicker. "
               "0 = keep no persistent change: every colour step is removed, e.g. the seams "
               "that sliding-window generators (Wan and others) leave between chunks. Used "
               "with faithful colour.",
})
REFINE_FLICKER_WINDOW = ("INT", {
    "default": 0, "min": 0, "max": 1000, "step": 1,
    "tooltip": "Changes of colour this node makes that last longer than this many frames are "
               "taken out again, so it never lags behind a fade or a lamp; 0 = off. With "
               "faithful colour in NeuralFilter, set the same flicker_window here.",
})
