"""Shared temporal smoothing: a moving average keeps ramps, a running median keeps steps."""

from __future__ import annotations

import itertools

import torch

from deflicker_impl.temporal import (
    monotone_fit,
    piecewise_linear_fit,
    temporal_median,
    temporal_moving_average,
)


def test_moving_average_keeps_constants_and_ramps():
    ramp = torch.linspace(0, 1, 20)[:, None].repeat(1, 3)
    assert torch.allclose(temporal_moving_average(ramp, 5)[2:-2], ramp[2:-2], atol=1e-6)
    const = torch.full((7, 3), 0.4)
    assert torch.allclose(temporal_moving_average(const, 9), const)


def test_running_median_keeps_steps_and_drops_single_frame_spikes():
    x = torch.cat([torch.zeros(10, 1), torch.ones(10, 1)])
    assert torch.equal(temporal_median(x, 5), x)
    spiky = x.clone()
    spiky[4] = 5.0
    assert torch.equal(temporal_median(spiky, 5), x)


def test_monotone_fit_keeps_rising_and_falling_series_and_is_the_least_squares_one():
    ramp = torch.linspace(0, 1, 12)[:, None].repeat(1, 2)
    assert torch.equal(monotone_fit(ramp), ramp)
    assert torch.equal(monotone_fit(-ramp), -ramp)
    step = torch.cat([torch.zeros(5, 1), torch.ones(7, 1)])
    assert torch.equal(monotone_fit(step), step)
    # Runs that break the order become their mean: [1, 3, 2, 4, 0, 5] -> 3, 2, 4, 0 pooled.
    x = torch.tensor([[1.0], [3.0], [2.0], [4.0], [0.0], [5.0]])
    assert torch.allclose(monotone_fit(x)[:, 0], torch.tensor([1, 2.25, 2.25, 2.25, 2.25, 5.0]))


def test_monotone_fit_flattens_a_change_that_goes_up_and_comes_back():
    """Slow flicker goes up and down: a monotone fit keeps little of it, a step it keeps all."""
    bump = torch.cat([torch.zeros(10, 1), torch.ones(10, 1), torch.zeros(10, 1)])
    fit = monotone_fit(bump)
    assert float((fit - fit.mean()).abs().max()) < 0.35  # of a bump of 1
    assert float(((bump - fit) ** 2).sum()) <= float(((bump - bump.mean()) ** 2).sum())


def test_monotone_fit_picks_one_direction_for_all_channels():
    t = torch.linspace(0, 1, 10)
    x = torch.stack([t * 2, -0.1 * t], 1)  # channel 0 rises a lot, channel 1 falls a little
    fit = monotone_fit(x)
    assert torch.equal(fit[:, 0], x[:, 0])
    assert bool((fit[1:, 1] >= fit[:-1, 1]).all())  # forced to rise with the others


def _least_squares_pieces(x, bounds):
    """Reference: each span's least-squares line by torch.linalg.lstsq."""
    out = torch.empty_like(x)
    for a, b in itertools.pairwise(bounds):
        design = torch.stack([torch.ones(b - a), torch.arange(b - a, dtype=x.dtype)], 1)
        out[a:b] = design @ torch.linalg.lstsq(design, x[a:b]).solution
    return out


def test_piecewise_linear_fit_places_a_step_at_its_frame_and_fits_lines_through_the_pieces():
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(40, dtype=torch.float64)[:, None]
    x = torch.where(t < 17, 0.01 * t, 0.6 - 0.02 * t).repeat(1, 3) \
        + 0.01 * torch.randn(40, 3, generator=gen, dtype=torch.float64)
    # A jump of 0.1 at frame 17, then falling; noise 0.01 (squared error about 0.012 in all).
    fit = piecewise_linear_fit(x, min_length=8, max_pieces=3, piece_cost=0.02)
    assert torch.allclose(fit, _least_squares_pieces(x, [0, 17, 40]), atol=1e-9)
    # With no cost per piece a third one is taken, since it lowers the error a little.
    assert not torch.allclose(piecewise_linear_fit(x, 8, 3, 0.0), fit, atol=1e-3)


def test_piecewise_linear_fit_takes_a_piece_only_when_it_pays_its_cost():
    x = torch.cat([torch.zeros(12, 2), torch.full((12, 2), 0.1)]).double()
    # The best single line leaves a squared error of 0.0298; two pieces fit exactly.
    assert torch.allclose(piecewise_linear_fit(x, 6, 3, piece_cost=0.029), x, atol=1e-9)
    one_line = piecewise_linear_fit(x, 6, 3, piece_cost=0.031)
    assert torch.allclose(one_line, _least_squares_pieces(x, [0, 24]), atol=1e-9)
    # Pieces are never shorter than min_length: a 3-frame jump at the end gets no piece of
    # its own but lies inside a last piece of 6 frames.
    late = torch.cat([torch.zeros(21, 1), torch.ones(3, 1)]).double()
    assert torch.allclose(piecewise_linear_fit(late, 6, 3, 0.0),
                          _least_squares_pieces(late, [0, 18, 24]), atol=1e-9)
    short = torch.tensor([[0.0], [1.0], [0.0]])  # shorter than two pieces: one line
    assert torch.allclose(piecewise_linear_fit(short, 2, 3, 0.0), torch.full((3, 1), 1 / 3))
