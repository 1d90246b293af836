"""Flicker measurements of a clip, optionally against another clip (before vs after).

What the Metrics node and the demo show: the global flicker index and the paper's warping error
of each clip, per frame and overall. Both clips are scored with the SAME flow (by default the
flow of the other clip, i.e. the input before deflickering), so the numbers compare like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..clip import prepare_clip, to_nchw, to_nhwc
from ..errors import DeflickerInputError
from ..progress import ProgressFn, StageProgress
from .metrics import flicker_index, mean_luma_per_frame, warping_errors_streamed

FLOW_SOURCES = ("compare_to", "images")


@dataclass
class ClipScores:
    """Scores of one clip. luma [T] and warp [T-1] are per frame, in 8-bit levels."""

    flicker_index: float
    warping_error: float
    luma: torch.Tensor
    warp: torch.Tensor


@dataclass
class MetricsReport:
    """`images` scores, and `compare_to` scores when another clip was given."""

    images: ClipScores
    compare_to: ClipScores | None
    flow_from: str
    measured_size: tuple[int, int]

    def summary(self) -> str:
        """A few lines of plain text for the UI."""
        a, b = self.images, self.compare_to
        h, w = self.measured_size
        lines = [f"frames: {len(a.luma)}, measured at {w}x{h}, flow from {self.flow_from}"]
        if b is None:
            lines += [f"flicker index: {a.flicker_index:.3f}",
                      f"warping error: {a.warping_error:.3f}"]
        else:
            for name, mine, theirs in (
                ("flicker index", a.flicker_index, b.flicker_index),
                ("warping error", a.warping_error, b.warping_error),
            ):
                lines.append(f"{name}: {mine:.3f} (compare_to {theirs:.3f}, "
                             f"ratio {_ratio(mine, theirs)})")
        lines.append("(8-bit levels; lower is steadier. Flicker index: mean jump of a frame's "
                     "mean luma from its 5-frame median. Warping error: mean difference to the "
                     "previous and first frame after motion compensation.)")
        return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 1e-9 else "n/a"


def _resize_long_side(clip: torch.Tensor, long_side: int) -> torch.Tensor:
    """clip [T,H,W,3] with its long side reduced to `long_side` (0 or larger: unchanged)."""
    h, w = clip.shape[1:3]
    if long_side <= 0 or max(h, w) <= long_side:
        return clip
    scale = long_side / max(h, w)
    size = (max(2, round(h * scale)), max(2, round(w * scale)))
    return to_nhwc(F.interpolate(to_nchw(clip), size=size, mode="area"))


def _scores(clip: torch.Tensor, warp: torch.Tensor) -> ClipScores:
    """warp: per-frame warping error in 0..1 units ([T-1], empty for a single frame)."""
    warp = warp * 255.0
    return ClipScores(flicker_index(clip), float(warp.mean()) if len(warp) else 0.0,
                      mean_luma_per_frame(clip), warp)


def measure(images: torch.Tensor, compare_to: torch.Tensor | None = None,
            flow_from: str = "compare_to", long_side: int = 0,
            on_progress: ProgressFn | None = None) -> MetricsReport:
    """Score `images` [T,H,W,3] (and `compare_to`, same frame count) for flicker.

    flow_from: "compare_to" (default; falls back to images when no other clip is given) or
    "images". long_side > 0 measures on frames downscaled to that long side (faster).
    """
    if flow_from not in FLOW_SOURCES:
        raise DeflickerInputError(f"flow_from must be one of {FLOW_SOURCES}, got {flow_from!r}.")
    images = prepare_clip(images, "images")
    if compare_to is not None:
        compare_to = prepare_clip(compare_to, "compare_to")
        if compare_to.shape[0] != images.shape[0]:
            raise DeflickerInputError(
                f"compare_to has {compare_to.shape[0]} frames but images has "
                f"{images.shape[0]}; compare the same clip before and after processing.")
        if compare_to.shape[1:3] != images.shape[1:3]:  # e.g. an upscaled output
            compare_to = to_nhwc(F.interpolate(to_nchw(compare_to), size=images.shape[1:3],
                                               mode="bilinear", align_corners=False))
    else:
        flow_from = "images"
    images = _resize_long_side(images, long_side)
    if compare_to is not None:
        compare_to = _resize_long_side(compare_to, long_side)
    clips = [images] if compare_to is None else [images, compare_to]
    warps = [torch.zeros(0)] * len(clips)
    if images.shape[0] >= 2:
        source = compare_to if flow_from == "compare_to" else images
        warps = warping_errors_streamed(clips, source,
                                        on_progress=StageProgress({"flow": 1.0}, on_progress)
                                        .stage("flow"))
    other = _scores(compare_to, warps[1]) if compare_to is not None else None
    return MetricsReport(_scores(images, warps[0]), other, flow_from, tuple(images.shape[1:3]))
