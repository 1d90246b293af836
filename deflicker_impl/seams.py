"""Chunk seams: the persistent colour step that sliding-window video generators (Wan and others)
leave where one generated chunk meets the next, found and removed before deflickering.

A seam changes the colour of the whole frame from one frame to the next and stays. It is
measured on the frames themselves, not on an atlas: each pair of consecutive frames is aligned
by optical flow (at a small size), and the median colour difference over the pixels that the
flow holds in both frames is the pair's step. Content that moves or appears does not shift a
median of aligned pixels, so on a clean generated clip the steps stay well below a level; a seam
stands out by far. A step is taken for a seam when it is large in 8-bit levels, many times the
clip's typical step, and held: the frames just before and just after it are steady. Each seam's
step is then subtracted from every later frame of its shot, so every chunk takes the colour of
the shot's first chunk.

What else looks like a seam: a light switched on or off at one frame, and flicker held for
several frames (each change of its level is such a step). Both are removed alike, which is why
this is an option and off by default. Seams inside fast flicker (a new level every frame or
two) are not steady on either side and are left to the deflicker stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .atlas.confidence import coarse_frames
from .clip import prepare_clip
from .errors import DeflickerInputError
from .flow import compute_flow, occlusion_mask, warp_with_flow
from .progress import ProgressFn
from .shots import shot_ranges, shot_starts_of


@dataclass(frozen=True)
class SeamConfig:
    """Chunk-seam removal (off unless `enabled`)."""

    enabled: bool = False
    # Smallest step taken for a seam, in 8-bit levels of its largest channel.
    min_levels: float = 4.0
    # A seam's step over the clip's typical frame-to-frame step (robust spread per channel).
    min_ratio: float = 8.0
    # Frames on each side of a seam that must hold its level (fewer at a shot's ends).
    hold: int = 3
    # Long side of the frames the steps are measured on.
    long_side: int = 160
    # Share of pixels the flow must hold in both frames of a pair; fewer: no step is measured.
    min_valid: float = 0.25

    def __post_init__(self) -> None:
        if self.min_levels <= 0 or self.min_ratio <= 0:
            raise DeflickerInputError(
                f"SeamConfig: min_levels ({self.min_levels}) and min_ratio ({self.min_ratio}) "
                "must be positive.")
        if self.hold < 1 or self.long_side < 16:
            raise DeflickerInputError(
                f"SeamConfig: hold ({self.hold}) must be at least 1 frame and long_side "
                f"({self.long_side}) at least 16 pixels.")


@dataclass(frozen=True)
class ChunkSeam:
    """A seam between frames `frame - 1` and `frame`: `step` [3] is the colour (0..1 units, RGB)
    that the frames from `frame` on gained."""

    frame: int
    step: tuple[float, float, float]


def measure_frame_steps(frames: torch.Tensor, config: SeamConfig | None = None,
                        on_progress: ProgressFn | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour step of each consecutive pair, measured on flow-aligned pixels.

    frames [T,H,W,3] in 0..1 -> (steps [T-1,3]: frame t+1 minus frame t, 0..1 units; valid
    [T-1] bool: False where the flow held too few pixels to measure a step, e.g. at a cut)."""
    cfg = config or SeamConfig()
    small = coarse_frames(frames, 0, frames.shape[0], cfg.long_side)
    steps = torch.zeros(max(0, small.shape[0] - 1), 3)
    valid = torch.zeros(steps.shape[0], dtype=torch.bool)
    for t in range(steps.shape[0]):
        a, b = small[t].permute(1, 2, 0), small[t + 1].permute(1, 2, 0)
        # normalise: a seam shifts the brightness, and the flow must not follow it.
        forward = compute_flow(a, b, normalise=True)
        backward = compute_flow(b, a, normalise=True)
        held = occlusion_mask(forward[None], backward[None])[0].flatten() > 0
        if held.float().mean() >= cfg.min_valid:
            aligned = warp_with_flow(small[t + 1:t + 2], forward[None])[0]
            steps[t] = (aligned - small[t]).flatten(1)[:, held].median(dim=1).values
            valid[t] = True
        if on_progress is not None:
            on_progress(t + 1, steps.shape[0])
    return steps, valid


def find_chunk_seams(frames: torch.Tensor, config: SeamConfig | None = None,
                     shot_starts: list[int] | None = None,
                     on_progress: ProgressFn | None = None) -> list[ChunkSeam]:
    """The chunk seams of a clip [T,H,W,3] in 0..1, in frame order (none across a shot cut;
    the cuts are detected when `shot_starts` is None)."""
    frames = prepare_clip(frames, "frames")
    shots = shot_ranges(shot_starts_of(frames) if shot_starts is None else shot_starts,
                        frames.shape[0])
    return _find_seams(frames, config or SeamConfig(), shots, on_progress)


def _find_seams(frames: torch.Tensor, cfg: SeamConfig, shots: list[tuple[int, int]],
                on_progress: ProgressFn | None) -> list[ChunkSeam]:
    """find_chunk_seams on a prepared clip and its shot ranges."""
    steps, valid = measure_frame_steps(frames, cfg, on_progress)
    if int(valid.sum()) < 2:
        return []
    measured = steps[valid]
    spread = 1.4826 * (measured - measured.median(dim=0).values).abs().median(dim=0).values
    # Below half a level the spread is 8-bit rounding, not the clip's own change.
    spread = spread.clamp_min(0.5 / 255.0)
    seams = []
    for start, stop in shots:
        for t in range(start, stop - 1):  # the pairs inside the shot; t + 1: the frame after
            step = steps[t]
            if not valid[t] or float(step.abs().max()) * 255.0 < cfg.min_levels \
                    or float((step.abs() / spread).max()) < cfg.min_ratio:
                continue
            if _held(steps, valid, t, start, stop, cfg.hold):
                seams.append(ChunkSeam(t + 1, tuple(float(v) for v in step)))
    return seams


def _held(steps: torch.Tensor, valid: torch.Tensor, t: int, shot_start: int, shot_stop: int,
          hold: int) -> bool:
    """Whether the step between frames t and t+1 is held: the steps of the `hold` pairs on
    each side (within the shot; at least one on each) add up to far less than it, so the level
    neither drifts there nor comes back. A step into a shot's first or last frame has no such
    evidence (an old film's first frame, a fade-in) and is never a seam."""
    before = range(max(shot_start, t - hold), t)
    after = range(t + 1, min(shot_stop - 1, t + 1 + hold))
    size = float(steps[t].abs().max())
    for side in (before, after):
        pairs = [p for p in side if valid[p]]
        if not pairs or len(pairs) < len(side):
            return False
        if float(steps[pairs].abs().sum(dim=0).max()) > 0.5 * size:
            return False
    return True


def remove_chunk_seams(frames: torch.Tensor, config: SeamConfig | None = None,
                       shot_starts: list[int] | None = None,
                       on_progress: ProgressFn | None = None
                       ) -> tuple[torch.Tensor, list[ChunkSeam]]:
    """(frames [T,H,W,3] float32 with every seam's step taken out of the frames after it, the
    seams found). A clip without seams comes back unchanged (the same values)."""
    frames = prepare_clip(frames, "frames")
    shots = shot_ranges(shot_starts_of(frames) if shot_starts is None else shot_starts,
                        frames.shape[0])
    seams = _find_seams(frames, config or SeamConfig(), shots, on_progress)
    if not seams:
        return frames, seams
    offset = torch.zeros(frames.shape[0], 3)
    for seam in seams:
        shot_stop = next(stop for start, stop in shots if start <= seam.frame < stop)
        offset[seam.frame:shot_stop] -= torch.tensor(seam.step)
    return (frames + offset[:, None, None, :]).clamp_(0.0, 1.0), seams


def describe_seams(seams: list[ChunkSeam]) -> str:
    """One line for people: where the seams were and what each one's step was (8-bit levels)."""
    if not seams:
        return "chunk seams: none found"
    parts = [f"frame {seam.frame} ({', '.join(f'{c} {round(v * 255):+d}' for c, v in zip('RGB', seam.step))})"
             for seam in seams]
    return f"chunk seams removed at {'; '.join(parts)}"
