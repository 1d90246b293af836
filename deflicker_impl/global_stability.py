"""Keeping the global (per-frame, per-channel mean) colour of the later stages steady.

The neural filter sees one frame at a time, so its small per-frame colour errors add a faint
global flicker of their own. The atlas frames are, by construction, steady. For each frame and
channel we compare the output's mean with the atlas frame's mean; the slowly varying part of that
ratio (content the atlas lacks, such as a moving object) is kept, and only its fast part — the
jitter — is divided out (`stabilise_global_colour`).

The local refinement carries colour from frame to frame; its global change is bounded so that it
can only steady the global colour, never add jitter or drift (`bound_global_change`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F


def temporal_moving_average(x: torch.Tensor, window: int) -> torch.Tensor:
    """Centred moving average of x [T,C] over `window` frames, edges replicated."""
    if window <= 1 or x.shape[0] < 2:
        return x.clone()
    half = window // 2
    padded = F.pad(x.t()[None], (half, half), mode="replicate")  # [1,C,T+2h]
    return F.avg_pool1d(padded, 2 * half + 1, stride=1)[0].t()


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
    slow = _per_shot(log_ratio, shot_starts, lambda x: temporal_moving_average(x, window),
                     min_frames=3)
    return (log_ratio - slow) * strength


def frame_means(clip: torch.Tensor) -> torch.Tensor:
    """Per-frame per-channel means of a clip [T,H,W,3] in 0..1 (uint8 read as 8-bit) -> [T,3]
    float64, one frame at a time (no float copy of the clip)."""
    levels = 1.0 if clip.dtype.is_floating_point else 255.0
    return torch.stack([clip[i].double().mean(dim=(0, 1)) / levels
                        for i in range(clip.shape[0])])


def bound_global_change(
    frames: torch.Tensor,
    reference_means: torch.Tensor,
    window: int = 5,
    eps: float = 1e-3,
    shot_starts: list[int] | None = None,
) -> torch.Tensor:
    """Keep the global colour change from a reference clip to `frames` [T,H,W,3] only where it
    steadies the global colour. In place on `frames`; returns it.

    `reference_means` [T,3] are the per-frame per-channel means of the clip `frames` was made
    from. Its steady global colour is the per-shot temporal median over `window` frames (a
    median keeps real steps, such as a light switched on, and drops one- or two-frame
    jitter). Per frame and channel, the change of the log mean is clamped to the interval
    between no change and the change that would put the frame on that steady trajectory. The
    local refinement may so remove global flicker that the earlier stages left, but it can
    neither add global jitter nor let the colour wander over a shot (its recursion carries
    colour from frame to frame, so small global errors would otherwise add up).
    """
    if window <= 1 or frames.shape[0] < 2:
        return frames
    return apply_log_gains(frames, bounded_change_log_gains(
        frame_means(frames), reference_means, window, eps, shot_starts))


def bounded_change_log_gains(means: torch.Tensor, reference_means: torch.Tensor,
                             window: int = 5, eps: float = 1e-3,
                             shot_starts: list[int] | None = None) -> torch.Tensor:
    """The log gains [T,3] of `bound_global_change` from the per-frame means [T,3] of the
    frames and of the reference. Like `global_colour_log_gains`, a frame's gain depends only on
    the frames of its shot within window // 2 of it."""
    log_ref = reference_means.double().clamp_min(eps).log()
    change = means.clamp_min(eps).log() - log_ref
    steady = _per_shot(log_ref, shot_starts, lambda x: temporal_median(x, window))
    towards_steady = steady - log_ref
    allowed = torch.minimum(torch.maximum(change, towards_steady.clamp(max=0.0)),
                            towards_steady.clamp(min=0.0))
    return allowed - change


def temporal_median(x: torch.Tensor, window: int, edges: str = "replicate") -> torch.Tensor:
    """Centred running median of x [T,C] over `window` frames (odd).

    edges "replicate" pads with copies of the first and last frames; "shrink" takes the median
    of the frames that exist (near an end the window is cut short), so the ends are not pulled
    towards their own values."""
    half = window // 2
    if half < 1 or x.shape[0] < 2:
        return x.clone()
    if edges == "shrink":
        pad = torch.full((half, x.shape[1]), float("nan"), dtype=x.dtype, device=x.device)
        return torch.cat([pad, x, pad]).unfold(0, 2 * half + 1, 1).nanmedian(dim=-1).values
    if edges != "replicate":
        raise ValueError(f"edges must be 'replicate' or 'shrink', got {edges!r}")
    padded = torch.cat([x[:1].expand(half, -1), x, x[-1:].expand(half, -1)])
    return padded.unfold(0, 2 * half + 1, 1).median(dim=-1).values


def _per_shot(x: torch.Tensor, shot_starts: list[int] | None,
              smooth: Callable[[torch.Tensor], torch.Tensor], min_frames: int = 1) -> torch.Tensor:
    """`smooth` applied to x [T,C] shot by shot (a temporal filter must not reach across a
    cut); shots shorter than `min_frames` are kept as they are (too short to tell slow from
    fast)."""
    t = x.shape[0]
    bounds = sorted(set(shot_starts or []) | {0, t})
    out = x.clone()
    for a, b in itertools.pairwise(bounds):
        if b - a >= min_frames:
            out[a:b] = smooth(x[a:b])
    return out


def apply_log_gains(frames: torch.Tensor, log_gains: torch.Tensor) -> torch.Tensor:
    """Multiply frame i of [T,H,W,3] by exp(log_gains[i]) ([T,3]) in place, clamped to 0..1."""
    gains = log_gains.exp().float()
    for i in range(frames.shape[0]):
        frames[i].mul_(gains[i]).clamp_(0.0, 1.0)
    return frames
