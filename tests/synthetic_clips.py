"""Small generated clips for core tests (torch, [T,H,W,3] float in 0..1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_texture(h: int, w: int, seed: int = 0, detail: int = 12) -> torch.Tensor:
    """[3,h,w] smooth random colour texture with some mid-frequency structure."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, detail, detail * w // max(h, 1) + 2, generator=gen)
    fine = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
    return (0.15 + 0.7 * fine).clamp(0, 1)


def panning_clip(frames: int = 12, h: int = 48, w: int = 64, speed: float = 1.0,
                 seed: int = 0, detail: int = 12) -> torch.Tensor:
    """A camera panning right over a static textured scene by `speed` pixels per frame."""
    margin = int(abs(speed) * frames) + 4
    scene = smooth_texture(h, w + margin, seed, detail)
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    out = []
    for t in range(frames):
        x = xs + 2 + speed * t
        grid = torch.stack((2 * x / (w + margin - 1) - 1, 2 * ys / (h - 1) - 1), -1)[None]
        out.append(F.grid_sample(scene[None], grid, align_corners=True)[0].permute(1, 2, 0))
    return torch.stack(out).clamp(0, 1)


def global_gain_flicker(clip: torch.Tensor, strength: float = 0.25, seed: int = 1) -> torch.Tensor:
    """Per-frame per-channel gain flicker with mean gain 1 over the clip."""
    gen = torch.Generator().manual_seed(seed)
    gains = 1 + strength * (torch.rand(clip.shape[0], 3, generator=gen) * 2 - 1)
    gains = gains / gains.mean(0, keepdim=True)
    return (clip * gains[:, None, None, :]).clamp(0, 1)
