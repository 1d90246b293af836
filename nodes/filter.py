"""NeuralFilter: ComfyUI adapter over deflicker_impl.filter.apply."""

from __future__ import annotations

from dataclasses import replace

from ..deflicker_impl.atlas.confidence import confidence_from_mask
from ..deflicker_impl.filter.apply import DEFAULT_WEIGHTS_NAME, FilterConfig, apply_neural_filter
from ..deflicker_impl.shots import shot_starts_of
from ..deflicker_impl.threads import with_pack_threads
from .host import compute_device, finish, io, node_schema, progress_callback, resolve_weights
from .inputs import (
    ChecksWeights,
    atlas_input,
    faithful_input,
    flicker_window_input,
    strength_input,
    weights_input,
)


class NeuralFilter(ChecksWeights, io.ComfyNode):
    """Combines each original frame (sharp but flickering) with its atlas frame (steady but
    flawed) through a trained U-Net: the result keeps the frame's detail and the atlas's steady
    colour. Connect FitNeuralAtlas's atlas_frames. With faithful on (and FitNeuralAtlas's
    confidence connected), the atlas's colour is used only where the atlas shows the frame's
    content, and the scene's own light changes (longer than flicker_window) are kept."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "NeuralFilter", "Neural Filter (deflicker)", inputs=[
            io.Image.Input("images", tooltip="The original (flickering) frames."),
            io.Image.Input(
                "atlas_frames",
                tooltip="FitNeuralAtlas's atlas_frames for the same clip (same frame count "
                        "and size)."),
            weights_input(DEFAULT_WEIGHTS_NAME, "neural_filter", "Filter"),
            atlas_input(),
            strength_input(),
            faithful_input(),
            flicker_window_input(),
            io.Mask.Input(
                "confidence", optional=True,
                tooltip="FitNeuralAtlas's confidence (optional; measured here when not "
                        "connected). Any mask of the clip's frame count works, e.g. an "
                        "edited one: 0 = never take the atlas's colour here."),
        ], outputs=[
            io.Image.Output(display_name="images",
                            tooltip="The deflickered frames, same count and size as the input."),
        ])

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, images, atlas_frames, weights, atlas=None, strength=1.0, faithful=False,
                flicker_window=10, confidence=None) -> io.NodeOutput:
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
        return io.NodeOutput(finish(out))
