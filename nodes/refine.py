"""LocalFlickerRefine: ComfyUI adapter over deflicker_impl.refine.apply."""

from __future__ import annotations

from ..deflicker_impl.refine.apply import DEFAULT_WEIGHTS_NAME, RefineConfig, apply_local_refine
from ..deflicker_impl.shots import shot_starts_of
from ..deflicker_impl.threads import with_pack_threads
from .host import compute_device, finish, io, node_schema, progress_callback, resolve_weights
from .inputs import (
    ChecksWeights,
    atlas_input,
    refine_flicker_window_input,
    refine_smooth_nodes_input,
    strength_input,
    weights_input,
)


class LocalFlickerRefine(ChecksWeights, io.ComfyNode):
    """A small recurrent network that looks at the previous output and steadies regions whose
    colour or brightness still pulses after the neural filter. It aligns the previous frame
    with optical flow and can only change local colour, never structure. Runs frame by frame
    with bounded memory. Connect NeuralFilter's images."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "LocalFlickerRefine", "Local Flicker Refine (deflicker)", inputs=[
            io.Image.Input(
                "images",
                tooltip="Filtered frames (NeuralFilter's output), in playback order."),
            weights_input(DEFAULT_WEIGHTS_NAME, "local_refine", "Refinement"),
            atlas_input(),
            strength_input(),
            refine_flicker_window_input(),
            refine_smooth_nodes_input(),
        ], outputs=[
            io.Image.Output(display_name="images",
                            tooltip="The refined frames, same count and size as the input."),
        ])

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, images, weights, atlas=None, strength=1.0, flicker_window=0,
                smooth_nodes=0) -> io.NodeOutput:
        config = RefineConfig(weights_path=resolve_weights(weights, DEFAULT_WEIGHTS_NAME),
                              device=compute_device(), strength=strength,
                              flicker_window=flicker_window, smooth_nodes=smooth_nodes)
        out = apply_local_refine(images, config, on_progress=progress_callback(),
                                 shot_starts=shot_starts_of(images, atlas))
        return io.NodeOutput(finish(out))
