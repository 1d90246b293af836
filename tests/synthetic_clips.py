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


def moving_object_clip(frames: int = 12, h: int = 48, w: int = 64, pan: float = 1.0,
                       speed: float = 2.5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured ellipse moving right over a panning background -> (clip [T,H,W,3], masks [T,H,W]).

    The object's texture moves with it (rigid), the background pans by `pan` px/frame, the
    object crosses the frame at `speed` px/frame: one atlas cannot follow both motions.
    """
    background = panning_clip(frames, h, w, pan, seed)
    texture = smooth_texture(h, w, seed + 7, detail=6)
    texture = texture[[2, 0, 1]] * 0.6 + 0.4 * (texture.mean(0, keepdim=True) > 0.5).float()
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    ry, rx = 0.3 * h, 0.22 * w
    clips, masks = [], []
    for t in range(frames):
        cx = 0.25 * w + speed * t
        mask = (((xs - cx) / rx) ** 2 + ((ys - 0.5 * h) / ry) ** 2 <= 1.0).float()
        # Object pixel (x, y) shows its texture at (x - cx + w/2, y): it moves rigidly.
        grid = torch.stack((2 * (xs - cx + w / 2) / (w - 1) - 1, 2 * ys / (h - 1) - 1), -1)[None]
        obj = F.grid_sample(texture[None], grid, align_corners=True)[0].permute(1, 2, 0)
        clips.append(background[t] * (1 - mask[..., None]) + obj * mask[..., None])
        masks.append(mask)
    return torch.stack(clips).clamp(0, 1), torch.stack(masks)
