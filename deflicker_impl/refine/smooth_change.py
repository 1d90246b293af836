"""The refinement's change of a frame kept as a smooth colour field.

The flicker left after the filter is smooth in space (an exposure or colour that drifts over a
region), while what the recurrent net changes per pixel comes from colour carried along the
flow: where the flow is wrong (non-rigid generated motion, a turning head, fast cartoon
motion) that is a ghost of the previous frame. Kept as a smooth per-channel gain field fitted
from the net's input to its output, the change removes the smooth flicker and drops the
per-pixel part (measured: README, "The refinement stage").
"""

from __future__ import annotations

import torch

from ..atlas.confidence import coarse_frames
from ..flicker_field import FlickerFieldConfig, fit_log_gains, gain_field


def keep_smooth_change(source: torch.Tensor, refined: torch.Tensor, nodes_long_side: int,
                       fit_long_side: int = FlickerFieldConfig.fit_long_side) -> torch.Tensor:
    """source, refined [N,3,H,W] in 0..1 -> source times the smooth per-channel gain field
    (`nodes_long_side` nodes along the long side, fitted at `fit_long_side`) closest to the
    change source -> refined, [N,3,H,W] clamped to 0..1."""
    n = source.shape[0]
    small = [coarse_frames(x.permute(0, 2, 3, 1), 0, n, fit_long_side).cpu()
             for x in (source, refined)]
    config = FlickerFieldConfig(nodes_long_side=nodes_long_side, fit_long_side=fit_long_side)
    log_gain = fit_log_gains(small[0], small[1], None, config)
    return gain_field(log_gain.to(source.device)).apply(source).clamp_(0.0, 1.0)
