"""The fitted atlas as one object: what FitNeuralAtlas returns and later stages consume."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..progress import ProgressFn
from .config import AtlasConfig


@dataclass
class NeuralAtlas:
    """A fitted atlas of a clip of `num_frames` frames of size `frame_hw` (H, W).

    `model` renders frames and a texture preview (TextureAtlasModel or MLPAtlasModel); it lives
    on the CPU between uses so that it can travel between ComfyUI nodes.
    `stats` records the fit (seconds, iterations, final losses) for reports.
    """

    config: AtlasConfig
    num_frames: int
    frame_hw: tuple[int, int]
    model: object
    stats: dict = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        """1, or 2 for a foreground/background atlas fitted with masks."""
        return int(getattr(self.model, "num_layers", 1))

    def render(self, start: int, stop: int, device: torch.device | None = None) -> torch.Tensor:
        """Atlas reconstruction of frames [start, stop) at the clip's size -> [n,H,W,3] on CPU."""
        return self.model.render(start, stop, self.frame_hw, device)

    def texture_preview(self) -> torch.Tensor:
        """The shared atlas image as [1,h,w,3] in 0..1 (two layers: foreground | background)."""
        return self.model.texture_preview()


def render_atlas_frames(
    atlas: NeuralAtlas,
    chunk: int = 0,
    device: torch.device | None = None,
    on_progress: ProgressFn | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Render every frame of the atlas at the clip's own size -> [T,H,W,3] on CPU.

    `atlas` is a NeuralAtlas or a ClipAtlas (anything with num_frames, frame_hw and render).
    `chunk` frames are rendered at a time; 0 picks a chunk of about 4 megapixels, which bounds
    the temporary memory at 4K as well as at 256 px. `dtype` float32 (0..1), float16 (0..1) or
    uint8 (0..255, a quarter of the memory: what the pipeline keeps for long clips).
    """
    h, w = atlas.frame_hw
    chunk = chunk or render_chunk_frames(atlas.frame_hw)
    out = torch.empty(atlas.num_frames, h, w, 3, dtype=dtype)
    for start in range(0, atlas.num_frames, chunk):
        stop = min(start + chunk, atlas.num_frames)
        out[start:stop] = render_as(atlas, start, stop, device, dtype)
        if on_progress is not None:
            on_progress(stop, atlas.num_frames)
    return out


def render_chunk_frames(frame_hw: tuple[int, int]) -> int:
    """Frames rendered at a time by default: about 4 megapixels."""
    return max(1, (1 << 22) // (frame_hw[0] * frame_hw[1]))


def render_as(atlas, start: int, stop: int, device: torch.device | None,
              dtype: torch.dtype) -> torch.Tensor:
    """Frames [start, stop) of an atlas (NeuralAtlas or ClipAtlas) in `dtype` [n,H,W,3]
    (uint8: 0..255, rounded)."""
    part = atlas.render(start, stop, device)
    if dtype == torch.uint8:
        return part.clamp(0, 1).mul_(255.0).add_(0.5).to(torch.uint8)
    return part.to(dtype)
