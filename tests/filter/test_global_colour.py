"""The filter's final pass: global frame-to-frame colour jitter goes, slow changes stay."""

from __future__ import annotations

import torch

from deflicker_impl.evaluation.metrics import flicker_index
from deflicker_impl.filter.global_colour import stabilise_global_colour


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
