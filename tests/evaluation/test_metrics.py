"""Metrics: numbers with known answers."""

from __future__ import annotations

import torch
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    flicker_index,
    psnr,
    restrict_to_reliable_flow,
    warping_error,
)
from deflicker_impl.evaluation.synthetic import FlickerConfig, add_synthetic_flicker


def test_warping_error_is_zero_for_a_static_clip_and_grows_with_flicker():
    static = panning_clip(frames=5, h=32, w=32, speed=0.0)
    ref = compute_warp_reference(static)
    assert warping_error(static, ref) < 1e-4
    mild = global_gain_flicker(static, 0.1)
    strong = global_gain_flicker(static, 0.3)
    assert 0 < warping_error(mild, ref) < warping_error(strong, ref)


def test_warping_error_of_a_clean_pan_is_small_relative_to_flicker():
    clean = panning_clip(frames=8, h=48, w=64, speed=1.0)
    ref = compute_warp_reference(clean)
    assert warping_error(clean, ref) < 0.3 * warping_error(global_gain_flicker(clean), ref)


def test_reliable_flow_leaves_out_what_the_flow_cannot_explain_in_the_clean_clip():
    # A pan whose centre patch gets new fine texture every frame (consistent-looking flow that
    # is wrong there, as on a turning striped object). Plain warping error rewards erasing the
    # patch: the grey-patched clip scores below the truth. Restricted to the pixels where the
    # flow explains the clean clip, the truth scores about 0 and flicker still counts in full.
    clean = panning_clip(frames=8, h=48, w=64, speed=1.0)
    gen = torch.Generator().manual_seed(0)
    clean[:, 16:32, 24:40] = torch.rand(8, 16, 16, 3, generator=gen)
    erased = clean.clone()
    erased[:, 16:32, 24:40] = 0.5
    ref = compute_warp_reference(clean)
    assert warping_error(erased, ref) < warping_error(clean, ref)

    reliable = restrict_to_reliable_flow(ref, clean, tolerance=0.02)

    assert warping_error(clean, reliable) < 0.15 * warping_error(clean, ref)
    assert warping_error(clean, reliable) <= warping_error(erased, reliable) + 1e-4
    flickered = global_gain_flicker(clean, 0.3)
    assert warping_error(flickered, reliable) > 10 * warping_error(clean, reliable)
    kept = float(reliable.mask_prev.sum() / ref.mask_prev.sum())
    assert 0.6 < kept < 0.97  # the patch (8% of the frame) and its surroundings go, not more


def test_psnr_known_values():
    a = torch.zeros(2, 4, 4, 3)
    assert psnr(a, a) == 100.0
    assert abs(psnr(a + 0.1, a) - 20.0) < 1e-4


def test_flicker_index_counts_brightness_jumps_in_8bit_levels():
    frames = torch.full((10, 4, 4, 3), 0.5)
    assert flicker_index(frames) == 0.0
    frames[4] += 10 / 255  # one frame 10 levels brighter than its neighbours
    assert abs(flicker_index(frames) - 10 / 10) < 1e-3
    ramp = torch.linspace(0.2, 0.8, 10)[:, None, None, None].expand(10, 4, 4, 3)
    assert flicker_index(ramp) < 0.01  # a slow fade is not flicker


def test_synthetic_flicker_is_seeded_held_for_the_window_and_neutral_at_zero_strength():
    clean = panning_clip(frames=9, h=24, w=24, speed=0.0) * 0.8 + 0.1
    a = add_synthetic_flicker(clean, window=3, seed=5)
    assert torch.equal(a, add_synthetic_flicker(clean, window=3, seed=5))
    assert not torch.equal(a, add_synthetic_flicker(clean, window=3, seed=6))
    # Static clip: frames inside one window are identical, across windows they differ.
    assert torch.allclose(a[0], a[2]) and not torch.allclose(a[2], a[3])
    zero = FlickerConfig(gain_sigma=0, gamma_sigma=0, offset_sigma=0, local_sigma=0)
    assert torch.allclose(add_synthetic_flicker(clean, zero), clean, atol=1e-6)


def test_synthetic_flicker_is_mean_preserving():
    clean = torch.full((40, 16, 16, 3), 0.5)
    flickered = add_synthetic_flicker(clean, window=1, seed=0, gamma_sigma=0.0)
    # Mean gain 1, mean offset 0, mean local field 1: the clip's average stays put (the product
    # of independent gain and field keeps a small second-order bias).
    assert (flickered.mean(0) - 0.5).abs().max() < 0.03


def test_streamed_warping_errors_equal_the_stored_reference_ones():
    from deflicker_impl.evaluation.metrics import warping_error_per_frame, warping_errors_streamed

    clean = panning_clip(frames=7, h=40, w=56, speed=1.5)
    flickering = global_gain_flicker(clean, 0.3)
    reference = compute_warp_reference(flickering)

    streamed = warping_errors_streamed([clean, flickering], flickering)

    for clip, errors in zip((clean, flickering), streamed, strict=True):
        assert torch.allclose(errors, warping_error_per_frame(clip, reference), atol=1e-6)
