"""The correction as a smooth gain field: measured where the atlas is right, kept only where fast.

The neural filter's output is right where the atlas frame shows the frame's content and wrong
where it does not (a turning character, content that appears, a ghost): there it copies the
atlas's colour. Flicker, though, is smooth across the frame, so what the filter does on the
reliable part of a frame tells what the flicker is on the rest of it. Per frame we fit a smooth
per-channel gain field (colour_fields.py) from the frame to the filter's output, weighted by
the atlas confidence (atlas/confidence.py): where the atlas is wrong, the field comes from the
reliable regions around it, applied to the frame itself.

Flicker is also fast and mean-reverting in time, the scene's own light is not: a lamp switched
on stays on, a fade keeps fading. The field's log gains are split into their frame-wide mean and
the spatial deviation from it, and from both their persistent part is taken out (per shot): the
running median over 2 x `flicker_window` + 1 frames, which keeps steps and ramps whole, and for
the frame-wide mean the mean of two series that each go one way (the scene's light goes one
way within a shot, slow flicker up and down), one fitted to that median and one to a few
straight pieces that can jump (`persistent_level`). So exactly the persistent part of the
correction is dropped and the scene's own changes pass through, while changes that revert are
corrected. The same median drops the atlas's slow errors on content it cannot hold, which is
why a clean clip comes back nearly untouched.

The filter's per-pixel detail beyond the smooth field is added back where the atlas is
confident, in proportion to the flicker measured in that frame (a frame that needs no
correction gets none), and by at most `detail_limit`: what a smooth gain cannot express of
flicker (its gamma and offset parts, a tone-dependent change) is a few levels, while larger
differences between the filter's output and the smooth field are the atlas's content showing
through, even where the confidence is high (a lamp's own fast change on a clean clip opened the
gate and copied it). Kept corrections within the measurement's noise (`noise_floor`) are
shrunk to nothing, so that a clip without flicker comes back untouched rather than moved by
the filter's own jitter. `strength` scales the whole correction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .atlas.confidence import AtlasConfidence, coarse_frames
from .colour_fields import SmoothColourField, fit_smooth_colour_field
from .errors import DeflickerInputError
from .temporal import monotone_fit, piecewise_linear_fit, temporal_median

MIN_GAIN = 0.05


@dataclass(frozen=True)
class FlickerFieldConfig:
    """How the filter's correction is turned into a faithful one (part of FilterConfig)."""

    # Frames a change must last to count as the scene's own light (kept); faster changes are
    # flicker (removed). 0: keep no persistent change (e.g. a generator's chunk seams).
    flicker_window: int = 10
    strength: float = 1.0  # 0: the input unchanged, 1: the full correction
    nodes_long_side: int = 3  # nodes of the smooth gain field along the frame's long side
    fit_long_side: int = 96  # long side at which the field is fitted
    # Mean |log gain| of a frame's kept correction at which the filter's per-pixel detail is
    # fully added back (less correction: proportionally less detail).
    detail_gate: float = 0.1
    # Largest per-pixel detail added back (0..1 units; 0.04 is about 10 levels).
    detail_limit: float = 0.04
    # Kept log gains about this size and below are the measurement's own noise, not flicker
    # (see shrink_small_corrections); 0: every kept correction is applied as measured.
    noise_floor: float = 0.02
    # Straight pieces (with a jump between them) that the frame-wide persistent level may
    # have besides the running median's estimate (see persistent_level); 0: that median alone.
    light_pieces: int = 3
    # With N > 0, a change of the frame-wide colour balance (the channels apart, not their
    # common brightness) must last N times flicker_window to count as the scene's own light
    # (see persistent_level): for clips whose own light only brightens or dims. 0: balance and
    # brightness alike, as the channels come (the default: a clip's own grade keeps its colour).
    colour_window_scale: int = 0
    chunk: int = 16

    def __post_init__(self) -> None:
        if not self.detail_gate > 0 or not self.detail_limit >= 0 or not self.noise_floor >= 0:
            raise DeflickerInputError(
                f"detail_gate must be > 0, detail_limit >= 0 (0: no per-pixel detail) and "
                f"noise_floor >= 0 (0: no shrinking), got {self.detail_gate!r}, "
                f"{self.detail_limit!r} and {self.noise_floor!r}.")
        if isinstance(self.light_pieces, bool) or not isinstance(self.light_pieces, int) \
                or self.light_pieces < 0:
            raise DeflickerInputError(
                f"light_pieces must be a whole number >= 0 (0: the running median alone), got "
                f"{self.light_pieces!r}.")
        if isinstance(self.colour_window_scale, bool) \
                or not isinstance(self.colour_window_scale, int) or self.colour_window_scale < 0:
            raise DeflickerInputError(
                f"colour_window_scale must be a whole number >= 0 (0: colour balance and "
                f"brightness alike), got {self.colour_window_scale!r}.")


def check_strength(value) -> float:
    """`strength` as a float in 0..1, or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= float(value) <= 1.0:
        raise DeflickerInputError(
            f"strength must be between 0 and 1 (0: the input unchanged, 1: the full "
            f"correction), got {value!r}.")
    return float(value)


def check_flicker_window(value) -> int:
    """`flicker_window` as a whole number of frames >= 0, or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DeflickerInputError(
            f"flicker_window must be a whole number of frames >= 0 (changes that last longer "
            f"are kept as the scene's own light; 0 keeps none), got {value!r}.")
    return value


def gain_field(log_gain: torch.Tensor) -> SmoothColourField:
    """The smooth per-channel gain field of log gains [n,3,gy,gx]."""
    coeffs = torch.zeros(log_gain.shape[0], 3, 3, *log_gain.shape[-2:])
    coeffs[:, :, 1] = log_gain.exp()
    return SmoothColourField(coeffs)


def fit_log_gains(source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None,
                  config: FlickerFieldConfig) -> torch.Tensor:
    """Log gains [n,3,gy,gx] of the smooth gain field target ~ gain(x) * source ([n,3,h,w])."""
    field = fit_smooth_colour_field(source, target, weights, config.nodes_long_side,
                                    model="gain")
    return field.coefficients[:, :, 1].clamp_min(MIN_GAIN).log()


@dataclass
class FlickerField:
    """Per-frame smooth log-gain fields [T,3,gy,gx]: `fitted` (the filter's own correction),
    `measured` (the correction as estimated, see measure_flicker_field) and `kept` (after the
    scene's own light is taken out). `offset` [T,3] (0..1 units), when given, is the kept
    correction's frame-wide level as an added colour: the gain field then brings only its
    spatial shape (see measure_flicker_field)."""

    fitted: torch.Tensor
    measured: torch.Tensor
    kept: torch.Tensor
    offset: torch.Tensor | None = None

    def gains(self, start: int, stop: int, which: str = "kept") -> SmoothColourField:
        return gain_field(getattr(self, which)[start:stop])

    def apply_kept(self, source: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The kept correction of frames start..stop applied to source [n,3,H,W]."""
        kept = self.kept[start:stop]
        if self.offset is None:
            return gain_field(kept).apply(source)
        shape = kept - kept.mean(dim=(2, 3), keepdim=True)
        return gain_field(shape).apply(source) + self.offset[start:stop, :, None, None]

    def correction_per_frame(self) -> torch.Tensor:
        """Mean |log gain| of the kept correction per frame [T]."""
        return self.kept.abs().mean(dim=(1, 2, 3))


def measure_flicker_field(
    frames: torch.Tensor, atlas_frames: torch.Tensor, filtered_coarse: torch.Tensor,
    confidence: AtlasConfidence, config: FlickerFieldConfig, level_from_atlas: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Log-gain fields [T,3,gy,gx] of the correction, measured where the atlas is right:
    (the filter's own field, the field as measured, the level as an offset [T,3] or None).

    The field is what the filter did (filtered ~ gain(x) * frame, fitted with the confidence
    as weights). With `level_from_atlas` its frame-wide level is replaced by the atlas's own:
    the filter takes over the atlas's colour only in part, so a persistent step (a generator's
    chunk seam) would partly stay; the atlas has one colour per shot. That level is then also
    returned as an added colour, the difference of the confidence-weighted mean colours of
    atlas frame and frame (after the field's spatial shape), and applied so: a gain that
    matches the mean of the reliable pixels over- or undershoots on pixels far brighter than
    they are (neon over a dark street), an offset moves every pixel alike. On flicker, which
    is to be told apart from the scene's own light, the filter's level is the more accurate
    one (dev half of bench/generative_bench.py), so it is the default.

    frames, atlas_frames [T,H,W,3]; filtered_coarse [T,3,h,w], the filter's output at the fit
    size."""
    t = frames.shape[0]
    fitted, fields, offsets = [], [], []
    for start in range(0, t, config.chunk):
        stop = min(t, start + config.chunk)
        source = coarse_frames(frames, start, stop, config.fit_long_side)
        atlas = coarse_frames(atlas_frames, start, stop, config.fit_long_side)
        target = filtered_coarse[start:stop]
        weights = F.interpolate(confidence.coarse[start:stop].float(), size=source.shape[-2:],
                                mode="bilinear", align_corners=False)
        log_gain = fit_log_gains(source, target, weights, config)
        fitted.append(log_gain)
        if not level_from_atlas:
            fields.append(log_gain)
            continue
        total = weights.sum(dim=(2, 3)).clamp_min(1e-6)  # [n,1]
        shape = log_gain - log_gain.mean(dim=(2, 3), keepdim=True)
        shaped = gain_field(shape).apply(source)
        atlas_mean = (atlas * weights).sum(dim=(2, 3)) / total  # [n,3]
        shaped_mean = (shaped * weights).sum(dim=(2, 3)) / total
        level = atlas_mean.clamp_min(1e-3).log() - shaped_mean.clamp_min(1e-3).log()
        fields.append(shape + level[..., None, None])
        offsets.append(atlas_mean - shaped_mean)
    return torch.cat(fitted), torch.cat(fields), torch.cat(offsets) if offsets else None


def keep_scene_light(log_gain: torch.Tensor, flicker_window: int,
                     shot_starts: list[int] | None = None, light_pieces: int = 0,
                     colour_window_scale: int = 0) -> torch.Tensor:
    """Drop the persistent part of log-gain fields [T,3,gy,gx], per shot: of their spatial
    deviation from the frame-wide mean, its running median over 2 * flicker_window + 1 frames;
    of the frame-wide mean, `persistent_level` (with `light_pieces` and `colour_window_scale`).

    Within a shot the scene's own frame-wide light goes one way (a lamp switched on, a fade, a
    grade drifting); what slow flicker leaves in the running median goes up and down, and the
    monotone fit does not follow it (measured: README, "Faithful colour"). A light switched on
    and off again within one shot is partly taken for flicker."""
    if flicker_window <= 0:
        return log_gain.clone()
    t = log_gain.shape[0]
    window = 2 * int(flicker_window) + 1
    overall = log_gain.mean(dim=(2, 3), keepdim=True)  # [T,3,1,1]
    local = log_gain - overall
    out = torch.empty_like(log_gain)
    bounds = sorted(set(shot_starts or []) | {0, t})
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        o = overall[a:b].reshape(b - a, -1)
        loc = local[a:b].reshape(b - a, -1)
        o = o - persistent_level(o, flicker_window, light_pieces, colour_window_scale)
        loc = loc - temporal_median(loc, window, edges="shrink")
        out[a:b] = (o.reshape(b - a, 3, 1, 1) + loc.reshape(local[a:b].shape))
    return out


# A straight piece of the persistent level must lower the squared error by this many times the
# level's noise variance (per channel) to be taken: a light switched on (a jump of 0.3 in log)
# passes easily, what fast flicker happens to put into a span does not (dev half of
# bench/generative_bench.py: README, "Faithful colour").
PIECE_COST_IN_NOISE = 20.0


def persistent_level(level: torch.Tensor, flicker_window: int, light_pieces: int = 0,
                     colour_window_scale: int = 0) -> torch.Tensor:
    """The scene's own part of a shot's frame-wide log gain [T,C]: a series that goes one way
    (temporal.monotone_fit), fitted to the running median over 2 * flicker_window + 1 frames;
    with `light_pieces` > 0 the mean of that and of the same fit to at most `light_pieces`
    straight pieces of at least flicker_window + 1 frames (temporal.piecewise_linear_fit).
    With `colour_window_scale` > 0 (and C > 1) that is the brightness's part (the mean over
    the channels) only; each channel's deviation from it (the colour balance) gets the running
    median's fit alone, over colour_window_scale times the window.

    The running median follows a ramp but, within a window of a step, takes the extreme
    flicker of the side in the majority, so the step comes out partly flattened; the pieces
    place a step at its frame and average the flicker over a whole piece, but their ends
    follow whatever flicker lies there. Their mean is closer than either (README, "Faithful
    colour"). Time alone cannot tell flicker held about a window from light that goes one
    way; the colour balance is a second cue where the scene's own light only scales all
    channels alike (a lamp, a fade, lightning) while the flicker also tints, but it takes a
    clip's own change of grade for flicker (README)."""
    if colour_window_scale > 0 and level.shape[1] > 1:
        brightness = level.mean(dim=1, keepdim=True)
        balance = level - brightness
        window = colour_window_scale * flicker_window
        # The balance's channels sum to nought, so they go opposite ways: each its own fit.
        return persistent_level(brightness, flicker_window, light_pieces) + torch.cat(
            [persistent_level(balance[:, c:c + 1], window) for c in range(level.shape[1])], 1)
    median = temporal_median(level, 2 * int(flicker_window) + 1, edges="shrink")
    by_median = monotone_fit(median)
    if light_pieces <= 0:
        return by_median
    # Robust spread of the fast part; the 1e-3 (a tenth of a percent) keeps the cost from
    # vanishing on a clean clip, whose level barely moves.
    noise = 1.4826 * float((level - median).abs().median()) + 1e-3
    pieces = piecewise_linear_fit(level, int(flicker_window) + 1, light_pieces,
                                  PIECE_COST_IN_NOISE * level.shape[1] * noise ** 2)
    return 0.5 * (by_median + monotone_fit(pieces))


def shrink_small_corrections(log_gain: torch.Tensor, noise_floor: float) -> torch.Tensor:
    """Kept log gains with the measurement's noise shrunk away: g * max(0, 1 - floor^2 / g^2)
    (the non-negative garrote), elementwise on [T,3,gy,gx].

    On a clip without flicker the kept correction is not zero: the filter's output jitters from
    frame to frame where the atlas is subtly wrong, and the running median leaves that fast
    part in, so a clean clip would be shifted by a percent or two at random. Flicker's
    corrections are several times larger; the garrote zeroes gains below the floor and leaves
    large ones nearly whole (a log gain of 3 x floor keeps 89 % of itself), unlike a threshold that
    subtracts the floor from every correction. 0: returned unchanged."""
    if noise_floor <= 0:
        return log_gain
    keep = (1.0 - noise_floor ** 2 / log_gain.square().clamp_min(1e-12)).clamp_min(0.0)
    return log_gain * keep


def apply_flicker_correction(
    frames: torch.Tensor,
    filtered: torch.Tensor,
    field: FlickerField,
    confidence: AtlasConfidence,
    config: FlickerFieldConfig,
    start: int,
    stop: int,
) -> torch.Tensor:
    """Frames start..stop of the faithful output -> [n,3,H,W] float32.

    frames: the whole clip [T,H,W,3]; filtered: the filter's output for start..stop [n,3,H,W].
    """
    part = frames[start:stop]
    part = part.float() / 255.0 if not part.dtype.is_floating_point else part.float()
    source = part[..., :3].clamp(0, 1).permute(0, 3, 1, 2)
    kept = field.apply_kept(source, start, stop)
    fitted = field.gains(start, stop, "fitted").apply(source)
    amount = field.correction_per_frame()[start:stop] / config.detail_gate
    detail = confidence.at(start, stop, source.shape[-2:]) * amount.clamp(0, 1)[:, None, None,
                                                                                None]
    limit = config.detail_limit
    out = kept + detail * (filtered - fitted).clamp_(-limit, limit)
    if config.strength != 1.0:
        out = source + config.strength * (out - source)
    return out.clamp_(0.0, 1.0)


def drop_persistent_change(
    result: torch.Tensor, source_coarse: torch.Tensor, flicker_window: int,
    shot_starts: list[int] | None = None, config: FlickerFieldConfig | None = None,
) -> torch.Tensor:
    """Take out of a stage's change of colour the part that persists longer than
    `flicker_window` frames, in place on `result` [T,H,W,3]; returns it.

    source_coarse [T,3,h,w]: the stage's input at the fit size. The change from it to
    `result` is measured as a smooth gain field per frame, and its persistent part (the running
    median of keep_scene_light) is divided out, so the stage may remove fast flicker but can
    neither hold a colour too long (a lag behind a fade) nor drift. 0: no change is dropped.
    """
    cfg = config or FlickerFieldConfig()
    t = result.shape[0]
    if flicker_window <= 0 or t < 2:
        return result
    logs = []
    for start in range(0, t, cfg.chunk):
        stop = min(t, start + cfg.chunk)
        source = source_coarse[start:stop]
        target = coarse_frames(result, start, stop, cfg.fit_long_side)
        if target.shape[-2:] != source.shape[-2:]:
            target = F.interpolate(target, size=source.shape[-2:], mode="area")
        logs.append(fit_log_gains(source, target, None, cfg))
    measured = torch.cat(logs)
    # The running median alone: a stage's persistent change is its own lag or drift, not a
    # light switched on, and straight pieces cost clean clips 0.5 dB there (README).
    undo = FlickerField(measured, measured, keep_scene_light(measured, flicker_window,
                                                             shot_starts, light_pieces=0))
    for start in range(0, t, cfg.chunk):
        stop = min(t, start + cfg.chunk)
        persistent = undo.kept[start:stop] - measured[start:stop]  # log gain that cancels it
        part = result[start:stop].permute(0, 3, 1, 2)
        result[start:stop] = gain_field(persistent).apply(part).clamp_(0, 1).permute(0, 2, 3, 1)
    return result
