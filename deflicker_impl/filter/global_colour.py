"""The filter's global colour pass: the output's global colour follows the steady atlas.

The neural filter sees one frame at a time, so its small per-frame colour errors add a faint
global flicker of their own. The atlas frames are, by construction, steady. For each frame and
channel we compare the output's mean with the atlas frame's mean; the slowly varying part of that
ratio (content the atlas lacks, such as a moving object) is kept, and only its fast part — the
jitter — is divided out (`stabilise_global_colour`).
"""

from __future__ import annotations

import torch

from ..temporal import apply_log_gains, frame_means, per_shot, temporal_moving_average


def stabilise_global_colour(
    frames: torch.Tensor,
    atlas_frames: torch.Tensor,
    window: int = 9,
    eps: float = 1e-3,
    shot_starts: list[int] | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """Per-frame per-channel gain that makes the global colour of frames [T,H,W,3] follow the
    steady atlas frames [T,H,W,3] (float 0..1 or uint8) from frame to frame. In place on
    `frames`; returns it. `strength` (0..1) scales the gains' logarithms.

    The moving window restarts at every shot start (a cut is a real change of colour, not
    jitter: averaging across it would tint the frames next to it). Gains are computed from
    means frame by frame, so this costs two passes over the clip and no copy.
    """
    if window <= 1 or frames.shape[0] < 3:
        return frames
    return apply_log_gains(frames, global_colour_log_gains(
        frame_means(frames), frame_means(atlas_frames), window, eps, shot_starts, strength))


def global_colour_log_gains(means: torch.Tensor, atlas_means: torch.Tensor, window: int = 9,
                            eps: float = 1e-3, shot_starts: list[int] | None = None,
                            strength: float = 1.0) -> torch.Tensor:
    """The log gains [T,3] of `stabilise_global_colour` from the per-frame means [T,3] of the
    frames and of the atlas frames. A frame's gain depends only on the frames of its shot
    within window // 2 of it, so a stream may compute it on the part of a shot seen so far."""
    log_ratio = atlas_means.clamp_min(eps).log() - means.clamp_min(eps).log()  # [T,3]
    slow = per_shot(log_ratio, shot_starts, lambda x: temporal_moving_average(x, window),
                     min_frames=3)
    return (log_ratio - slow) * strength
