"""Simple deflicker baselines that the atlas has to beat.

All take and return a clip [T,H,W,3] float32 in 0..1 with the same frame count and size.
"""

from __future__ import annotations

import subprocess

import numpy as np
import torch


def match_mean_std(frames: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Give each frame the per-channel mean and std of its target frame.

    frames [T,H,W,3]; targets [T,H,W,3] or [1,H,W,3] (one target for every frame).
    """
    dims = (1, 2)
    mean, std = frames.mean(dims, keepdim=True), frames.std(dims, keepdim=True)
    t_mean, t_std = targets.mean(dims, keepdim=True), targets.std(dims, keepdim=True)
    return ((frames - mean) / std.clamp_min(1e-4) * t_std + t_mean).clamp(0.0, 1.0)


def sliding_median_frames(frames: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-pixel temporal median over `window` frames around each frame -> [T,H,W,3].

    The window keeps its length at the ends of the clip (it slides inward instead of shrinking).
    """
    t = frames.shape[0]
    window = max(1, min(window, t))
    medians = torch.empty_like(frames)
    for i in range(t):
        start = min(max(0, i - window // 2), t - window)
        medians[i] = frames[start : start + window].median(dim=0).values
    return medians


def match_to_sliding_median(frames: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-channel mean/std matching of every frame to its sliding temporal median."""
    return match_mean_std(frames, sliding_median_frames(frames, window))


def match_to_clip_median(frames: torch.Tensor) -> torch.Tensor:
    """Per-channel mean/std matching of every frame to the whole clip's median frame.

    Strong on global flicker (it removes any per-frame per-channel gain and offset), blind to
    local flicker and to real changes of the scene's brightness.
    """
    return match_mean_std(frames, frames.median(dim=0, keepdim=True).values)


def ffmpeg_deflicker(frames: torch.Tensor, size: int = 5, mode: str = "am") -> torch.Tensor:
    """ffmpeg's `deflicker` filter (global luma only), through raw RGB pipes.

    The filter scales the luma plane only, so frames go through 4:4:4 YUV (no chroma
    subsampling, any frame size; the round trip alone costs nothing visible, ~51 dB).
    """
    import imageio_ffmpeg

    t, h, w, _ = frames.shape
    if t < 2:
        return frames.clone()
    # The filter misbehaves on clips shorter than its window (it averages over missing frames).
    size = min(size, t)
    data = (frames.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy().tobytes()
    graph = f"format=yuv444p,deflicker=size={size}:mode={mode},format=rgb24"
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25", "-i", "-",
        "-vf", graph, "-fps_mode", "passthrough", "-threads", "1",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg deflicker failed: {proc.stderr.decode(errors='replace')}")
    out = np.frombuffer(proc.stdout, dtype=np.uint8)
    if out.size != t * h * w * 3:
        raise RuntimeError(f"ffmpeg returned {out.size} bytes for {t} frames of {w}x{h}.")
    return torch.from_numpy(out.reshape(t, h, w, 3).copy()).float().div_(255.0)
