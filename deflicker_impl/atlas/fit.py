"""fit_atlas: the entry point of the atlas stage."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..clip import prepare_clip
from ..device import resolve_device
from ..errors import DeflickerInputError
from .config import PRESETS, AtlasConfig
from .neural_atlas import NeuralAtlas


def fit_atlas(
    frames: torch.Tensor,
    config: AtlasConfig | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> NeuralAtlas:
    """Fit a single-layer neural atlas to a clip [T,H,W,C] (C = 1, 3 or 4; values 0..1).

    Deterministic for a given `config.seed` on a given device. Any frame count >= 1 and any
    frame size; the atlas renders back at exactly the input size.
    """
    config = config or AtlasConfig()
    if config.preset not in PRESETS:
        raise DeflickerInputError(
            f"Unknown atlas preset {config.preset!r}; choose one of {', '.join(PRESETS)}."
        )
    if config.fit_long_side < 8:
        raise DeflickerInputError("fit_long_side must be at least 8 pixels.")
    device = resolve_device(config.device)
    # Fitting is an optimisation: it needs autograd even when the caller (ComfyUI runs every
    # node under torch.inference_mode) has switched it off.
    with torch.inference_mode(False), torch.enable_grad():
        # No copy, even of an inference tensor (ComfyUI's IMAGE): the fit only reads the
        # full-resolution frames through resampling and splats, never saves them for backward.
        frames = prepare_clip(frames, "frames")
        if config.preset == "fast":
            from .fit_fast import fit_texture_atlas

            model, stats = fit_texture_atlas(frames, config, device, on_progress)
        else:
            from .fit_paper import fit_mlp_atlas

            model, stats = fit_mlp_atlas(frames, config, device, on_progress)
    return NeuralAtlas(config, frames.shape[0], (frames.shape[1], frames.shape[2]), model, stats)
