"""FitNeuralAtlas core: the atlas removes flicker, keeps the size, is deterministic."""

from __future__ import annotations

import itertools

import pytest
import torch
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl import AtlasConfig, DeflickerInputError, fit_atlas, render_atlas_frames
from deflicker_impl.errors import DeflickerCancelled
from deflicker_impl.evaluation.metrics import compute_warp_reference, psnr, warping_error
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker

FAST = AtlasConfig(iterations=120, fit_long_side=64, device="cpu")


@pytest.fixture(scope="module")
def panning():
    clean = panning_clip(frames=12, h=48, w=64, speed=1.5)
    flickered = global_gain_flicker(clean, strength=0.3)
    atlas = fit_atlas(flickered, FAST)
    return clean, flickered, atlas, render_atlas_frames(atlas)


def test_atlas_removes_global_flicker_on_a_panning_shot(panning):
    clean, flickered, _, rendered = panning
    ref = compute_warp_reference(clean)
    ratio = warping_error(rendered, ref) / warping_error(flickered, ref)
    assert ratio < 0.45, f"E_warp ratio {ratio:.3f}"
    gain = psnr(rendered, clean) - psnr(flickered, clean)
    assert gain > 5.0, f"PSNR gain only {gain:.2f} dB"


def test_atlas_follows_the_camera_instead_of_blurring(panning):
    clean, _, atlas, rendered = panning
    # A 1.5 px/frame pan over 12 frames: an identity mapping would average 16 px of motion.
    assert psnr(rendered, clean) > 26.0
    assert atlas.texture_preview().shape[2] > 64  # the texture extends past one frame's width


def test_atlas_is_deterministic_for_a_seed(panning):
    _, flickered, _, rendered = panning
    again = render_atlas_frames(fit_atlas(flickered, FAST))
    assert torch.equal(again, rendered)


def test_mean_preserving_synthetic_flicker_is_recovered_on_a_static_shot():
    clean = panning_clip(frames=10, h=40, w=56, speed=0.0, seed=3)
    flickered = add_synthetic_flicker(clean, window=1, seed=2)
    rendered = render_atlas_frames(fit_atlas(flickered, FAST))
    assert psnr(rendered, clean) > psnr(flickered, clean) + 4.0


@pytest.mark.parametrize("t,h,w", [(1, 20, 30), (2, 16, 16), (5, 37, 51), (3, 8, 8), (4, 1, 9)])
def test_render_has_exactly_the_input_size(t, h, w):
    frames = torch.rand(t, h, w, 3)
    atlas = fit_atlas(frames, AtlasConfig(iterations=10, device="cpu"))
    out = render_atlas_frames(atlas)
    assert out.shape == (t, h, w, 3)
    assert out.dtype == torch.float32 and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_rgba_and_grayscale_frames_are_accepted():
    rgb = panning_clip(frames=4, h=16, w=20)
    rgba = torch.cat((rgb, torch.ones(4, 16, 20, 1)), -1)
    gray = rgb.mean(-1, keepdim=True)
    cfg = AtlasConfig(iterations=10, device="cpu")
    assert render_atlas_frames(fit_atlas(rgba, cfg)).shape == (4, 16, 20, 3)
    out = render_atlas_frames(fit_atlas(gray, cfg))
    assert torch.allclose(out[..., 0], out[..., 1]) and torch.allclose(out[..., 1], out[..., 2])


@pytest.mark.parametrize("bad,match", [
    (torch.rand(0, 16, 16, 3), "0 frames"),
    (torch.full((3, 16, 16, 3), float("nan")), "NaN"),
    (torch.rand(3, 3, 16, 16), "permute"),
    (torch.rand(16, 16), "shape"),
])
def test_bad_clips_are_refused_with_a_clear_message(bad, match):
    with pytest.raises(DeflickerInputError, match=match):
        fit_atlas(bad, AtlasConfig(iterations=5, device="cpu"))


def test_unknown_preset_is_refused():
    with pytest.raises(DeflickerInputError, match="preset"):
        fit_atlas(torch.rand(2, 8, 8, 3), AtlasConfig(preset="nope"))


def test_cancel_from_the_progress_callback_stops_the_fit():
    calls = []

    def cancel(done, total):
        calls.append(done)
        if len(calls) >= 2:
            raise DeflickerCancelled("stop")

    with pytest.raises(DeflickerCancelled):
        fit_atlas(panning_clip(frames=6, h=24, w=32), AtlasConfig(iterations=10_000), cancel)
    assert len(calls) == 2


def test_fit_works_under_inference_mode_as_comfyui_runs_nodes():
    with torch.inference_mode():
        frames = global_gain_flicker(panning_clip(frames=4, h=16, w=20))
        atlas = fit_atlas(frames, AtlasConfig(iterations=10))
        assert render_atlas_frames(atlas).shape == (4, 16, 20, 3)


def test_progress_reaches_its_total():
    seen = []
    fit_atlas(torch.rand(3, 12, 12, 3), AtlasConfig(iterations=12),
              lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def test_paper_preset_runs_its_mlps_and_renders_at_input_size():
    frames = global_gain_flicker(panning_clip(frames=3, h=12, w=16))
    atlas = fit_atlas(frames, AtlasConfig(preset="paper", iterations=2, paper_samples=256))
    assert atlas.stats["preset"] == "paper" and atlas.stats["seconds_per_iteration"] > 0
    assert render_atlas_frames(atlas).shape == (3, 12, 16, 3)
    assert atlas.texture_preview().shape[-1] == 3


@pytest.mark.slow
def test_4k_frames_fit_with_a_bounded_texture():
    frames = torch.rand(2, 2160, 3840, 3)
    atlas = fit_atlas(frames, AtlasConfig(iterations=5, atlas_resolution=512))
    assert max(atlas.texture_preview().shape[1:3]) <= 600
    assert atlas.render(0, 1).shape == (1, 2160, 3840, 3)
