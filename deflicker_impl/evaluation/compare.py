"""Before/after comparison frames: side by side, stacked, or a split view with a divider.

Both clips are [T,H,W,3] in 0..1 with the same frame count; `after` is resized to `before`'s
frame size when they differ (e.g. an upscaled output), so every layout lines up pixel for pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..clip import prepare_clip, to_nchw, to_nhwc
from ..errors import DeflickerInputError
from ..opencv import require_cv2

LAYOUTS = ("side_by_side", "split", "stacked")
_GAP = 4


def _label(frames: torch.Tensor, text: str, x: int) -> torch.Tensor:
    """Write `text` at column x near the top of every frame (white with a dark outline)."""
    cv2 = require_cv2()
    h = frames.shape[1]
    scale = max(0.35, min(1.2, h / 480))
    arr = (frames.numpy() * 255.0 + 0.5).astype("uint8")
    org = (x + 6, int(8 + 22 * scale))
    for frame in arr:
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return torch.from_numpy(arr).float().div(255.0)


def compare_frames(before: torch.Tensor, after: torch.Tensor, layout: str = "side_by_side",
                   split: float = 0.5, labels: bool = True) -> torch.Tensor:
    """Comparison clip of before/after [T,H,W,3].

    side_by_side -> [T,H,2W+4,3]; stacked -> [T,2H+4,W,3]; split -> [T,H,W,3] with `before`
    left of column split*W and `after` right of it, a white divider in between.
    """
    if layout not in LAYOUTS:
        raise DeflickerInputError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    before = prepare_clip(before, "before")
    after = prepare_clip(after, "after")
    if before.shape[0] != after.shape[0]:
        raise DeflickerInputError(
            f"before has {before.shape[0]} frames but after has {after.shape[0]}; connect the "
            "same clip before and after processing.")
    t, h, w, _ = before.shape
    if after.shape[1:3] != (h, w):
        after = to_nhwc(F.interpolate(to_nchw(after), size=(h, w), mode="bilinear",
                                      align_corners=False)).clamp(0, 1)
    if layout == "split":
        cut = min(w - 1, max(1, round(split * w)))
        out = torch.cat([before[:, :, :cut], after[:, :, cut:]], dim=2)
        out[:, :, max(0, cut - 1):cut + 1] = 1.0
        if labels:
            out = _label(_label(out, "before", 0), "after", cut)
        return out
    dim = 2 if layout == "side_by_side" else 1
    gap_shape = (t, h, _GAP, 3) if dim == 2 else (t, _GAP, w, 3)
    if labels:
        before, after = _label(before, "before", 0), _label(after, "after", 0)
    return torch.cat([before, torch.ones(gap_shape), after], dim=dim)
