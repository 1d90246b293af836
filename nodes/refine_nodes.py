"""LocalFlickerRefine: ComfyUI adapter over deflicker_impl.local_refine."""

from __future__ import annotations

from ..deflicker_impl.refine.apply import DEFAULT_WEIGHTS_NAME, RefineConfig, apply_local_refine
from ..deflicker_impl.threads import with_pack_threads
from .comfy_glue import (
    CATEGORY,
    compute_device,
    finish,
    progress_callback,
    resolve_weights,
    shot_starts_of,
    weight_choices,
)
from .inputs import REFINE_FLICKER_WINDOW, STRENGTH


class LocalFlickerRefine:
    """Removes the local flicker left after the neural filter, frame after frame."""

    DESCRIPTION = (
        "A small recurrent network that looks at the previous output and steadies regions whose "
        "colour or brightness still pulses after the neural filter. It aligns the previous "
        "frame with optical flow and can only change local colour, never structure. Runs "
        "frame by frame with bounded memory. Connect NeuralFilter's images."
    )
    CATEGORY = CATEGORY
    FUNCTION = "refine"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The refined frames, same count and size as the input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Filtered frames (NeuralFilter's output), in "
                                                "playback order."}),
                "weights": (weight_choices(DEFAULT_WEIGHTS_NAME, "local_refine"), {
                    "default": DEFAULT_WEIGHTS_NAME,
                    "tooltip": "Refinement weights: the pack's shipped file, or a .safetensors "
                               "trained with this pack and placed in models/deflicker.",
                }),
            },
            "optional": {
                "atlas": ("NEURAL_ATLAS", {
                    "tooltip": "FitNeuralAtlas's atlas (optional): its scene cuts tell this "
                               "node where shots start, so nothing carries over a cut. Not "
                               "connected: the cuts are detected on these images."}),
                "strength": STRENGTH,
                "flicker_window": REFINE_FLICKER_WINDOW,
            },
        }

    @with_pack_threads  # the pack's thread count; the host's is restored after
    def refine(self, images, weights, atlas=None, strength=1.0, flicker_window=0):
        config = RefineConfig(weights_path=resolve_weights(weights, DEFAULT_WEIGHTS_NAME),
                              device=compute_device(), strength=strength,
                              flicker_window=flicker_window)
        out = apply_local_refine(images, config, on_progress=progress_callback(),
                                 shot_starts=shot_starts_of(images, atlas))
        return (finish(out),)
