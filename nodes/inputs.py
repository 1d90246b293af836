"""Types and inputs that several nodes share, declared once (same name, default and tooltip
everywhere). Each function returns a fresh input: a schema owns its inputs."""

from __future__ import annotations

from ..deflicker_impl.flicker_field import FlickerFieldConfig
from ..deflicker_impl.pipeline import FAITHFUL_SMOOTH_NODES
from .host import check_choices, io, weight_choices

_FIELD = FlickerFieldConfig()

# Custom types between our nodes are plain names; the object is any Python object.
NeuralAtlasType = io.Custom("NEURAL_ATLAS")
SamType = io.Custom("DEFLICKER_SAM")  # prefixed: Impact Pack owns "SAM_MODEL"


def weights_input(default_name: str, prefix: str, stage: str) -> io.Combo.Input:
    """The weights combo of a trained stage: the shipped file first, then files in
    models/deflicker whose name starts with `prefix` (listed anew each time the editor asks)."""
    return io.Combo.Input(
        "weights", options=weight_choices(default_name, prefix), default=default_name,
        tooltip=f"{stage} weights: the pack's shipped file, or a .safetensors trained with this "
                "pack and placed in models/deflicker.")


class ChecksWeights:
    """For a node whose one combo is `weights_input`: an unknown file is refused up front."""

    @classmethod
    def validate_inputs(cls, weights) -> bool | str:
        return check_choices(cls, weights=weights)


def atlas_input() -> io.Input:
    return NeuralAtlasType.Input(
        "atlas", optional=True,
        tooltip="FitNeuralAtlas's atlas (optional): its scene cuts tell this node where shots "
                "start, so nothing carries over a cut. Not connected: the cuts are detected on "
                "these images.")


def strength_input() -> io.Float.Input:
    return io.Float.Input(
        "strength", optional=True, default=_FIELD.strength, min=0.0, max=1.0, step=0.05,
        tooltip="How much of the correction to apply: 1 = all of it, 0 = the input unchanged, "
                "0.5 = half way (a gentler look, or to judge what the node does).")


def faithful_input() -> io.Boolean.Input:
    return io.Boolean.Input(
        "faithful", optional=True, default=False,
        tooltip="Faithful colour: take the atlas's colour only where the atlas shows the "
                "frame's content (its confidence) and carry the flicker correction measured "
                "there to the rest of the frame; keep changes longer than flicker_window (the "
                "scene's own light). Best on generated clips with turning characters, appearing "
                "objects, fades or lamps. Off: the atlas's colour everywhere, strongest on "
                "steady flicker and old film.")


_FILTER_WINDOW_TOOLTIP = (
    "Frames a change must last to count as the scene's own light: a lamp switched on, a fade, "
    "a grade that drifts are kept; faster changes that come back (flicker) are removed. A flash "
    "shorter than this is treated as flicker, and so is a frame-wide change that goes up and "
    "comes back within a shot (a lamp switched on and off again is partly flattened). "
    "0 = keep no persistent change: every colour step "
    "is removed, e.g. the seams that sliding-window generators (Wan and others) leave between "
    "chunks (Remove Chunk Seams before the atlas removes those more exactly and keeps the "
    "scene's light). Used with faithful colour.")
_REFINE_WINDOW_TOOLTIP = (
    "Changes of colour this node makes that last longer than this many frames are taken out "
    "again, so it never lags behind a fade or a lamp; 0 = off. With faithful colour in "
    "NeuralFilter, set the same flicker_window here.")


def _window_input(default: int, tooltip: str) -> io.Int.Input:
    return io.Int.Input("flicker_window", optional=True, default=default, min=0, max=1000, step=1,
                        tooltip=tooltip)


def flicker_window_input() -> io.Int.Input:
    """NeuralFilter's window: how long a change lasts to count as the scene's own light."""
    return _window_input(_FIELD.flicker_window, _FILTER_WINDOW_TOOLTIP)


def refine_flicker_window_input() -> io.Int.Input:
    """LocalFlickerRefine's window: how long a change it makes may last (its drift bound)."""
    return _window_input(0, _REFINE_WINDOW_TOOLTIP)


def refine_smooth_nodes_input() -> io.Int.Input:
    """LocalFlickerRefine's smooth change: its colour change kept as a smooth field."""
    return io.Int.Input(
        "smooth_nodes", optional=True, default=0, min=0, max=64, step=1,
        tooltip="Keep this node's change only as a smooth colour field with this many nodes "
                "across the frame's long side: smooth flicker is still removed, but colour "
                "carried along a wrong motion estimate (ghosts on turning characters and other "
                "generated motion) is not, so a clean clip comes back far less changed. "
                "0 = per pixel, as the network makes it (1 is refused). With faithful colour in "
                f"NeuralFilter, use {FAITHFUL_SMOOTH_NODES} (what the command line's --faithful "
                "uses).")
