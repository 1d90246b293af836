"""Small networks of the stages for tests (fast to build and to run, and not the identity), and
the refinement training's synthetic local flicker as a clip."""

from __future__ import annotations

import torch

from deflicker_impl.refine.net import RefineNetConfig, build_local_refine
from deflicker_impl.train.refine import RefineTrainOptions, add_local_flicker

SMALL_REFINE = RefineNetConfig(half_width=8, quarter_width=8, hidden_width=8, residual_blocks=1)


def scrambled_refine_net(config: RefineNetConfig = SMALL_REFINE, seed: int = 0):
    """A net with random weights everywhere (also the last layer), so its output depends on the
    previous frames and on the recurrent state."""
    torch.manual_seed(seed)
    net = build_local_refine(config).eval()
    last = net.to_residual if config.output == "residual" else net.to_field
    with torch.no_grad():
        last.weight.normal_(0, 0.05)
    return net


def local_flicker(clean: torch.Tensor, seed: int = 5) -> torch.Tensor:
    """[T,H,W,3] clean -> the training's synthetic local flicker at full strength."""
    gen = torch.Generator().manual_seed(seed)
    x = clean.permute(0, 3, 1, 2)[None]
    out = add_local_flicker(x, gen, RefineTrainOptions(), strength=torch.ones(1))
    return out[0].permute(0, 2, 3, 1)
