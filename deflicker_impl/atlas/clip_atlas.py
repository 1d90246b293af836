"""One atlas per shot, and overlapping segments for long shots: the clip-level atlas.

A single atlas assumes one continuous shot of modest length. `fit_clip_atlas` first finds the
clip's scene cuts (deflicker_impl.shots), then fits every shot on its own; a shot longer than
`max_segment_frames` is fitted in segments that share `segment_overlap` frames. In an overlap
both segments render the same frames: the later segment's colours are matched to the earlier
one's there (per-channel gain, chained along the shot), and the two are cross-faded with linear
ramps, so neither a colour step nor a structural jump marks the seam. Nothing is shared or
blended across a cut.

One texture per segment also flattens real, slow brightness changes (a fade to black would come
out at the segment's average brightness). When a straight line explains a segment's per-frame
brightness well (a fade or an exposure ramp; random flicker does not line up), the atlas frames
follow that line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..clip import prepare_clip
from ..errors import DeflickerInputError
from ..progress import ProgressFn
from ..shots import ShotConfig, shot_ranges, shot_starts_for
from ..timing import phase
from .config import AtlasConfig
from .fit import fit_atlas
from .masks import prepare_masks
from .neural_atlas import NeuralAtlas

MATCH_SIDE = 64  # long side at which overlaps are rendered to measure their colour


@dataclass
class AtlasSegment:
    """A fitted atlas of clip frames [start, stop), plus its per-channel colour gain [3]."""

    start: int
    stop: int
    atlas: NeuralAtlas
    gain: torch.Tensor = field(default_factory=lambda: torch.ones(3))
    trend: torch.Tensor | None = None  # [n] per-frame brightness factor (fades), or None


@dataclass
class ClipAtlas:
    """The atlases of a whole clip: one or more segments per shot.

    Behaves like a NeuralAtlas for the later stages (`num_frames`, `frame_hw`, `render`,
    `texture_preview`, `stats`) and also tells them where the shots start, so that the
    filter's global colour pass and the refinement's recurrent state restart at each cut.
    """

    config: AtlasConfig
    shots: ShotConfig
    num_frames: int
    frame_hw: tuple[int, int]
    shot_starts: list[int]
    segments: list[AtlasSegment]
    stats: dict = field(default_factory=dict)

    def weights(self, index: int) -> torch.Tensor:
        """Blend weight [n] of segment `index` over its own frames: linear ramps where it
        overlaps a neighbour of the same shot, 1 elsewhere; the weights of a frame sum to 1."""
        seg = self.segments[index]
        w = torch.ones(seg.stop - seg.start)
        prev = self.segments[index - 1] if index > 0 else None
        nxt = self.segments[index + 1] if index + 1 < len(self.segments) else None
        if prev is not None and prev.stop > seg.start:
            n = prev.stop - seg.start
            w[:n] = torch.arange(1, n + 1, dtype=torch.float32) / (n + 1)
        if nxt is not None and nxt.start < seg.stop:
            n = seg.stop - nxt.start
            w[-n:] = torch.minimum(w[-n:], torch.arange(n, 0, -1, dtype=torch.float32) / (n + 1))
        return w

    @torch.no_grad()
    def render(self, start: int, stop: int, device: torch.device | None = None) -> torch.Tensor:
        """Atlas reconstruction of clip frames [start, stop) at the clip's size -> [n,H,W,3]."""
        h, w = self.frame_hw
        out = torch.zeros(stop - start, h, w, 3)
        for i, seg in enumerate(self.segments):
            a, b = max(start, seg.start), min(stop, seg.stop)
            if a >= b:
                continue
            part = seg.atlas.render(a - seg.start, b - seg.start, device)
            weight = self.weights(i)[a - seg.start:b - seg.start]
            if seg.trend is not None:
                weight = weight * seg.trend[a - seg.start:b - seg.start]
            out[a - start:b - start] += part * (seg.gain * weight[:, None])[:, None, None, :]
        return out.clamp_(0.0, 1.0)

    def texture_preview(self) -> torch.Tensor:
        """Every segment's atlas texture, resized to the first one's size -> [S,h,w,3]."""
        return stack_texture_previews([seg.atlas.texture_preview() for seg in self.segments])

    def segment_ranges(self) -> list[tuple[int, int]]:
        return [(s.start, s.stop) for s in self.segments]


def stack_texture_previews(previews: list[torch.Tensor]) -> torch.Tensor:
    """Segments' texture previews [1,h,w,3] resized to the first one's size -> [S,h,w,3]."""
    h, w = previews[0].shape[1:3]
    same = [p if p.shape[1:3] == (h, w) else F.interpolate(
        p.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False,
    ).permute(0, 2, 3, 1) for p in previews]
    return torch.cat(same).clamp(0, 1).contiguous()


def segment_layout(start: int, stop: int, max_frames: int, overlap: int) -> list[tuple[int, int]]:
    """Split the shot [start, stop) into evenly spaced segments of at most `max_frames` frames
    that share at least `overlap` frames with their neighbours. max_frames <= 0: one segment."""
    n = stop - start
    if max_frames <= 0 or n <= max_frames:
        return [(start, stop)]
    count = -(-(n - overlap) // (max_frames - overlap))  # ceil
    length = -(-(n + (count - 1) * overlap) // count)
    starts = [start + round(k * (n - length) / (count - 1)) for k in range(count)]
    return [(s, s + length) for s in starts]


def check_shot_config(shots: ShotConfig) -> None:
    if shots.max_segment_frames < 0 or shots.segment_overlap < 0:
        raise DeflickerInputError("max_segment_frames and segment_overlap must be >= 0.")
    if shots.max_segment_frames and shots.max_segment_frames < 2 * shots.segment_overlap + 2:
        raise DeflickerInputError(
            f"max_segment_frames ({shots.max_segment_frames}) must be at least twice "
            f"segment_overlap ({shots.segment_overlap}) plus 2; raise it, lower the overlap, "
            "or set it to 0 to never split a shot."
        )


def fit_clip_atlas(
    frames: torch.Tensor,
    config: AtlasConfig | None = None,
    shots: ShotConfig | None = None,
    on_progress: ProgressFn | None = None,
    masks: torch.Tensor | None = None,
) -> ClipAtlas:
    """Fit atlases to a clip [T,H,W,C] (0..1): one per shot, long shots in overlapping segments.

    Deterministic for a given seed. The clip is not copied: every segment is fitted on a view.
    `masks` (foreground, any form `fit_atlas` takes) make every segment's atlas two-layer where
    the segment's part of the masks separates anything (see `fit_atlas`).
    """
    config = config or AtlasConfig()
    shots = shots or ShotConfig()
    check_shot_config(shots)
    t0 = time.perf_counter()
    frames = prepare_clip(frames, "frames")
    num, h, w, _ = frames.shape
    if masks is not None:
        if config.preset != "fast":
            raise DeflickerInputError(
                f"Masks (two layers) need the 'fast' preset; the {config.preset!r} preset fits "
                "one layer. Disconnect the mask or choose preset 'fast'.")
        masks = prepare_masks(masks, num, (h, w))  # one [T,H,W] batch, sliced per segment
    with phase("scene cuts"):
        starts = shot_starts_for(frames, shots)
    t_cuts = time.perf_counter() - t0
    layout = clip_layout(starts, num, shots)
    total = sum(b - a for a, b in layout)
    brightness = frame_brightness(frames)
    done = 0
    segments: list[AtlasSegment] = []
    for a, b in layout:
        segments.append(fit_segment(
            frames[a:b], a, config, brightness[a:b],
            segments[-1] if segments else None,
            progress_within(on_progress, done, b - a, total),
            masks=None if masks is None else masks[a:b]))
        done += b - a
    return ClipAtlas(config, shots, num, (h, w), starts, segments,
                     clip_atlas_stats(starts, segments, t_cuts, time.perf_counter() - t0))


def clip_layout(shot_starts: list[int], num_frames: int, shots: ShotConfig
                ) -> list[tuple[int, int]]:
    """Every segment [start, stop) of a clip, in order: its shots, each split by
    `segment_layout`."""
    return [seg for a, b in shot_ranges(shot_starts, num_frames)
            for seg in segment_layout(a, b, shots.max_segment_frames, shots.segment_overlap)]


def progress_within(on_progress: ProgressFn | None, done: int, size: int, total: int
                    ) -> ProgressFn:
    """A segment's fit progress (d of t steps) as the clip's: `done` of `total` frames were
    fitted before this segment of `size` frames; reported in thousandths."""
    def report(d: int, t: int) -> None:
        if on_progress is not None:
            on_progress(round((done + size * (d / t if t else 1.0)) * 1000 / total), 1000)

    return report


def fit_segment(frames: torch.Tensor, start: int, config: AtlasConfig,
                brightness: torch.Tensor, previous: AtlasSegment | None,
                on_progress: ProgressFn | None = None, masks: torch.Tensor | None = None
                ) -> AtlasSegment:
    """Fit the segment of clip frames [start, start + n) given as `frames` [n,H,W,3], with the
    clip's per-frame `brightness` [n] of those frames (frame_brightness), and link it to the
    segment before it (`previous`, None for the first): its brightness trend, and its colour
    gain chained to the previous segment's over the frames they share. Only `previous` is
    needed, so a clip can be fitted segment after segment as it streams past."""
    stop = start + frames.shape[0]
    seg = AtlasSegment(start, stop, fit_atlas(frames, config, on_progress, masks=masks))
    with phase("segment colours"):
        seg.trend = _trend_factor(seg, brightness)
        if previous is not None:
            _match_overlap_colour(previous, seg)
    return seg


def clip_atlas_stats(shot_starts: list[int], segments: list[AtlasSegment], seconds_cuts: float,
                     seconds_total: float) -> dict:
    return {
        "shot_starts": shot_starts, "segments": [(s.start, s.stop) for s in segments],
        "seconds_cut_detection": seconds_cuts, "seconds_total": seconds_total,
        "seconds_fit": sum(s.atlas.stats.get("seconds_total", 0.0) for s in segments),
        "segment_stats": [s.atlas.stats for s in segments],
    }


@torch.no_grad()
def _match_overlap_colour(prev: AtlasSegment, seg: AtlasSegment) -> None:
    """Chain the per-channel gain along a shot so that `seg`'s colours equal its predecessor's
    (already matched) colours over the frames they share."""
    if seg.start >= prev.stop:
        return  # a cut (or no overlap): every shot keeps its own colours
    a, b = seg.start, prev.stop
    hw = _small_size(seg.atlas.frame_hw)
    mean_prev = _small_render(prev, a, b, hw).mean((0, 1, 2))
    mean_seg = _small_render(seg, a, b, hw).mean((0, 1, 2))
    seg.gain = (prev.gain * mean_prev.clamp_min(1e-3) / mean_seg.clamp_min(1e-3)).clamp(
        0.5, 2.0)


def _small_render(seg: AtlasSegment, a: int, b: int, hw: tuple[int, int]) -> torch.Tensor:
    """Clip frames [a, b) of one segment, rendered small, with its brightness trend."""
    part = seg.atlas.model.render(a - seg.start, b - seg.start, hw)
    if seg.trend is not None:
        part = part * seg.trend[a - seg.start:b - seg.start, None, None, None]
    return part


def frame_brightness(frames: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Mean luma of every frame of [T,H,W,3] -> [T] (read in chunks, no copy of the clip)."""
    out = []
    for start in range(0, frames.shape[0], chunk):
        part = frames[start:start + chunk]
        rgb = part.mean(dim=(1, 2), dtype=torch.float64)
        out.append(rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114)
    return torch.cat(out).float()


TREND_MIN_R2 = 0.9  # how well the line must explain the brightness (random flicker: far less)
TREND_MIN_SPAN = 0.2  # and how much it must change over the segment, relative to its mean


def brightness_trend(brightness: torch.Tensor) -> torch.Tensor | None:
    """A straight-line fit to per-frame brightness [n] when it explains it (a fade, a ramp),
    else None. Flicker that happens to drift is not followed unless it lines up that well."""
    n = brightness.shape[0]
    if n < 6:
        return None
    x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    y = brightness.double()
    slope = (x * (y - y.mean())).sum() / x.square().sum()
    line = y.mean() + slope * x
    total = (y - y.mean()).square().sum()
    if total <= 0:
        return None
    r2 = 1.0 - float((y - line).square().sum() / total)
    span = float(line.max() - line.min()) / max(float(y.mean()), 1e-3)
    if r2 < TREND_MIN_R2 or span < TREND_MIN_SPAN:
        return None
    return line.clamp_min(0.0).float()


@torch.no_grad()
def _trend_factor(seg: AtlasSegment, brightness: torch.Tensor) -> torch.Tensor | None:
    """Per-frame factor [n] that makes the segment's atlas frames follow the input's fade."""
    line = brightness_trend(brightness)
    if line is None:
        return None
    small = seg.atlas.model.render(0, seg.stop - seg.start, _small_size(seg.atlas.frame_hw))
    rendered = small[..., 0] * 0.299 + small[..., 1] * 0.587 + small[..., 2] * 0.114
    return line / rendered.mean(dim=(1, 2)).clamp_min(1e-3)


def _small_size(frame_hw: tuple[int, int]) -> tuple[int, int]:
    h, w = frame_hw
    scale = min(1.0, MATCH_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))
