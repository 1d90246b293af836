"""ComfyUI nodes of the pack: thin adapters over deflicker_impl on the host's declarative node
schema (node ids never change). The host finds them through `comfy_entrypoint`."""

from __future__ import annotations

from .atlas import FitNeuralAtlas
from .evaluation import DeflickerCompare, DeflickerMetrics
from .filter import NeuralFilter
from .host import ComfyExtension, io, provide_demo_clip
from .refine import LocalFlickerRefine
from .sam import DeflickerSAMLoader, DeflickerSAMVideoMask
from .seams import RemoveChunkSeams

NODES: list[type[io.ComfyNode]] = [
    FitNeuralAtlas,
    NeuralFilter,
    LocalFlickerRefine,
    DeflickerMetrics,
    DeflickerCompare,
    DeflickerSAMLoader,
    DeflickerSAMVideoMask,
    RemoveChunkSeams,
]


class DeflickerExtension(ComfyExtension):
    async def on_load(self) -> None:
        # The example workflows' LoadVideo reads the demo clip from ComfyUI's input folder.
        provide_demo_clip()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> DeflickerExtension:
    extension = DeflickerExtension()
    # ComfyUI 0.3.75 awaits this entry point and get_node_list(), but never on_load(); run it
    # here. It is idempotent, so a host that calls it as well does no harm.
    await extension.on_load()
    return extension
