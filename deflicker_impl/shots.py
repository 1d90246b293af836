"""Scene cuts: where a clip's shots start, robust to flicker.

One atlas per clip assumes one continuous shot: across a cut it would ghost two scenes into each
other. `detect_scene_cuts` finds the cuts so that every later stage can restart at them.

Flicker changes a frame's brightness and colour, a cut changes its content. Each frame is
therefore reduced to the structure of a small log-luma thumbnail (gain, gamma and smooth local
gain fields drop out, see `structure_maps`), and neighbouring frames are compared by
correlation. A cut is a difference that stands out from the clip's
typical frame-to-frame difference around it (fast motion raises both), or one so large that the
two frames share nothing (a clip made of cuts only). Near-uniform frames (black frames of a
fade) carry no content and never start a shot; repeated frames are ignored when judging what
is typical, and motion of up to ~6% of the frame per frame is searched for. Known limits:
faster motion over smooth content can decorrelate neighbouring frames like a cut does (lower
the sensitivity or turn cuts off for such clips); gradual transitions (dissolves) are not
cuts and are not reported.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .clip import to_nchw
from .progress import ProgressFn

THUMB = 64  # thumbnail side: enough to tell scenes apart, blind to noise and fine detail
SEARCH = 4  # thumbnail pixels of shift searched (6% of the frame): motion is not a cut
BLUR = 9  # box blur (thumbnail pixels) whose removal leaves the structure, not the lighting
DUPLICATE = 0.02  # difference below which two frames are the same picture repeated
FLAT = 0.01  # band-pass RMS (log units) below which a frame has no content (black, a fade)


@dataclass(frozen=True)
class ShotConfig:
    """How a clip is split into shots and segments before the atlas is fitted.

    scene_cuts: detect cuts and fit one atlas per shot (off: the whole clip is one shot).
    cut_sensitivity: 0..1; higher finds subtler cuts (and risks false ones in fast motion).
    max_segment_frames: a longer shot is fitted in overlapping segments of at most this many
      frames (the atlas's capacity and the fit's memory grow with it). 0: never split.
    segment_overlap: frames shared by neighbouring segments, cross-faded so no seam shows.
    """

    scene_cuts: bool = True
    cut_sensitivity: float = 0.5
    max_segment_frames: int = 150
    segment_overlap: int = 16


def structure_maps(frames: torch.Tensor, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Flicker-blind structure of each frame of [T,H,W,3] -> ([T,P] unit-norm maps, [T] RMS).

    Log-luma of a THUMB x THUMB thumbnail minus its local mean: in the log domain a gain is an
    offset and a gamma a scale, and a smooth local gain field is low-pass, so all three vanish
    or are normalised away; what is left is where the edges and textures are.
    """
    maps, rms = [], []
    for start in range(0, frames.shape[0], chunk):
        part = to_nchw(frames[start:start + chunk]).float()
        small = F.adaptive_avg_pool2d(part, (THUMB, THUMB))
        lum = (small[:, 0] * 0.299 + small[:, 1] * 0.587 + small[:, 2] * 0.114)[:, None]
        log_lum = torch.log(lum + 0.02)
        pad = BLUR // 2
        local = F.avg_pool2d(F.pad(log_lum, (pad,) * 4, mode="replicate"), BLUR, stride=1)
        band = (log_lum - local)[:, 0, 2:-2, 2:-2].flatten(1)
        band = band - band.mean(dim=1, keepdim=True)
        energy = band.square().mean(dim=1).sqrt()
        maps.append(band / (band.norm(dim=1, keepdim=True) + 1e-8))
        rms.append(energy)
    return torch.cat(maps), torch.cat(rms)


def frame_differences(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d [T-1], flat [T]): d[i] = 1 - the best correlation of the structure of frames i and
    i+1 over shifts of up to SEARCH thumbnail pixels (about 0: the same view, moved; about 1:
    unrelated images); flat[t] is True for frames without content.

    The shift search lets a fast pan or a small object crossing a plain background (its edges
    move off themselves within a frame) still read as the same shot.
    """
    return differences_from_maps(*structure_maps(frames))


def differences_from_maps(maps: torch.Tensor, rms: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """`frame_differences` from the clip's `structure_maps` (which may have been gathered chunk
    by chunk while the clip streams past: they are small, [T, 3600] floats)."""
    side = THUMB - 4
    grid = maps.reshape(-1, 1, side, side)
    inner = side - 2 * SEARCH
    centre = grid[:-1, :, SEARCH:side - SEARCH, SEARCH:side - SEARCH].flatten(1)
    centre = centre - centre.mean(dim=1, keepdim=True)
    centre = centre / (centre.norm(dim=1, keepdim=True) + 1e-8)
    best = []
    for start in range(0, centre.shape[0], 32):
        windows = F.unfold(grid[start + 1:start + 33], kernel_size=inner)  # [n,inner^2,shifts]
        windows = windows - windows.mean(dim=1, keepdim=True)
        windows = windows / (windows.norm(dim=1, keepdim=True) + 1e-8)
        ncc = torch.einsum("np,nps->ns", centre[start:start + 32], windows)
        best.append(ncc.max(dim=1).values)
    d = 1.0 - torch.cat(best) if best else torch.zeros(0)
    return d, rms < FLAT


def detect_scene_cuts(
    frames: torch.Tensor,
    sensitivity: float = 0.5,
    on_progress: ProgressFn | None = None,
) -> list[int]:
    """Shot start frames of a clip [T,H,W,3] in 0..1 -> sorted list, always starting with 0.

    sensitivity 0..1 (0.5: default): higher finds subtler cuts. A cut in the first or last
    frames is found too (a one-frame shot at either end).
    """
    if frames.shape[0] < 2:
        return [0]
    starts = cuts_from_differences(*frame_differences(frames), sensitivity)
    if on_progress is not None:
        on_progress(1, 1)
    return starts


def shot_starts_for(frames: torch.Tensor, shots: ShotConfig) -> list[int]:
    """Shot starts of a clip [T,H,W,3] as `shots` asks: its detected cuts, or [0] with
    scene_cuts off."""
    return detect_scene_cuts(frames, shots.cut_sensitivity) if shots.scene_cuts else [0]


def cuts_from_differences(d: torch.Tensor, flat: torch.Tensor, sensitivity: float = 0.5
                          ) -> list[int]:
    """Shot start frames from `frame_differences` (d [T-1], flat [T]): the decision of
    `detect_scene_cuts`, on its own so a streamed clip's structure maps get the same one."""
    t = flat.shape[0]
    if t < 2:
        return [0]
    s = min(max(float(sensitivity), 0.0), 1.0)
    # Within a shot d stays below ~0.7 even in fast motion (bikes.mp4: median 0.06, max 0.67);
    # across a cut it is 0.8-1. A pair is a cut when it stands out from its neighbourhood's typical
    # difference (the median of the neighbours, itself left out) by `ratio` and exceeds
    # `floor`, or when it exceeds `certain` whatever its neighbours (clips made of cuts).
    ratio = 4.0 - 2.0 * s
    floor = 0.6 - 0.2 * s
    certain = 0.8 - 0.1 * s
    half = 8
    starts = [0]
    for i in range(t - 1):
        if flat[i] or flat[i + 1]:
            continue  # a fade through black: no content to compare
        lo, hi = max(0, i - half), min(t - 1, i + half + 1)
        others = torch.cat((d[lo:i], d[i + 1:hi]))
        # Repeated frames (frame-rate conversions, AI clips) differ by ~0: they say nothing
        # about how much the content moves, and would halve the typical difference.
        moving = others[others > DUPLICATE]
        others = moving if moving.numel() else others
        typical = float(others.median()) if others.numel() else 0.0
        value = float(d[i])
        if value >= certain or (value >= floor and value >= ratio * typical):
            starts.append(i + 1)
    return starts


def shot_ranges(starts: list[int], num_frames: int) -> list[tuple[int, int]]:
    """Shot starts -> [(start, stop)) ranges covering 0..num_frames."""
    bounds = sorted(set(starts) | {0}) + [num_frames]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def shot_starts_of(frames: torch.Tensor, atlas=None) -> list[int]:
    """Shot starts of a clip: those of a fitted atlas of the same clip (anything with
    `shot_starts` and `num_frames`, e.g. a ClipAtlas) when given, else detected on `frames`.

    The later stages restart at cuts; reading them from the atlas keeps every stage on the
    same shots and saves a second detection.
    """
    starts = getattr(atlas, "shot_starts", None)
    if starts is not None and getattr(atlas, "num_frames", None) == frames.shape[0]:
        return list(starts)
    return detect_scene_cuts(frames)
