"""From prompts on one frame to a mask for every frame of the clip.

SAM (the original image model) segments one image at a time. The object is carried from frame
to frame: the previous frame's mask and SAM's own low-resolution logits are moved to the next
frame with DIS optical flow, and the next frame is prompted with the box of the moved mask, a
point deep inside it and the moved logits as mask input. This runs forwards from the prompted
frame to the end and backwards to the start. Where the moved mask is empty (the object left or
was lost), the last non-empty mask's prompts are used unmoved, so an object that comes back can
be found again.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..clip import prepare_clip, to_nchw, to_nhwc
from ..device import resolve_device
from ..errors import DeflickerInputError
from ..flow import compute_flow, warp_with_flow
from ..progress import ProgressFn
from .checkpoint import SamModel

LOWRES = 256  # SAM's mask logits cover the padded 1024 x 1024 input at 256 x 256
Point = tuple[float, float]


def _check_prompts(num: int, h: int, w: int, frame_index: int, positive: Sequence[Point],
                   negative: Sequence[Point], box) -> None:
    if not 0 <= frame_index < num:
        raise DeflickerInputError(
            f"frame_index {frame_index} is outside the clip (frames 0..{num - 1}).")
    if not positive and box is None:
        raise DeflickerInputError(
            "Give at least one positive point or a box on the chosen frame: negative points "
            "alone do not say which object to segment.")
    for kind, points in (("positive", positive), ("negative", negative)):
        for x, y in points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise DeflickerInputError(
                    f"{kind} point ({x:g}, {y:g}) is outside the {w}x{h} frame; points are in "
                    "pixels of the chosen frame, x to the right, y down.")
    if box is not None:
        x0, y0, x1, y1 = box
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise DeflickerInputError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} frame.")


def _interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel farthest from the mask's border (a point surely inside the object)."""
    import cv2

    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def _box_of(mask: np.ndarray, margin: float = 0.05) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    mx, my = margin * (x1 - x0) + 2, margin * (y1 - y0) + 2
    h, w = mask.shape
    return np.array([max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)],
                    np.float32)


class _Carrier:
    """Moves a mask and SAM's low-resolution logits from one frame to the next with DIS flow."""

    def __init__(self, frames: torch.Tensor):
        h, w = frames.shape[1:3]
        long_side = max(h, w)
        self.full_hw = (h, w)
        self.scale = long_side / LOWRES  # full-resolution pixels per logit cell
        self.low_hw = (max(1, round(h / self.scale)), max(1, round(w / self.scale)))
        self.small = to_nhwc(F.interpolate(to_nchw(frames), size=self.low_hw, mode="area"))

    def move(self, src: int, dst: int, mask: torch.Tensor, logits: torch.Tensor):
        """mask [H,W] and logits [1,256,256] of frame src -> their estimate on frame dst."""
        flow = compute_flow(self.small[dst], self.small[src], "medium", normalise=True)
        lh, lw = self.low_hw
        disp = torch.zeros(LOWRES, LOWRES, 2)
        disp[:lh, :lw] = flow[:LOWRES, :LOWRES]
        moved_logits = warp_with_flow(logits[None], disp[None])[0]
        full = F.interpolate(flow.permute(2, 0, 1)[None], size=self.full_hw, mode="bilinear",
                             align_corners=False) * self.scale
        moved_mask = warp_with_flow(mask[None, None], full.permute(0, 2, 3, 1))[0, 0]
        return moved_mask, moved_logits


def masks_from_prompts(
    sam: SamModel,
    frames: torch.Tensor,
    frame_index: int = 0,
    positive_points: Sequence[Point] = (),
    negative_points: Sequence[Point] = (),
    box: tuple[float, float, float, float] | None = None,
    on_progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Segment the prompted object in every frame -> MASK batch [T,H,W] float32 (0 or 1), CPU.

    frames [T,H,W,C] in 0..1; points and box in pixels of frame `frame_index`. Runs SAM on
    `device` (default: the one chosen when loading) and returns it to the CPU afterwards.
    `on_progress(done, total)` is called for every encoder block, so Cancel acts within a frame.
    """
    from segment_anything import SamPredictor

    frames = prepare_clip(frames, "frames")
    num, h, w, _ = frames.shape
    positive, negative = list(positive_points), list(negative_points)
    _check_prompts(num, h, w, frame_index, positive, negative, box)
    run_device = resolve_device(device if device is not None else sam.device)

    units_per_frame = sam.arch.depth + 1
    total = num * units_per_frame
    done = 0

    def tick(*_):
        nonlocal done
        done = min(done + 1, total)
        if on_progress is not None:
            on_progress(done, total)

    model = sam.model.to(run_device)
    hooks = [block.register_forward_pre_hook(tick) for block in model.image_encoder.blocks]
    predictor = SamPredictor(model)
    images = (frames * 255.0 + 0.5).to(torch.uint8).numpy()
    carrier = _Carrier(frames)
    out = torch.zeros(num, h, w)

    def segment(t: int, points, labels, box_xyxy, mask_input, multimask: bool):
        predictor.set_image(images[t])
        masks, scores, logits = predictor.predict(
            point_coords=np.asarray(points, np.float32) if points else None,
            point_labels=np.asarray(labels, np.int64) if points else None,
            box=None if box_xyxy is None else np.asarray(box_xyxy, np.float32),
            mask_input=mask_input, multimask_output=multimask)
        best = int(np.argmax(scores))
        mask = torch.from_numpy(masks[best].astype(np.float32))
        out[t] = mask
        tick()
        return mask, torch.from_numpy(logits[best][None].astype(np.float32))

    def carry(order):
        mask, logits = start_mask, start_logits
        last_good = (mask, logits)
        for src, dst in itertools.pairwise(order):
            moved_mask, moved_logits = carrier.move(src, dst, mask, logits)
            binary = moved_mask.numpy() > 0.5
            if binary.sum() < 4:
                mask_src, moved_logits = last_good
                binary = mask_src.numpy() > 0.5
            x, y = _interior_point(binary)
            mask, logits = segment(dst, [(x, y)], [1], _box_of(binary),
                                   moved_logits.numpy(), False)
            if float(mask.sum()) >= 4:
                last_good = (mask, logits)

    try:
        with torch.no_grad():
            points = positive + negative
            labels = [1] * len(positive) + [0] * len(negative)
            # One click is ambiguous (part / object / group): let SAM offer three masks and keep
            # the one it scores best.
            multimask = box is None and len(points) == 1
            start_mask, start_logits = segment(frame_index, points, labels, box, None, multimask)
            if float(start_mask.sum()) < 4:
                raise DeflickerInputError(
                    f"SAM found no object at the prompts on frame {frame_index}; move the points "
                    "onto the object or draw a box around it.")
            carry(list(range(frame_index, num)))
            carry(list(range(frame_index, -1, -1)))
    finally:
        for hook in hooks:
            hook.remove()
        predictor.reset_image()
        sam.model.to("cpu")
    return out


def mask_preview(frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Frames [T,H,W,C] (C = 1, 3 or 4, 0..1) with masks [T,H,W] tinted red -> [T,H,W,3], to
    check the masks by eye."""
    rgb = frames[..., :3].float().cpu()
    if rgb.shape[-1] == 1:
        rgb = rgb.expand(-1, -1, -1, 3)
    tint = masks[..., None] * 0.5
    red = rgb.new_tensor([1.0, 0.0, 0.0])
    return (rgb * (1 - tint) + red * tint).clamp(0, 1)
