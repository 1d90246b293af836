"""Shared temporal smoothing: a moving average keeps ramps, a running median keeps steps."""

from __future__ import annotations

import torch

from deflicker_impl.temporal import temporal_median, temporal_moving_average


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
