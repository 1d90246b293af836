"""Where the atlas frame does NOT represent the frame: per-frame, per-pixel atlas confidence.

An atlas frame is right where it shows the frame's own content; its colour may differ (that is
the flicker it removes), its fine detail may be blurred, but its structure must match. So we
compare the two after taking out what flicker can do: at a coarse scale (fine blur does not
count), a smooth colour transform from the frame to the atlas frame is fitted robustly
(colour_fields.py, reweighted so that the wrong regions do not bend it), and whatever it cannot
explain is content the atlas lacks: another view of a turning character, an object that
appears or leaves, non-rigid motion, a wrong mapping, a ghost. The residual, measured against
the clip's typical residual, becomes the confidence (1: the atlas is right here, 0: it is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..colour_fields import fit_smooth_colour_field
from ..errors import DeflickerInputError


@dataclass(frozen=True)
class ConfidenceConfig:
    """How atlas confidence is measured."""

    long_side: int = 96  # long side of the coarse frames the comparison runs on
    nodes_long_side: int = 4  # nodes of the smooth colour transform along the long side
    reweight_steps: int = 3  # robust refits (Cauchy weights) after the first fit
    # Residual (0..1 units, mean over channels) at which confidence is 1/2, at least ...
    floor: float = 6.0 / 255.0
    # ... or this many times the clip's median residual (its typical, healthy mismatch) ...
    relative: float = 3.0
    # ... but never more: on a clip whose every frame shows other content the median itself
    # is large, and that must not pass for healthy.
    ceiling: float = 24.0 / 255.0
    erode: int = 1  # coarse pixels by which low confidence grows (its edges are uncertain)
    chunk: int = 16  # frames per fitting batch


@dataclass
class AtlasConfidence:
    """Confidence of a clip's atlas frames, stored coarse: `coarse` [T,1,h,w] in 0..1.

    `at(start, stop, size)` gives frames start..stop at full size [n,1,H,W] (bilinear); `mask()`
    the whole clip [T,H,W] (ComfyUI's MASK layout)."""

    coarse: torch.Tensor
    frame_hw: tuple[int, int]

    @property
    def num_frames(self) -> int:
        return self.coarse.shape[0]

    def at(self, start: int, stop: int, size: tuple[int, int] | None = None) -> torch.Tensor:
        size = size or self.frame_hw
        part = self.coarse[start:stop].float()
        return F.interpolate(part, size=size, mode="bilinear", align_corners=False).clamp(0, 1)

    def mask(self) -> torch.Tensor:
        return torch.cat([self.at(i, min(i + 16, self.num_frames))[:, 0]
                          for i in range(0, self.num_frames, 16)])


def coarse_frames(clip: torch.Tensor, start: int, stop: int, long_side: int) -> torch.Tensor:
    """clip[start:stop] [n,H,W,C] (float 0..1 or uint8) -> [n,3,h,w] float32, area-downscaled
    so that the long side is at most `long_side`."""
    part = clip[start:stop]
    part = part.float() / 255.0 if not part.dtype.is_floating_point else part.float()
    if part.shape[-1] == 1:
        part = part.expand(-1, -1, -1, 3)
    x = part[..., :3].clamp(0, 1).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    scale = min(1.0, long_side / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="area") if size != (h, w) else x.contiguous()


def _residual(frames: torch.Tensor, atlas: torch.Tensor, cfg: ConfidenceConfig) -> torch.Tensor:
    """Robust residual [n,1,h,w] of atlas ~ smooth transform(frames), mean over channels."""
    weights = torch.ones_like(frames[:, :1])
    for step in range(cfg.reweight_steps + 1):
        field = fit_smooth_colour_field(frames, atlas, weights, cfg.nodes_long_side)
        residual = (field.apply(frames) - atlas).abs().mean(dim=1, keepdim=True)
        if step < cfg.reweight_steps:
            scale = torch.quantile(residual.flatten(1), 0.5, dim=1).clamp_min(cfg.floor / 2)
            weights = 1.0 / (1.0 + (residual / (2.0 * scale[:, None, None, None])) ** 2)
    return residual


def atlas_confidence(
    frames: torch.Tensor, atlas_frames: torch.Tensor, config: ConfidenceConfig | None = None
) -> AtlasConfidence:
    """Confidence [T,1,h,w] (coarse) that each atlas frame shows its frame's content.

    frames, atlas_frames: [T,H,W,3] (float 0..1 or uint8), the same shape.
    """
    cfg = config or ConfidenceConfig()
    if frames.shape[:3] != atlas_frames.shape[:3]:
        raise ValueError(f"frames {tuple(frames.shape)} and atlas frames "
                         f"{tuple(atlas_frames.shape)} differ in size")
    t = frames.shape[0]
    residuals = []
    for start in range(0, t, cfg.chunk):
        stop = min(t, start + cfg.chunk)
        residuals.append(_residual(coarse_frames(frames, start, stop, cfg.long_side),
                                   coarse_frames(atlas_frames, start, stop, cfg.long_side), cfg))
    residual = torch.cat(residuals)
    typical = float(residual.median())
    half = min(cfg.ceiling, max(cfg.floor, cfg.relative * typical))
    confidence = 1.0 / (1.0 + (residual / half) ** 4)
    if cfg.erode > 0:
        k = 2 * cfg.erode + 1
        confidence = -F.max_pool2d(-confidence, k, stride=1, padding=cfg.erode)
        confidence = F.avg_pool2d(confidence, k, stride=1, padding=cfg.erode,
                                  count_include_pad=False)
    return AtlasConfidence(confidence.contiguous(), tuple(frames.shape[1:3]))


def confidence_from_mask(mask: torch.Tensor, num_frames: int, frame_hw: tuple[int, int],
                         config: ConfidenceConfig | None = None) -> AtlasConfidence:
    """An AtlasConfidence from a MASK-like tensor [T,H,W] or [H,W] (0..1, any size: it is
    resampled), e.g. a confidence edited or made elsewhere. One mask applies to every frame."""
    cfg = config or ConfidenceConfig()
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or min(mask.shape) < 1:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise DeflickerInputError(
            f"The confidence must be a MASK [frames, height, width] (or one [height, width]), "
            f"got {shape}.")
    mask = mask[None] if mask.ndim == 2 else mask
    if mask.shape[0] not in (1, num_frames):
        raise DeflickerInputError(
            f"The confidence has {mask.shape[0]} frames but the clip has {num_frames}; connect "
            "the confidence that FitNeuralAtlas made for this very clip (or one mask for all).")
    m = mask.float()
    if not bool(torch.isfinite(m).all()):
        raise DeflickerInputError("The confidence contains NaN or infinite values.")
    h, w = frame_hw
    scale = min(1.0, cfg.long_side / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    coarse = F.interpolate(m[:, None].clamp(0, 1), size=size, mode="area")
    if coarse.shape[0] == 1:
        coarse = coarse.expand(num_frames, -1, -1, -1)
    return AtlasConfidence(coarse.contiguous(), (h, w))


def confidence_heatmap(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Preview [T,H,W,3]: the frames, dimmed and tinted red where the atlas confidence mask
    [T,H,W] is low (the atlas does not show this content: its colour is not used there)."""
    frames = frames.float() / 255.0 if not frames.dtype.is_floating_point else frames.float()
    c = mask.float().clamp(0, 1)[..., None]
    red = torch.tensor([1.0, 0.15, 0.1])
    gray = frames[..., :3].mean(dim=-1, keepdim=True)
    base = 0.35 * gray + 0.65 * frames[..., :3]
    return (base * (0.45 + 0.55 * c) + red * (1 - c) * 0.55).clamp(0, 1)


def describe_confidence(mask: torch.Tensor) -> str:
    """One line about a confidence mask [T,H,W]: mean, share of unreliable pixels, worst frame."""
    per_frame = mask.float().flatten(1).mean(dim=1)
    low = float((mask < 0.5).float().mean())
    worst = int(per_frame.argmin())
    return (f"atlas confidence: mean {float(per_frame.mean()):.2f}, {100 * low:.0f}% of pixels "
            f"below 0.5 (colour there comes from the reliable regions); lowest on frame "
            f"{worst} ({float(per_frame[worst]):.2f})")
