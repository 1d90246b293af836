"""Foreground masks for the two-layer atlas: validation and normalisation at the boundary.

A MASK from ComfyUI is [B,H,W] (sometimes [H,W]) float in 0..1, 1 = foreground. Masks from other
packs come at other resolutions or as a single mask for the whole clip; both are accepted. A
mask with no foreground (all zeros) or no background (all ones) cannot separate two layers:
`mask_coverage_problem` says so, and `fit_atlas` then fits one layer and logs a warning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import DeflickerInputError

# Below this share of foreground (or of background) over the whole clip a layer has too few
# pixels to fit: the clip is treated as one layer.
MIN_LAYER_SHARE = 1e-3


def prepare_masks(masks, num_frames: int, frame_hw: tuple[int, int]) -> torch.Tensor:
    """Masks as given -> float32 [T,H,W] in 0..1 on the CPU, matching the clip.

    Accepts [H,W], [B,H,W], [B,H,W,1] or [B,1,H,W]; B must be the clip's frame count or 1 (one
    mask for every frame). Another resolution of the same aspect ratio is resized.
    """
    if not isinstance(masks, torch.Tensor):
        try:
            masks = torch.as_tensor(masks)
        except (TypeError, ValueError, RuntimeError):
            raise DeflickerInputError(
                f"masks must be a tensor [frames, height, width], got {type(masks).__name__}."
            ) from None
    shape = tuple(masks.shape)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    elif masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    elif masks.ndim == 4 and masks.shape[-1] in (3, 4):
        raise DeflickerInputError(
            f"masks have shape {shape}, which is an IMAGE batch, not a MASK; convert it with "
            "an 'Image To Mask' node (channel red) first.")
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise DeflickerInputError(
            f"masks must have shape [frames, height, width] (or [height, width]), got {shape}.")
    if masks.shape[0] not in (1, num_frames):
        raise DeflickerInputError(
            f"There are {masks.shape[0]} masks for a clip of {num_frames} frames: give one mask "
            "per frame, or a single mask for all frames.")
    if masks.shape[1] < 1 or masks.shape[2] < 1:
        raise DeflickerInputError(f"masks have an empty size {tuple(masks.shape[1:])}.")
    if masks.dtype == torch.bool:
        masks = masks.float()
    elif not masks.dtype.is_floating_point:
        masks = masks.float() / (255.0 if float(masks.max()) > 1 else 1.0)
    masks = masks.detach().to(device="cpu", dtype=torch.float32)
    if not bool(torch.isfinite(masks).all()):
        raise DeflickerInputError("masks contain NaN or infinite values; fix the node that "
                                  "produced them.")
    h, w = frame_hw
    mh, mw = masks.shape[1:]
    if (mh, mw) != (h, w):
        if abs(mw / mh - w / h) > 0.02 * (w / h) + 1.0 / min(mh, h):
            raise DeflickerInputError(
                f"masks are {mw}x{mh} but the frames are {w}x{h}: another aspect ratio, so they "
                "cannot be resized to fit. Are they the masks of this clip?")
        mode = "area" if mh >= h and mw >= w else "bilinear"
        extra = {} if mode == "area" else {"align_corners": False}
        masks = F.interpolate(masks[:, None], size=(h, w), mode=mode, **extra)[:, 0]
    masks = masks.clamp(0.0, 1.0)
    if masks.shape[0] == 1 and num_frames > 1:
        masks = masks.expand(num_frames, -1, -1)
    return masks.contiguous()


def mask_coverage_problem(masks: torch.Tensor) -> str | None:
    """Why these masks [T,H,W] cannot make two layers, or None when they can."""
    share = float(masks.mean())
    if share < MIN_LAYER_SHARE:
        return (f"the masks select no foreground (foreground {100 * share:.2f}% of the clip's "
                "pixels)")
    if share > 1.0 - MIN_LAYER_SHARE:
        return (f"the masks select everything (foreground {100 * share:.2f}% of the clip's "
                "pixels): no background is left")
    return None
