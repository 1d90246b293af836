"""Synthetic flicker with ground truth, for benchmarks, tests and training.

`add_synthetic_flicker(clean, window=W)` applies, per segment of W frames, a per-channel gain,
gamma and offset plus a smooth local gain field. The pattern is mean-preserving over the clip
(mean gain 1, mean offset 0, geometric-mean gamma 1, per-pixel mean field 1): a blind method can
only recover the clip's average appearance, so the clean clip is then the right target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class FlickerConfig:
    """Strength of each flicker component (log-normal spreads and absolute offsets)."""

    window: int = 1  # frames that share one pattern (W in the guide)
    gain_sigma: float = 0.15  # per-channel gain, std of log-gain
    gamma_sigma: float = 0.10  # per-channel gamma, std of log-gamma
    offset_sigma: float = 0.03  # per-channel additive offset
    local_sigma: float = 0.15  # smooth local gain field, std of its log
    local_cells: int = 3  # the field is random on a (cells x cells) grid, upsampled bicubically
    seed: int = 0


def smooth_random_field(
    n: int, h: int, w: int, cells: int, generator: torch.Generator
) -> torch.Tensor:
    """[n,1,h,w] smooth zero-mean-ish random field with unit-ish std, from a coarse grid."""
    coarse = torch.randn(n, 1, cells, cells, generator=generator)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def add_synthetic_flicker(
    clean: torch.Tensor, config: FlickerConfig | None = None, **overrides
) -> torch.Tensor:
    """Flicker a clean clip [T,H,W,3] in 0..1 -> [T,H,W,3] in 0..1 (seeded, deterministic)."""
    cfg = config or FlickerConfig()
    if overrides:
        cfg = FlickerConfig(**{**cfg.__dict__, **overrides})
    t, h, w, _ = clean.shape
    window = max(1, int(cfg.window))
    segments = (t + window - 1) // window
    gen = torch.Generator().manual_seed(int(cfg.seed))

    log_gain = torch.randn(segments, 3, generator=gen) * cfg.gain_sigma
    log_gamma = torch.randn(segments, 3, generator=gen) * cfg.gamma_sigma
    offset = torch.randn(segments, 3, generator=gen) * cfg.offset_sigma
    field = smooth_random_field(segments, h, w, cfg.local_cells, gen)[:, 0] * cfg.local_sigma

    seg_of_frame = torch.arange(t) // window
    # Mean-preserving over the frames of the clip (weighted by how many frames use a segment).
    weights = torch.bincount(seg_of_frame, minlength=segments).float()
    weights = weights / weights.sum()
    gain = log_gain.exp()
    gain = gain / (gain * weights[:, None]).sum(0, keepdim=True)
    log_gamma = log_gamma - (log_gamma * weights[:, None]).sum(0, keepdim=True)
    offset = offset - (offset * weights[:, None]).sum(0, keepdim=True)
    local = field.exp()
    local = local / (local * weights[:, None, None]).sum(0, keepdim=True)

    g = gain[seg_of_frame][:, None, None, :]
    gamma = log_gamma.exp()[seg_of_frame][:, None, None, :]
    o = offset[seg_of_frame][:, None, None, :]
    loc = local[seg_of_frame][..., None]
    out = clean.clamp(0, 1).pow(gamma) * g * loc + o
    return out.clamp(0.0, 1.0)


def add_light_event(clean: torch.Tensor, kind: str, start: float = 0.4,
                    amount: float | None = None) -> torch.Tensor:
    """The scene's own light change on a clean clip [T,H,W,3] (0..1): what a deflicker must keep.

    kind "step": brightness x(1 + amount) from frame round(start * T) on (a light switched on;
    default amount 0.35). kind "ramp": exposure falling linearly from 1 at the first frame to
    `amount` at the last (a fade or dusk; default 0.55). Returns a new clip.
    """
    t = clean.shape[0]
    if kind == "step":
        gain = torch.ones(t)
        gain[round(start * t):] = 1.0 + (0.35 if amount is None else amount)
    elif kind == "ramp":
        end = 0.55 if amount is None else amount
        gain = torch.linspace(1.0, end, t) if t > 1 else torch.ones(1)
    else:
        raise ValueError(f"kind must be 'step' or 'ramp', got {kind!r}")
    return (clean * gain[:, None, None, None]).clamp(0.0, 1.0)


def add_chunk_seam(clean: torch.Tensor, levels=(15.0, 0.0, -13.0),
                   at: float = 0.5) -> torch.Tensor:
    """A persistent colour step at a chunk boundary, as sliding-window video generators leave
    it: `levels` (8-bit, per channel) added from frame round(at * T) on. Returns a new clip."""
    t = clean.shape[0]
    shift = torch.zeros(t, 3)
    shift[round(at * t):] = torch.tensor(levels, dtype=torch.float32) / 255.0
    return (clean + shift[:, None, None, :]).clamp(0.0, 1.0)
