"""The filter's final pass: global frame-to-frame colour jitter goes, slow changes stay."""

from __future__ import annotations

import torch

from deflicker_impl.global_stability import (
    remove_global_drift,
    stabilise_global_colour,
    temporal_moving_average,
)
from deflicker_impl.metrics import flicker_index


def test_moving_average_keeps_constants_and_ramps():
    ramp = torch.linspace(0, 1, 20)[:, None].repeat(1, 3)
    assert torch.allclose(temporal_moving_average(ramp, 5)[2:-2], ramp[2:-2], atol=1e-6)
    const = torch.full((7, 3), 0.4)
    assert torch.allclose(temporal_moving_average(const, 9), const)


def test_per_frame_gain_jitter_is_removed_and_a_slow_fade_is_kept():
    gen = torch.Generator().manual_seed(0)
    t = 30
    base = torch.rand(1, 16, 16, 3, generator=gen) * 0.5 + 0.25
    fade = torch.linspace(0.8, 1.2, t)[:, None, None, None]  # slow, real change
    atlas = (base * fade).clamp(0, 1)
    jitter = 1 + 0.08 * (torch.rand(t, 1, 1, 3, generator=gen) * 2 - 1)
    filtered = (atlas * jitter).clamp(0, 1)
    before = flicker_index(filtered)
    out = stabilise_global_colour(filtered.clone(), atlas)
    assert flicker_index(out) < 0.2 * before
    # The fade survives: last frame still ~1.5x brighter than the first.
    ratio = out[-1].mean() / out[0].mean()
    assert 1.4 < float(ratio) < 1.6


def test_a_clip_that_matches_its_atlas_is_left_alone():
    frames = torch.rand(12, 8, 8, 3)
    out = stabilise_global_colour(frames.clone(), frames.clone())
    assert torch.allclose(out, frames, atol=1e-6)


def test_window_off_or_short_clip_is_a_no_op():
    frames, atlas = torch.rand(2, 4, 4, 3), torch.rand(2, 4, 4, 3)
    assert torch.equal(stabilise_global_colour(frames.clone(), atlas), frames)
    frames = torch.rand(6, 4, 4, 3)
    assert torch.equal(stabilise_global_colour(frames.clone(), torch.rand(6, 4, 4, 3), 1), frames)


def test_refinement_drift_is_removed_and_its_fast_corrections_are_kept():
    # The input flickers frame to frame; the "refined" clip removed that flicker but its global
    # colour drifted slowly away (a 20% ramp) and stepped at a cut. Drift removal must bring the
    # slow colour back to the input's and keep the flicker removed, per shot.
    gen = torch.Generator().manual_seed(3)
    t, cut = 40, 25
    base = torch.rand(1, 12, 12, 3, generator=gen) * 0.4 + 0.3
    steady = base.repeat(t, 1, 1, 1)
    steady[cut:] *= 0.7  # a real change at the cut
    flicker = 1 + 0.1 * (torch.rand(t, 1, 1, 3, generator=gen) * 2 - 1)
    filtered = (steady * flicker).clamp(0, 1)
    drift = torch.linspace(1.0, 1.2, t)[:, None, None, None]
    refined = (steady * drift).clamp(0, 1)
    reference_means = filtered.double().mean(dim=(1, 2))

    out = remove_global_drift(refined.clone(), reference_means, window=9, shot_starts=[0, cut])

    slow_error = (out.mean(dim=(1, 2, 3)) - steady.mean(dim=(1, 2, 3))).abs()
    assert float(slow_error[4:cut - 4].max()) < 0.02   # drift gone inside the first shot
    assert float(slow_error[cut + 4:-4].max()) < 0.02  # and inside the second
    assert flicker_index(out) < 0.35 * flicker_index(filtered)
