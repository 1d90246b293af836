"""Shared spatial helpers of the networks' stages: clip chunks as batches, tiles and padding.

The filter and the refinement run their nets on chunks of a clip (`chunk_as_batch`), split
very large frames into overlapping tiles (`tile_windows`, from `tile_starts`) and blend the
tiles with linear ramps (`blend_ramp`); the nets pad their inputs to a multiple of their stride
(`pad_to_multiple`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .device import preferred_memory_format
from .errors import DeflickerInputError


def chunk_as_batch(
    clip: torch.Tensor, start: int, stop: int, name: str, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """clip[start:stop] [t,H,W,C] (C in 1/3/4, float 0..1 or uint8) -> [t,3,H,W] on device."""
    part = clip[start:stop]
    if not part.dtype.is_floating_point:
        part = part.float() / 255.0
    part = part.float()
    bad = ~torch.isfinite(part).flatten(1).all(dim=1)
    if bool(bad.any()):
        index = start + int(bad.nonzero()[0])
        raise DeflickerInputError(
            f"{name} frame {index} contains NaN or infinite values; fix the node that produced "
            "it (often a VAE decode in fp16)."
        )
    if part.shape[-1] == 1:
        part = part.expand(-1, -1, -1, 3)
    part = part[..., :3].clamp(0.0, 1.0)
    return part.permute(0, 3, 1, 2).to(device=device, dtype=dtype).contiguous(
        memory_format=preferred_memory_format(device))


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """First pixels of the tiles that cover `size` pixels with tiles of `tile` sharing at least
    `overlap` pixels; the last tile ends at the edge."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def tile_overlap(tile: int, overlap: int) -> int:
    """The overlap actually used: at most half a tile, never negative."""
    return max(0, min(overlap, tile // 2))


def tile_windows(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the tiles of an h x w frame, row by row; one window for the whole
    frame when `tile` <= 0 or the frame fits in one tile."""
    if tile <= 0 or (h <= tile and w <= tile):
        return [(0, h, 0, w)]
    overlap = tile_overlap(tile, overlap)
    return [(y0, min(h, y0 + tile), x0, min(w, x0 + tile))
            for y0 in tile_starts(h, tile, overlap) for x0 in tile_starts(w, tile, overlap)]


def blend_ramp(length: int, overlap: int, fade_in: bool, fade_out: bool,
               like: torch.Tensor) -> torch.Tensor:
    """[length] weights: linear ramps over `overlap` pixels at the sides shared with a neighbour."""
    ramp = torch.ones(length, device=like.device, dtype=like.dtype)
    if overlap > 0:
        edge = torch.arange(1, overlap + 1, device=like.device, dtype=like.dtype) / (overlap + 1)
        if fade_in:
            ramp[:overlap] = torch.minimum(ramp[:overlap], edge)
        if fade_out:
            ramp[-overlap:] = torch.minimum(ramp[-overlap:], edge.flip(0))
    return ramp


def tile_mask(window: tuple[int, int, int, int], overlap: int, h: int, w: int,
              like: torch.Tensor) -> torch.Tensor:
    """[y1-y0, x1-x0] blending weights of one tile window of an h x w frame."""
    y0, y1, x0, x1 = window
    return (blend_ramp(y1 - y0, overlap, y0 > 0, y1 < h, like)[:, None]
            * blend_ramp(x1 - x0, overlap, x0 > 0, x1 < w, like)[None, :])


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad [N,C,H,W] at the bottom/right to multiples of `multiple`: reflect where the image is
    large enough, replicate where it is not (reflect cannot pad more than size - 1)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
