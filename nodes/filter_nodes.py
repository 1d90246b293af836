"""NeuralFilter: ComfyUI adapter over deflicker_impl.neural_filter."""

from __future__ import annotations

from dataclasses import replace

from ..deflicker_impl.atlas.confidence import confidence_from_mask
from ..deflicker_impl.filter.apply import DEFAULT_WEIGHTS_NAME, FilterConfig, apply_neural_filter
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
from .inputs import FAITHFUL, FLICKER_WINDOW, STRENGTH


class NeuralFilter:
    """Structure from the original frames, colour and brightness from the atlas frames."""

    DESCRIPTION = (
        "Combines each original frame (sharp but flickering) with its atlas frame (steady but "
        "flawed) through a trained U-Net: the result keeps the frame's detail and the atlas's "
        "steady colour. Connect FitNeuralAtlas's atlas_frames. With faithful on (and "
        "FitNeuralAtlas's confidence connected), the atlas's colour is used only where the atlas "
        "shows the frame's content, and the scene's own light changes (longer than "
        "flicker_window) are kept."
    )
    CATEGORY = CATEGORY
    FUNCTION = "filter"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The deflickered frames, same count and size as the input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The original (flickering) frames."}),
                "atlas_frames": ("IMAGE", {
                    "tooltip": "FitNeuralAtlas's atlas_frames for the same clip (same frame "
                               "count and size)."}),
                "weights": (weight_choices(DEFAULT_WEIGHTS_NAME, "neural_filter"), {
                    "default": DEFAULT_WEIGHTS_NAME,
                    "tooltip": "Filter weights: the pack's shipped file, or a .safetensors "
                               "trained with this pack and placed in models/deflicker.",
                }),
            },
            "optional": {
                "atlas": ("NEURAL_ATLAS", {
                    "tooltip": "FitNeuralAtlas's atlas (optional): its scene cuts tell this "
                               "node where shots start, so nothing carries over a cut. Not "
                               "connected: the cuts are detected on these images."}),
                "strength": STRENGTH,
                "faithful": FAITHFUL,
                "flicker_window": FLICKER_WINDOW,
                "confidence": ("MASK", {
                    "tooltip": "FitNeuralAtlas's confidence (optional; measured here when not "
                               "connected). Any mask of the clip's frame count works, e.g. an "
                               "edited one: 0 = never take the atlas's colour here."}),
            },
        }

    @with_pack_threads  # the pack's thread count; the host's is restored after
    def filter(self, images, atlas_frames, weights, atlas=None, strength=1.0, faithful=False,
               flicker_window=10, confidence=None):
        base = FilterConfig()
        config = FilterConfig(weights_path=resolve_weights(weights, DEFAULT_WEIGHTS_NAME),
                              device=compute_device(), faithful=faithful,
                              flicker=replace(base.flicker, strength=strength,
                                              flicker_window=flicker_window))
        confidence = confidence_from_mask(confidence, images.shape[0], tuple(images.shape[1:3]),
                                          base.confidence) \
            if confidence is not None and faithful else None
        out = apply_neural_filter(images, atlas_frames, config, on_progress=progress_callback(),
                                  shot_starts=shot_starts_of(images, atlas),
                                  confidence=confidence)
        return (finish(out),)
