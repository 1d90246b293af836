"""Shared temporal helpers: smoothing of per-frame values [T,C] along time, shot by shot.

A temporal filter must never reach across a scene cut (`per_shot`); `frame_means` and
`apply_log_gains` measure and change the global (per-frame, per-channel) colour of a clip
without a float copy of it.
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


def monotone_fit(x: torch.Tensor) -> torch.Tensor:
    """Least-squares fit of x [T,C] by series that all rise, or all fall, along time (each
    channel its own non-decreasing, or non-increasing, series; the one direction that fits
    the channels best together). Pool-adjacent-violators, O(T) per channel."""
    if x.shape[0] < 2:
        return x.clone()
    values = x.double().t().tolist()
    rising = torch.tensor([_non_decreasing_fit(v) for v in values], dtype=torch.float64)
    falling = -torch.tensor([_non_decreasing_fit([-a for a in v]) for v in values],
                            dtype=torch.float64)
    reference = x.double().t()
    best = rising if ((reference - rising) ** 2).sum() <= ((reference - falling) ** 2).sum() \
        else falling
    return best.t().to(x.dtype)


def piecewise_linear_fit(x: torch.Tensor, min_length: int, max_pieces: int,
                         piece_cost: float) -> torch.Tensor:
    """Least-squares fit of x [T,C] by straight pieces along time, joined by free jumps: at
    most `max_pieces` pieces of at least `min_length` frames each (all channels break at the
    same frames), as many as minimise squared error + `piece_cost` x pieces. A series shorter
    than 2 x `min_length` gets one straight line. Dynamic programme over the breakpoints:
    O(max_pieces x T^2) time, O(max_pieces x T) memory."""
    t = x.shape[0]
    min_length = max(1, int(min_length))
    y = x.double()
    if t < 2 * min_length or max_pieces < 2:
        return _line_fits(y, [0, t]).to(x.dtype)
    frame = torch.arange(t, dtype=torch.float64)[:, None]
    zero = torch.zeros(1, y.shape[1], dtype=torch.float64)
    # Prefix sums of 1, t, t^2, y, t*y, y^2: the squared error of the line through any span.
    sums = [torch.cat([zero, v.expand_as(y).cumsum(0)])
            for v in (torch.ones_like(frame), frame, frame ** 2, y, frame * y, y ** 2)]
    best = torch.full((max_pieces + 1, t + 1), float("inf"), dtype=torch.float64)
    best[0, 0] = 0.0
    came_from = torch.zeros((max_pieces + 1, t + 1), dtype=torch.long)
    starts_all = torch.arange(t + 1)
    for stop in range(min_length, t + 1):
        # A piece may start at 0, or where a piece of at least min_length has ended.
        starts = starts_all[(starts_all == 0) | ((starts_all >= min_length)
                                                & (starts_all <= stop - min_length))]
        span = [s[stop] - s[starts] for s in sums]  # each [n,C]
        n, st, stt, sy, sty, syy = span
        stt_c = stt - st ** 2 / n
        sty_c = sty - st * sy / n
        error = (syy - sy ** 2 / n - torch.where(stt_c > 1e-9, sty_c ** 2 / stt_c.clamp_min(1e-9),
                                                 torch.zeros_like(stt_c))).clamp_min(0).sum(1)
        total = best[:-1, starts] + error[None]  # [max_pieces, n]
        value, pick = total.min(dim=1)
        best[1:, stop] = value
        came_from[1:, stop] = starts[pick]
    pieces = 1 + int((best[1:, t] + piece_cost * torch.arange(1, max_pieces + 1)).argmin())
    bounds = [t]
    for k in range(pieces, 0, -1):
        bounds.append(int(came_from[k, bounds[-1]]))
    return _line_fits(y, bounds[::-1]).to(x.dtype)


def _line_fits(y: torch.Tensor, bounds: list[int]) -> torch.Tensor:
    """Each span bounds[i]..bounds[i+1] of y [T,C] replaced by its least-squares line."""
    out = torch.empty_like(y)
    for a, b in itertools.pairwise(bounds):
        part = y[a:b]
        frame = torch.arange(b - a, dtype=y.dtype)[:, None]
        centred = frame - frame.mean()
        spread = centred.square().sum()
        slope = (centred * (part - part.mean(0))).sum(0) / spread if spread > 0 else 0.0
        out[a:b] = part.mean(0) + centred * slope
    return out


def _non_decreasing_fit(values: list[float]) -> list[float]:
    """The non-decreasing series closest to `values` in least squares: runs that break the
    order are merged into their mean until none does."""
    means: list[float] = []
    sizes: list[int] = []
    for v in values:
        means.append(v)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m, n = means.pop(), sizes.pop()
            total = sizes[-1] + n
            means[-1] = (means[-1] * sizes[-1] + m * n) / total
            sizes[-1] = total
    return [m for m, n in zip(means, sizes, strict=True) for _ in range(n)]


def per_shot(x: torch.Tensor, shot_starts: list[int] | None,
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


def frame_means(clip: torch.Tensor) -> torch.Tensor:
    """Per-frame per-channel means of a clip [T,H,W,3] in 0..1 (uint8 read as 8-bit) -> [T,3]
    float64, one frame at a time (no float copy of the clip)."""
    levels = 1.0 if clip.dtype.is_floating_point else 255.0
    return torch.stack([clip[i].double().mean(dim=(0, 1)) / levels
                        for i in range(clip.shape[0])])


def apply_log_gains(frames: torch.Tensor, log_gains: torch.Tensor) -> torch.Tensor:
    """Multiply frame i of [T,H,W,3] by exp(log_gains[i]) ([T,3]) in place, clamped to 0..1."""
    gains = log_gains.exp().float()
    for i in range(frames.shape[0]):
        frames[i].mul_(gains[i]).clamp_(0.0, 1.0)
    return frames
