"""Segment Anything (SAM) foreground masks for the two-layer atlas.

`load_sam(path)` reads a SAM checkpoint (.pth or .safetensors) and recognises vit_b / vit_l /
vit_h from its tensors; `masks_from_prompts(sam, frames, ...)` turns points and/or a box on one
frame into a MASK batch for the whole clip, carrying the object frame by frame. Nothing is ever
downloaded: the user puts a checkpoint in place (see `checkpoint.CHECKPOINT_FILES`).
"""

from .checkpoint import (
    CHECKPOINT_FILES,
    CHECKPOINT_SOURCE,
    SamModel,
    load_sam,
    missing_checkpoint_message,
)
from .prompts import parse_box, parse_points
from .propagate import masks_from_prompts

__all__ = [
    "CHECKPOINT_FILES",
    "CHECKPOINT_SOURCE",
    "SamModel",
    "load_sam",
    "masks_from_prompts",
    "missing_checkpoint_message",
    "parse_box",
    "parse_points",
]
