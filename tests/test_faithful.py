"""Specification of faithful colour (`PipelineConfig.faithful()`, off by default): where the
atlas is wrong its colour is not used, the scene's own light is kept, clean input comes back
intact.

One small clip: a textured background panning slowly, and an orange object that appears half
way through (the atlas, fitted to the whole clip, cannot know it). The numbers were measured
once on this clip (atlas colour in brackets) and the bounds leave a margin:
object colour error 7.2 levels (37), object confidence 0.03 against 0.92 on the static
background, clean clip 56.0 dB to itself (38.8), a +35 % light step 1.21x of 1.34x (1.01x).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from synthetic_clips import panning_clip, smooth_texture

from bench.generative_bench import BEFORE_DETAIL_LIMIT, BEFORE_NOISE_FLOOR, PREVIOUS_FAITHFUL
from deflicker_impl.atlas import fit_clip_atlas, render_atlas_frames
from deflicker_impl.atlas.confidence import (
    atlas_confidence,
    confidence_from_mask,
    confidence_heatmap,
)
from deflicker_impl.colour_fields import fit_smooth_colour_field
from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.metrics import psnr
from deflicker_impl.evaluation.synthetic import (
    add_chunk_seam,
    add_light_event,
    add_synthetic_flicker,
)
from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter
from deflicker_impl.flicker_field import (
    FlickerFieldConfig,
    keep_scene_light,
    persistent_level,
    shrink_small_corrections,
)
from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.refine.apply import RefineConfig
from deflicker_impl.shots import ShotConfig
from deflicker_impl.temporal import temporal_median

T, H, W = 24, 64, 96
PREVIOUS = {"filter": FilterConfig(faithful=False), "refine": RefineConfig(flicker_window=0)}
FAITHFUL = PipelineConfig.faithful()


pytestmark = pytest.mark.usefixtures("one_thread")


def appearing_object_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """(clean clip [T,H,W,3], object masks [T,H,W]): the object enters at frame T // 2."""
    background = panning_clip(T, H, W, 0.5, seed=3)
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    shade = 0.75 + 0.35 * smooth_texture(H, W, 11, detail=5).mean(0)
    colour = (torch.tensor([0.95, 0.5, 0.12]) * shade[..., None]).clamp(0, 1)
    clean, masks = background.clone(), torch.zeros(T, H, W)
    for t in range(T // 2, T):
        cx = 0.6 * W + 0.8 * (t - T // 2)
        m = (((xs - cx) / 14) ** 2 + ((ys - 0.5 * H) / 16) ** 2 <= 1).float()
        clean[t] = background[t] * (1 - m[..., None]) + colour * m[..., None]
        masks[t] = m
    return clean, masks


@pytest.fixture(scope="module")
def scene():
    torch.set_num_threads(1)
    clean, masks = appearing_object_clip()
    flickered = add_synthetic_flicker(clean, window=1, seed=5)
    return clean, masks, flickered, run_pipeline(flickered.clone(), FAITHFUL)


def object_colour_error(out, clean, masks) -> float:
    """Largest per-channel error of the object's mean colour (8-bit levels)."""
    obj = masks[T // 2:] > 0.5
    diff = out[T // 2:][obj].mean(0) - clean[T // 2:][obj].mean(0)
    return float(diff.abs().max() * 255)


def test_confidence_is_low_on_the_appearing_object_and_high_on_the_static_background(scene):
    _clean, masks, _, result = scene
    conf = result.confidence.mask()
    assert conf.shape == (T, H, W) and float(conf.min()) >= 0 and float(conf.max()) <= 1
    static = masks.sum(0) == 0
    static[:, int(0.45 * W):] = False  # away from where the object passes
    assert float(conf[T // 2:][masks[T // 2:] > 0.5].mean()) < 0.2
    assert float(conf[:, static].mean()) > 0.8


def test_the_appearing_object_keeps_its_colour(scene):
    clean, masks, flickered, result = scene
    ours = object_colour_error(result.frames, clean, masks)
    previous = object_colour_error(run_pipeline(flickered.clone(), PipelineConfig(**PREVIOUS))
                                   .frames, clean, masks)
    assert ours < 14.0, ours  # measured 7.2
    assert previous > 2 * ours  # measured 36.8: the previous release painted it in atlas colour
    assert psnr(result.frames, clean) > psnr(flickered, clean) + 4.0


def test_a_clean_clip_comes_back_nearly_untouched(scene):
    clean = scene[0]
    # measured 56.0 dB (38.8 with atlas colour)
    assert psnr(run_pipeline(clean.clone(), FAITHFUL).frames, clean) > 42.0


def test_a_persistent_light_step_survives_and_the_flicker_goes():
    lit = add_light_event(panning_clip(T, H, W, 0.5, seed=3), "step", start=0.5, amount=0.35)
    flickered = add_synthetic_flicker(lit, window=1, seed=6)

    def step_ratio(clip):
        luma = clip.mean(dim=(1, 2, 3))
        return float(luma[T // 2 + 1:].mean() / luma[:T // 2 - 1].mean())

    ours = run_pipeline(flickered.clone(), FAITHFUL).frames
    previous = run_pipeline(flickered.clone(), PipelineConfig(**PREVIOUS)).frames
    assert step_ratio(lit) == pytest.approx(1.34, abs=0.02)
    assert step_ratio(ours) > 1.12  # measured 1.21: most of the step is kept ...
    assert step_ratio(previous) < 1.05  # ... atlas colour flattened it (1.01)
    assert psnr(ours, lit) > psnr(previous, lit) + 2.0  # measured 25.3 vs 20.7


def test_a_fast_change_of_the_scenes_own_light_is_left_nearly_intact():
    """A clean clip whose tones brighten over four frames (a gamma change, faster than the
    flicker window, so it is partly taken for flicker). The small corrections that remain are
    within the noise floor and shrunk away, and the filter's per-pixel detail is added back by
    at most `detail_limit`, so the atlas's content does not come through. Measured 50.5 dB to
    itself (43.2 without the noise floor). The previous release (the running median alone for
    the persistent level) gave 53.8: straight pieces of at least 11 frames do not follow a
    change that takes four, which costs this clip 3.3 dB (and is why they are averaged with
    the median, not used alone). The release before it (no noise floor) 45.7 dB, the one
    before that (unlimited detail from a correction of 0.03 on) 41.8 dB."""
    gamma = torch.ones(T)
    gamma[10:14] = torch.linspace(1.0, 0.6, 4)
    gamma[14:] = 0.6
    lit = panning_clip(T, H, W, 0.5, seed=3).clamp_min(1e-4) ** gamma[:, None, None, None]

    def with_flicker_settings(settings):
        return replace(FAITHFUL, filter=replace(FAITHFUL.filter, flicker=replace(
            FAITHFUL.filter.flicker, **settings)))

    def to_itself(settings):
        return psnr(run_pipeline(lit.clone(), with_flicker_settings(settings)).frames, lit)

    ours = to_itself({})
    assert ours > 50.0
    assert ours > to_itself({"noise_floor": 0.0}) + 5.0
    previous, before_floor = to_itself(PREVIOUS_FAITHFUL), to_itself(BEFORE_NOISE_FLOOR)
    assert ours > previous - 3.5
    assert previous > before_floor + 5.0
    assert before_floor > to_itself(BEFORE_DETAIL_LIMIT) + 2.5


def test_the_noise_floor_zeroes_small_corrections_and_leaves_large_ones_nearly_whole():
    floor = 0.02
    gains = torch.tensor([0.0, 0.01, -0.02, 0.06, -0.2])
    shrunk = shrink_small_corrections(gains, floor)
    assert torch.equal(shrunk[:3], torch.zeros(3))
    # 3 x floor keeps 8/9 of itself, 10 x floor 99 %; the sign is kept.
    assert shrunk[3:].tolist() == pytest.approx([0.06 * 8 / 9, -0.2 * 0.99], rel=1e-5)
    assert torch.equal(shrink_small_corrections(gains, 0.0), gains)


@pytest.mark.parametrize("light_pieces", [0, 3])
def test_keep_scene_light_drops_persistent_changes_and_keeps_fast_ones(light_pieces):
    t = torch.arange(40, dtype=torch.float32)
    step = (t >= 16).float() * 0.3  # a persistent change of the correction
    fast = 0.1 * torch.randn(40, generator=torch.Generator().manual_seed(0))  # flicker
    field = (step + fast)[:, None, None, None].expand(40, 3, 2, 3).contiguous()
    kept = keep_scene_light(field, 5, light_pieces=light_pieces).mean(dim=(1, 2, 3))
    # The step is dropped (measured: 0.044 left by the median alone, 0.027 with the pieces).
    assert float((kept[16:].mean() - kept[:16].mean()).abs()) < 0.05
    assert float((kept - fast).abs().mean()) < 0.04  # the flicker (std 0.1) is kept
    assert torch.equal(keep_scene_light(field, flicker_window=0), field)


def _held_flicker(frames: int, hold: int, gen: torch.Generator) -> torch.Tensor:
    """Frame-wide log gains of flicker: a new level (std 0.1) every `hold` frames."""
    levels = 0.1 * torch.randn(-(-frames // hold), generator=gen)
    return levels.repeat_interleave(hold)[:frames]


@pytest.mark.parametrize(("light", "most_error", "at_most_of_median_alone"),
                         [("step", 0.055, 0.9), ("ramp", 0.04, 0.7)])
def test_keep_scene_light_follows_a_step_and_a_ramp_closer_than_the_running_median(
        light, most_error, at_most_of_median_alone):
    """A light switched on at frame 13 of 32 (the correction drops by 0.3) or a fade (it rises
    by 0.6), under flicker held 3 frames; 20 clips. The correction kept should be the flicker
    alone (up to a constant: a clip's mean flicker cannot be told from its light)."""
    t = torch.arange(32, dtype=torch.float32)
    change = -0.3 * (t >= 13).float() if light == "step" else torch.linspace(0, 0.6, 32)

    def error(kept, flicker):
        wrong = kept - flicker
        return float((wrong - wrong.mean()).square().mean().sqrt())

    ours, median_alone = [], []
    for seed in range(20):
        flicker = _held_flicker(32, 3, torch.Generator().manual_seed(seed))
        level = change + flicker
        field = level[:, None, None, None].expand(32, 3, 2, 2).contiguous()
        kept = keep_scene_light(field, 10, light_pieces=FlickerFieldConfig().light_pieces)
        ours.append(error(kept.mean(dim=(1, 2, 3)), flicker))
        by_median = persistent_level(level[:, None], 10, light_pieces=0)[:, 0]
        median_alone.append(error(level - by_median, flicker))
    mean_ours, mean_median = sum(ours) / 20, sum(median_alone) / 20
    assert mean_ours < most_error  # of flicker with std 0.1
    assert mean_ours < at_most_of_median_alone * mean_median


def test_with_a_colour_window_a_held_tint_is_flicker_a_lamp_and_a_slow_grade_stay_light():
    """Flicker that tints (the channels apart, their mean unchanged), held 10 frames and going
    one way over a 32-frame shot, is light by time alone; with colour_window_scale 3 a change
    of colour balance must last 30 frames, so it is corrected. A brightness step is untouched
    by the option, and a grade that shifts the colour over 200 frames stays light."""
    t = torch.arange(32)
    held = torch.tensor([0.1, 0.0, -0.1, -0.1])[t // 10]
    tint = torch.stack([held, -0.5 * held, -0.5 * held], dim=1)

    def wrongly_kept_as_light(scale):
        corrected = tint - persistent_level(tint, 10, 3, colour_window_scale=scale)
        wrong = corrected - (tint - tint.mean(dim=0))  # up to the clip's mean, all is flicker
        return float(wrong.square().mean().sqrt())

    assert wrongly_kept_as_light(0) > 0.04  # of 0.059 rms
    assert wrongly_kept_as_light(3) < 0.005
    noise = 0.02 * torch.randn(32, 1, generator=torch.Generator().manual_seed(0))
    lamp = (0.3 * (t >= 13).float()[:, None] + noise).expand(32, 3)
    assert torch.allclose(persistent_level(lamp, 10, 3, colour_window_scale=3),
                          persistent_level(lamp, 10, 3), atol=1e-6)
    ramp = torch.linspace(0.0, 0.2, 200)
    grade = torch.stack([ramp, -0.5 * ramp, -0.5 * ramp], dim=1)
    left = grade - persistent_level(grade, 10, 3, colour_window_scale=3)
    assert float(left.abs().max()) < 0.1 * 0.2  # (0.015 at the ends: the median's lag)


@pytest.mark.parametrize("light_pieces", [0, 3])
def test_keep_scene_light_takes_a_slow_up_and_down_change_for_flicker(light_pieces):
    """A change held 12 frames, then back (slow flicker): longer than the median's window, yet
    it reverts; the frame-wide monotone fit leaves well under half of it as light."""
    t = torch.arange(40)
    bump = ((t >= 14) & (t < 26)).float() * 0.3
    field = bump[:, None, None, None].expand(40, 3, 2, 3).contiguous()
    kept = keep_scene_light(field, 5, light_pieces=light_pieces).mean(dim=(1, 2, 3))
    left_as_light = field.mean(dim=(1, 2, 3)) - kept  # what is not corrected
    by_median = temporal_median(bump[:, None], 11, edges="shrink")[:, 0]
    assert float((by_median - bump).abs().max()) < 1e-6  # the median alone keeps it all
    assert float((left_as_light ** 2).sum()) < 0.5 * float((bump ** 2).sum())


def test_running_median_with_shrinking_edges_does_not_take_a_first_frame_flash_for_light():
    flash = torch.zeros(12, 1)
    flash[0] = 1.0  # one bright first frame: flicker, not the scene's light
    assert float(temporal_median(flash, 9, edges="shrink")[0]) == 0.0
    assert float(temporal_median(flash, 9)[0]) == 1.0  # padding with copies of it would


def test_smooth_field_is_fitted_from_the_weighted_pixels_only():
    source = smooth_texture(32, 48, 1)[None]
    target = source * 1.3
    target[..., :, 24:] = 0.1  # wrong content on the right half ...
    weights = torch.zeros(1, 1, 32, 48)
    weights[..., :24] = 1.0  # ... which the weights exclude
    field = fit_smooth_colour_field(source, target, weights, nodes_long_side=2, model="gain")
    gains = field.coefficients[:, :, 1]
    assert torch.allclose(gains, torch.full_like(gains, 1.3), atol=0.02)
    empty = fit_smooth_colour_field(source, target, torch.zeros(1, 1, 32, 48), model="gain")
    assert torch.allclose(empty.apply(source), source, atol=1e-3)  # no data: the identity


def test_strength_scales_the_correction():
    clean, _ = appearing_object_clip()
    flickered = add_synthetic_flicker(clean, window=1, seed=5)
    atlas = fit_clip_atlas(flickered)
    atlas_frames = render_atlas_frames(atlas)

    def filtered(strength):
        cfg = FilterConfig(faithful=True, flicker=FlickerFieldConfig(strength=strength))
        return apply_neural_filter(flickered, atlas_frames, cfg, shot_starts=atlas.shot_starts)

    full, half = filtered(1.0) - flickered, filtered(0.5) - flickered
    assert torch.equal(filtered(0.0), flickered)
    assert float((half - 0.5 * full).abs().mean()) < 0.1 * float(full.abs().mean())
    for config in (PipelineConfig.faithful(strength=0.0), PipelineConfig(
            filter=FilterConfig(flicker=FlickerFieldConfig(strength=0.0)),
            refine=RefineConfig(strength=0.0))):
        assert torch.equal(run_pipeline(flickered.clone(), config).frames, flickered)


def test_keeping_no_persistent_change_removes_a_chunk_seam():
    clip = panning_clip(T, H, W, 0.5, seed=4)
    seam = add_chunk_seam(clip)

    def half_step(x):
        return float((x[T // 2:].mean(dim=(0, 1, 2)) - x[:T // 2].mean(dim=(0, 1, 2)))
                     .abs().max() * 255)

    keep_none = PipelineConfig.faithful(flicker_window=0)
    assert half_step(seam) - half_step(clip) > 12
    assert half_step(run_pipeline(seam.clone(), keep_none).frames) - half_step(clip) < 4


def test_a_chunk_seam_on_a_dark_street_with_bright_lights_goes_everywhere():
    """flicker_window 0 takes the atlas's level as an added colour: a gain that matches the dark
    reliable pixels would overshoot on the bright lights the atlas cannot hold (a neon sign:
    confidence 0 there). Measured: the worst channel's seam left 1.7 levels overall and 1.2 on
    the lights; the same level applied as a gain left 9.5 and 99 (the lights' blue overshoots)."""
    street = 0.06 + 0.06 * smooth_texture(H, W, 3).permute(1, 2, 0)[None].expand(T, -1, -1, -1)
    street = street.clone()
    lights = (slice(None), slice(8, 24), slice(60, 90))
    street[lights] = 0.85
    seam = add_chunk_seam(street)
    atlas_frames = seam.mean(dim=0, keepdim=True).expand(T, -1, -1, -1)  # one colour per shot
    mask = torch.ones(H, W)
    mask[lights[1:]] = 0.0
    cfg = FilterConfig(faithful=True, flicker=FlickerFieldConfig(flicker_window=0))
    out = apply_neural_filter(seam, atlas_frames, cfg,
                              confidence=confidence_from_mask(mask, T, (H, W)))

    def half_step(x):
        return float((x[T // 2:].mean(dim=(0, 1, 2)) - x[:T // 2].mean(dim=(0, 1, 2)))
                     .abs().max() * 255)

    assert half_step(seam) > 12
    assert half_step(out) < 3.0
    assert half_step(out[lights]) < 3.0


def test_bad_values_get_one_clear_error():
    with pytest.raises(DeflickerInputError, match="strength must be between 0 and 1"):
        FilterConfig(flicker=FlickerFieldConfig(strength=1.5))
    with pytest.raises(DeflickerInputError, match="strength"):
        RefineConfig(strength=-0.1)
    with pytest.raises(DeflickerInputError, match="flicker_window must be a whole number"):
        RefineConfig(flicker_window=-1)
    with pytest.raises(DeflickerInputError, match="detail_limit >= 0"):
        FlickerFieldConfig(detail_limit=-0.1)
    with pytest.raises(DeflickerInputError, match="noise_floor >= 0"):
        FlickerFieldConfig(noise_floor=float("nan"))
    for pieces in (-1, 2.5, True):
        with pytest.raises(DeflickerInputError, match="light_pieces must be a whole number"):
            FlickerFieldConfig(light_pieces=pieces)
        with pytest.raises(DeflickerInputError, match="colour_window_scale must be a whole"):
            FlickerFieldConfig(colour_window_scale=pieces)
    with pytest.raises(DeflickerInputError, match="has 5 frames but the clip has 24"):
        confidence_from_mask(torch.ones(5, H, W), T, (H, W))
    clip = panning_clip(T, H, W, 0.5)
    with pytest.raises(DeflickerInputError, match="confidence has 23 frames"):
        apply_neural_filter(clip, clip, FilterConfig(faithful=True),
                            confidence=atlas_confidence(clip[:23], clip[:23]))


def test_a_confidence_mask_of_any_size_is_resampled_and_one_mask_serves_every_frame():
    conf = confidence_from_mask(torch.rand(17, 29), T, (H, W))
    assert conf.mask().shape == (T, H, W)
    assert torch.equal(conf.coarse[0], conf.coarse[-1])
    preview = confidence_heatmap(torch.rand(T, H, W, 3), conf.mask())
    assert preview.shape == (T, H, W, 3) and float(preview.max()) <= 1.0


def test_a_clip_whose_every_frame_shows_other_content_comes_back_as_itself():
    frames = torch.stack([smooth_texture(H, W, seed) for seed in range(12)]).permute(0, 2, 3, 1)
    cuts = run_pipeline(frames.clone(), FAITHFUL)
    assert len(cuts.atlas.shot_starts) == 12  # every frame is its own shot ...
    assert psnr(cuts.frames, frames) > 30.0  # ... and comes back as itself
    one_shot = ShotConfig(scene_cuts=False)
    atlas = fit_clip_atlas(frames, shots=one_shot)
    atlas_frames = render_atlas_frames(atlas)
    out = apply_neural_filter(frames, atlas_frames, FilterConfig(faithful=True),
                              confidence=atlas_confidence(frames, atlas_frames))
    assert bool(torch.isfinite(out).all())
    # Forced into one atlas (a ghost of all twelve), smooth unrelated textures are partly
    # explained by a smooth colour transform, so some atlas colour still comes through
    # (measured 27.7 dB): a known limit, documented in the README.
    assert psnr(out, frames) > 25.0
