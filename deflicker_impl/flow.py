"""Optical flow (OpenCV DIS), forward-backward occlusion masks, and warping.

Flow convention: `flow[y, x] = (dx, dy)` maps pixel (x, y) of the source frame to
(x + dx, y + dy) in the target frame. Backward warping of `image` (the target) with that flow
gives the target's content aligned to the source frame.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def _dis(preset: str):
    import cv2

    cv2.setNumThreads(1)  # deterministic across machines, and the caller's threads stay free
    return cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])


@functools.cache
def _flow_worker() -> ThreadPoolExecutor:
    """The one background thread that computes the second direction of a flow pair."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="deflicker-flow")


def _gray_u8(frame: torch.Tensor | np.ndarray, normalise: bool) -> np.ndarray:
    """[H,W,3] float 0..1 -> [H,W] uint8 luma; `normalise` removes the frame's mean and contrast,
    so that flow between two frames with different brightness still matches structure."""
    arr = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    y = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    if normalise:
        y = (y - y.mean()) / (y.std() + 1e-4) * 0.18 + 0.5
    return np.ascontiguousarray((np.clip(y, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def compute_flow(
    source: torch.Tensor, target: torch.Tensor, preset: str = "medium", normalise: bool = False
) -> torch.Tensor:
    """DIS flow from `source` to `target`, both [H,W,3] in 0..1 -> [H,W,2] float32 pixels."""
    src, dst = _gray_u8(source, normalise), _gray_u8(target, normalise)
    if min(src.shape) < 12:
        # DIS needs a patch's worth of pixels; tiny frames have no measurable motion anyway.
        return torch.zeros(*src.shape, 2)
    flow = _dis(preset).calc(src, dst, None)
    return torch.from_numpy(flow)


def warp_with_flow(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward-warp `image` [N,C,H,W] with `flow` [N,H,W,2]: out(x) = image(x + flow(x)).

    Samples outside the frame take the border value; pair with a validity mask.
    """
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=flow.dtype, device=flow.device),
        torch.arange(w, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    x = xs + flow[..., 0]
    y = ys + flow[..., 1]
    grid = torch.stack(
        (2.0 * x / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0), dim=-1
    )
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def occlusion_mask(
    flow_fw: torch.Tensor, flow_bw: torch.Tensor, alpha: float = 0.01, beta: float = 0.5
) -> torch.Tensor:
    """Forward-backward consistency check.

    flow_fw [N,H,W,2] goes source -> target, flow_bw [N,H,W,2] target -> source. Returns
    [N,H,W] float mask, 1 where the pixel is visible in both frames (round trip closes to within
    alpha * (|fw|^2 + |bw|^2) + beta pixels^2) and lands inside the target frame.
    """
    _, h, w, _ = flow_fw.shape
    bw_at_fw = warp_with_flow(flow_bw.permute(0, 3, 1, 2), flow_fw).permute(0, 2, 3, 1)
    round_trip = (flow_fw + bw_at_fw).square().sum(-1)
    bound = alpha * (flow_fw.square().sum(-1) + bw_at_fw.square().sum(-1)) + beta
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    x = xs + flow_fw[..., 0]
    y = ys + flow_fw[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return ((round_trip <= bound) & inside).float()


def flow_with_occlusion(
    source: torch.Tensor, target: torch.Tensor, preset: str = "medium", normalise: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow source -> target [H,W,2] and its validity mask [H,W] (1 = not occluded)."""
    if torch.get_num_threads() > 1:
        # DIS runs on one thread (see _dis) and releases the GIL: the two directions share
        # the threads the pack chose for torch instead of leaving all but one idle.
        backward = _flow_worker().submit(compute_flow, target, source, preset, normalise)
        fw = compute_flow(source, target, preset, normalise)
        bw = backward.result()
    else:
        fw = compute_flow(source, target, preset, normalise)
        bw = compute_flow(target, source, preset, normalise)
    mask = occlusion_mask(fw[None], bw[None])[0]
    return fw, mask
