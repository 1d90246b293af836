"""fit_atlas: the entry point of the atlas stage."""

from __future__ import annotations

import logging

import torch

from ..clip import prepare_clip
from ..device import resolve_device
from ..errors import DeflickerInputError
from ..progress import ProgressFn
from .config import PRESETS, AtlasConfig
from .masks import mask_coverage_problem, prepare_masks
from .neural_atlas import NeuralAtlas

log = logging.getLogger(__name__)


def fit_atlas(
    frames: torch.Tensor,
    config: AtlasConfig | None = None,
    on_progress: ProgressFn | None = None,
    masks: torch.Tensor | None = None,
) -> NeuralAtlas:
    """Fit a neural atlas to a clip [T,H,W,C] (C = 1, 3 or 4; values 0..1).

    Without `masks`: one layer. With foreground masks ([T,H,W], [H,W] or one mask for all
    frames; any resolution of the clip's aspect ratio; 1 = foreground) the fast preset fits a
    foreground and a background layer (fit_layered.py); masks that select nothing or everything
    give one layer and a logged warning (`stats["layers_note"]`). The paper preset refuses masks.
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
        layer_masks, note = _layer_masks(masks, frames, config)
        if layer_masks is not None:
            from .fit_layered import fit_layered_atlas

            if frames.is_inference():  # the layered fit keeps frames for its alpha updates
                frames = frames.clone()
            model, stats = fit_layered_atlas(frames, layer_masks, config, device, on_progress)
        elif config.preset == "fast":
            from .fit_fast import fit_texture_atlas

            model, stats = fit_texture_atlas(frames, config, device, on_progress)
        else:
            from .fit_paper import fit_mlp_atlas

            model, stats = fit_mlp_atlas(frames, config, device, on_progress)
        if note:
            stats["layers_note"] = note
    return NeuralAtlas(config, frames.shape[0], (frames.shape[1], frames.shape[2]), model, stats)


def _layer_masks(masks, frames: torch.Tensor, config: AtlasConfig):
    """(foreground masks [T,H,W] for a two-layer fit, or None; a note when masks were dropped)."""
    if masks is None:
        return None, None
    if config.preset != "fast":
        raise DeflickerInputError(
            f"Masks (two layers) need the 'fast' preset; the {config.preset!r} preset fits one "
            "layer. Disconnect the mask or choose preset 'fast'.")
    num, h, w, _ = frames.shape
    masks = prepare_masks(masks, num, (h, w))
    problem = mask_coverage_problem(masks)
    if problem is None:
        return masks, None
    note = f"one layer fitted: {problem}, so there is nothing to separate into two layers."
    log.warning("FitNeuralAtlas: %s Check the mask (a segmenter that found nothing?).", note)
    return None, note
