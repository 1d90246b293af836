"""The refinement's global bound: its change of the global colour may only steady it."""

from __future__ import annotations

import torch

from deflicker_impl.evaluation.metrics import flicker_index
from deflicker_impl.refine.global_bound import bound_global_change
from deflicker_impl.temporal import temporal_median


def _log_means(clip: torch.Tensor) -> torch.Tensor:
    return clip.double().mean(dim=(1, 2)).log()


def _steady_flickering_clip(t: int, cut: int, seed: int):
    """(steady clip with a real change at `cut`, the same with per-frame gain flicker)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 12, 12, 3, generator=gen) * 0.4 + 0.3
    steady = base.repeat(t, 1, 1, 1)
    steady[cut:] *= 0.7
    flicker = 1 + 0.1 * (torch.rand(t, 1, 1, 3, generator=gen) * 2 - 1)
    return steady, (steady * flicker).clamp(0, 1)


def test_refinement_that_drifts_and_jitters_is_held_to_its_input_global_colour():
    # The input is steady except for a real step at a cut; the "refined" clip's global colour
    # drifted slowly away (a 20% ramp) and jitters. Neither moves it towards the input's steady
    # colour, so both are taken out.
    t, cut = 40, 25
    steady, _ = _steady_flickering_clip(t, cut, seed=3)
    gen = torch.Generator().manual_seed(4)
    jitter = 1 + 0.05 * (torch.rand(t, 1, 1, 3, generator=gen) * 2 - 1)
    drift = torch.linspace(1.0, 1.2, t)[:, None, None, None]
    refined = (steady * drift * jitter).clamp(0, 1)

    out = bound_global_change(refined.clone(), steady.double().mean(dim=(1, 2)), window=5,
                              shot_starts=[0, cut])

    assert float((_log_means(out) - _log_means(steady)).abs().max()) < 1e-3
    assert flicker_index(out) < 0.01 * flicker_index(refined)
    # Local structure (the ratio of pixels within a frame) is untouched: one gain per channel.
    ratio = out / refined
    assert float((ratio - ratio.mean(dim=(1, 2), keepdim=True)).abs().max()) < 1e-4


def test_refinement_that_removed_global_flicker_keeps_that_correction():
    t, cut = 40, 25
    steady, flickering = _steady_flickering_clip(t, cut, seed=5)
    out = bound_global_change(steady.clone(), flickering.double().mean(dim=(1, 2)), window=5,
                              shot_starts=[0, cut])
    assert flicker_index(out) < 0.35 * flicker_index(flickering)
    # Never farther from the input's steady global colour than the input itself, frame by frame.
    log_ref = _log_means(flickering)
    towards = temporal_median(log_ref[:cut], 5) - log_ref[:cut]
    moved = _log_means(out)[:cut] - log_ref[:cut]
    assert bool(((moved * towards) >= -1e-9).all())
    assert bool((moved.abs() <= towards.abs() + 1e-6).all())


def test_bound_is_a_no_op_when_switched_off_or_unchanged():
    frames = torch.rand(6, 4, 4, 3)
    means = torch.rand(6, 3).double() + 0.2
    assert torch.equal(bound_global_change(frames.clone(), means, window=1), frames)
    same = bound_global_change(frames.clone(), frames.double().mean(dim=(1, 2)), window=5)
    assert torch.allclose(same, frames, atol=1e-6)
