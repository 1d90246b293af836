"""Inputs of the two-layer benchmark: clips where an object moves against its background, with
foreground masks.

- COCO composites (ground truth): an ellipse cut from one COCO photo (the "object", rigid,
  with its own texture) crosses a second COCO photo that pans; the true soft mask is known.
  Flickered with `add_synthetic_flicker` (W = 1, 3, 10) like the main benchmark.
- Real clip: the per-frame colorized DAVIS "goat" (../shared/clips, real colour flicker, the
  goat walks and turns while the camera pans). No SAM checkpoint exists offline, so its masks
  are ellipses placed by hand on 6 key frames (looking at the frames) and interpolated linearly
  in between (`keyframed_ellipse_masks`): rough masks (the ellipse covers some background, the
  head sometimes pokes out), as a quick user prompt would give.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deflicker_impl.evaluation.synthetic import add_synthetic_flicker

from .datasets import REAL_CLIPS, SHARED_CLIPS, BenchInput, load_clip

COCO_DIR = SHARED_CLIPS.parent / "data" / "coco128" / "images" / "train2017"
# name -> (background photo, object photo, object centre in the photo (relative x, y)).
COMPOSITES = {
    "coco_zebra_over_giraffes": ("000000000072.jpg", "000000000034.jpg", (0.55, 0.5)),
    "coco_umbrella_over_jungle": ("000000000061.jpg", "000000000036.jpg", (0.5, 0.42)),
}
# name -> (clip, key frames {frame: (centre x, centre y, radius x, radius y)}, relative to the
# frame; placed by hand on the first 48 frames).
REAL_OBJECT_CLIPS = {
    "goat_colorized": (REAL_CLIPS["goat_colorized"], {
        0: (0.52, 0.45, 0.11, 0.34), 10: (0.595, 0.55, 0.11, 0.31),
        20: (0.67, 0.50, 0.14, 0.23), 30: (0.73, 0.49, 0.14, 0.23),
        40: (0.71, 0.52, 0.12, 0.24), 47: (0.72, 0.52, 0.125, 0.25)}),
}


def _photo(name: str) -> torch.Tensor:
    from PIL import Image

    img = np.asarray(Image.open(COCO_DIR / name).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(img).permute(2, 0, 1)[None]  # [1,3,H,W]


def _sample(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of img [1,3,H,W] at pixel coordinates x, y [h,w] -> [h,w,3]."""
    _, _, hh, ww = img.shape
    grid = torch.stack((2 * x / (ww - 1) - 1, 2 * y / (hh - 1) - 1), -1)[None]
    return F.grid_sample(img, grid, align_corners=True, padding_mode="border")[0].permute(1, 2, 0)


def coco_composite(name: str, frames: int, long_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean clip [T,h,w,3], true foreground masks [T,h,w]) of composite `name` (16:9)."""
    bg_name, obj_name, (ox, oy) = COMPOSITES[name]
    w = long_side
    h = round(long_side * 9 / 16)
    bg, obj = _photo(bg_name), _photo(obj_name)
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    # Background: the photo scaled to cover the frame plus a pan of 0.25 w, centred.
    scale_bg = min(bg.shape[2] / h, bg.shape[3] / (1.25 * w))  # photo px per frame px
    top = 0.5 * (bg.shape[2] - h * scale_bg)
    pan = 0.25 * w / max(frames - 1, 1)  # px per frame
    # Object: an ellipse of 0.55 h x 0.3 w, its texture the photo around (ox, oy) at the scale
    # that fits the photo's height to 1.4 object heights.
    ry, rx = 0.28 * h, 0.15 * w
    scale_obj = obj.shape[2] / (2.8 * ry)
    clips, masks = [], []
    for t in range(frames):
        s = t / max(frames - 1, 1)
        cx = w * (0.22 + 0.56 * s)
        cy = h * (0.5 + 0.12 * np.sin(2 * np.pi * s))
        angle = 0.25 * np.sin(np.pi * s)  # a slight turn as it goes
        background = _sample(bg, (xs + pan * t) * scale_bg, top + ys * scale_bg)
        dx, dy = xs - cx, ys - cy
        c, si = np.cos(angle), np.sin(angle)
        u, v = c * dx + si * dy, -si * dx + c * dy  # object-frame coordinates
        r = torch.sqrt((u / rx) ** 2 + (v / ry) ** 2)
        mask = ((1.0 - r) * min(rx, ry) + 0.5).clamp(0, 1)  # one-pixel soft edge
        colour = _sample(obj, ox * obj.shape[3] + u * scale_obj, oy * obj.shape[2] + v * scale_obj)
        clips.append(background * (1 - mask[..., None]) + colour * mask[..., None])
        masks.append(mask)
    return torch.stack(clips).clamp(0, 1), torch.stack(masks)


def keyframed_ellipse_masks(num_frames: int, h: int, w: int, keys: dict) -> torch.Tensor:
    """Ellipses (relative centre and radii) given on key frames, interpolated linearly in
    between and held after the last key -> masks [T,H,W] with a soft one-pixel edge."""
    frames = sorted(keys)
    table = torch.tensor([keys[k] for k in frames], dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    masks = []
    for t in range(num_frames):
        cx, cy, rx, ry = (float(np.interp(t, frames, table[:, i])) for i in range(4))
        cx, cy, rx, ry = cx * w, cy * h, rx * w, ry * h
        r = torch.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        masks.append(((1.0 - r) * min(rx, ry) + 0.5).clamp(0, 1))
    return torch.stack(masks)


def layered_inputs(frames: int, long_side: int, windows=(1, 3, 10), composites=None,
                   real=None, log=print) -> list[tuple[BenchInput, torch.Tensor]]:
    """(input, foreground masks [T,H,W]) pairs: composites x windows, then the real clips."""
    out = []
    for index, name in enumerate(composites if composites is not None else COMPOSITES):
        if not (COCO_DIR / COMPOSITES[name][0]).is_file():
            log(f"note: composite {name} skipped, {COCO_DIR} not found")
            continue
        clean, masks = coco_composite(name, frames, long_side)
        for wnd in windows:
            seed = 500 + 100 * index + wnd
            flickered = add_synthetic_flicker(clean, window=wnd, seed=seed)
            out.append((BenchInput(name, "synthetic", wnd, seed, flickered, clean), masks))
    for name in real if real is not None else REAL_OBJECT_CLIPS:
        path, keys = REAL_OBJECT_CLIPS[name]
        if not path.exists():
            log(f"note: real clip {name} skipped, {path} not found")
            continue
        clip = load_clip(path, frames, long_side)
        out.append((BenchInput(name, "real", None, None, clip, None),
                    keyframed_ellipse_masks(*clip.shape[:3], keys)))
    return out


def mask_overlay(frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Frames [n,H,W,3] with the masks [n,H,W] tinted red (for figures)."""
    tint = masks[..., None] * 0.45
    red = torch.tensor([1.0, 0.1, 0.1])
    return (frames * (1 - tint) + red * tint).clamp(0, 1)

