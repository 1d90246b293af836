"""RemoveChunkSeams: ComfyUI adapter over deflicker_impl.seams."""

from __future__ import annotations

from ..deflicker_impl.seams import SeamConfig, describe_seams, remove_chunk_seams
from ..deflicker_impl.threads import with_pack_threads
from .host import finish, io, node_schema, progress_callback

_SEAMS = SeamConfig()


class RemoveChunkSeams(io.ComfyNode):
    """Removes the colour steps that sliding-window video generators (Wan and others) leave
    where one generated chunk meets the next: a change of the whole frame's colour from one
    frame to the next that stays. Every chunk takes the colour of the first. Put it right
    after the generator, before FitNeuralAtlas, so the atlas never holds a chunk's colour. A
    light switched on at one frame looks the same and is removed too."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "RemoveChunkSeams", "Remove Chunk Seams (deflicker)", inputs=[
            io.Image.Input("images", tooltip="The generated clip, in playback order."),
            io.Float.Input(
                "min_levels", optional=True, default=_SEAMS.min_levels, min=0.5, max=64.0,
                step=0.5,
                tooltip="Smallest step taken for a seam, in 8-bit levels of its strongest "
                        "channel. Lower finds fainter seams; the step must also stand far out "
                        "of the clip's own frame-to-frame change and be held on both sides."),
        ], outputs=[
            io.Image.Output(display_name="images",
                            tooltip="The clip with every seam's step taken out of the frames "
                                    "after it; unchanged when none is found."),
            io.String.Output(display_name="seams",
                             tooltip="Where seams were found and each one's step per channel "
                                     "(8-bit levels)."),
        ])

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, images, min_levels=_SEAMS.min_levels) -> io.NodeOutput:
        out, seams = remove_chunk_seams(images, SeamConfig(enabled=True, min_levels=min_levels),
                                        on_progress=progress_callback())
        return io.NodeOutput(finish(out), describe_seams(seams))
