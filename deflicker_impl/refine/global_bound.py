"""The refinement's global bound: its change of the global colour may only steady it.

The local refinement carries colour from frame to frame; its global (per-frame, per-channel
mean) change is bounded so that it can only steady the global colour, never add jitter or drift
(`bound_global_change`).
"""

from __future__ import annotations

import torch

from ..temporal import apply_log_gains, frame_means, per_shot, temporal_median


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
    steady = per_shot(log_ref, shot_starts, lambda x: temporal_median(x, window))
    towards_steady = steady - log_ref
    allowed = torch.minimum(torch.maximum(change, towards_steady.clamp(max=0.0)),
                            towards_steady.clamp(min=0.0))
    return allowed - change
