"""Coordinate systems shared by the atlas models.

Frame space: a pixel centre (x, y) of a W x H frame maps to aspect-preserving coordinates
  q = ((2x + 1 - W) / L, (2y + 1 - H) / L),  L = max(W, H),
so the frame spans [-W/L, W/L] x [-H/L, H/L] at every resolution: a mapping fitted at low
resolution applies unchanged to the full-resolution frame.
"""

from __future__ import annotations

import torch


def frame_coordinates(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """[h,w,2] aspect-preserving coordinates (x, y) of the pixel centres of an h x w frame."""
    long_side = float(max(h, w))
    xs = (2.0 * torch.arange(w, device=device, dtype=torch.float32) + 1.0 - w) / long_side
    ys = (2.0 * torch.arange(h, device=device, dtype=torch.float32) + 1.0 - h) / long_side
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


def frame_extent(h: int, w: int) -> tuple[float, float]:
    """Half-width and half-height of the frame in aspect-preserving coordinates."""
    long_side = float(max(h, w))
    return w / long_side, h / long_side


def to_grid_sample(q: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Aspect-preserving coordinates -> grid_sample's [-1, 1] (align_corners=False) of a frame."""
    half_w, half_h = frame_extent(h, w)
    return q / torch.tensor([half_w, half_h], dtype=q.dtype, device=q.device)
