"""Video quality metrics: PSNR, the paper's warping error, and a global flicker index.

Warping error follows Lei et al. (CVPR 2023): for every frame t >= 1, the masked mean L1
difference between O_t and O_{t-1} warped to t (short term) plus O_t and O_0 warped to t
(long term), averaged over frames. The flow and its occlusion mask come from a *reference* clip
(the clean clip for synthetic data, the input for real clips), never from the clip being scored,
so a method cannot lower its error by changing the motion it is measured with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..clip import luma, to_nchw
from ..flow import flow_with_occlusion, warp_with_flow
from ..progress import ProgressFn
from ..temporal import temporal_median


def psnr(output: torch.Tensor, reference: torch.Tensor, peak: float = 1.0) -> float:
    """Mean over frames of per-frame PSNR in dB; clips [T,H,W,3]. Identical frames score 100 dB."""
    mse = (output.float() - reference.float()).square().flatten(1).mean(dim=1)
    per_frame = 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-10))
    return float(per_frame.mean())


@dataclass
class WarpReference:
    """Flows and masks of a reference clip, computed once and reused for every method scored.

    flow_prev[t-1] [H,W,2] maps frame t to frame t-1; flow_first[t-1] maps frame t to frame 0;
    the masks [H,W] are 1 where the correspondence is valid (not occluded, inside the frame).
    """

    flow_prev: torch.Tensor
    mask_prev: torch.Tensor
    flow_first: torch.Tensor
    mask_first: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.flow_prev.shape[0]) + 1


def compute_warp_reference(
    reference: torch.Tensor, preset: str = "medium",
    on_progress: ProgressFn | None = None,
) -> WarpReference:
    """Flows of the reference clip [T,H,W,3] (T >= 2) for `warping_error`."""
    if reference.shape[0] < 2:
        raise ValueError("Warping error needs at least 2 frames.")
    flows_p, masks_p, flows_f, masks_f = [], [], [], []
    for t in range(1, reference.shape[0]):
        if on_progress is not None:
            on_progress(t - 1, reference.shape[0] - 1)
        fp, mp = flow_with_occlusion(reference[t], reference[t - 1], preset)
        flows_p.append(fp)
        masks_p.append(mp)
        if t == 1:
            ff, mf = fp, mp
        else:
            ff, mf = flow_with_occlusion(reference[t], reference[0], preset)
        flows_f.append(ff)
        masks_f.append(mf)
    if on_progress is not None:
        on_progress(reference.shape[0] - 1, reference.shape[0] - 1)
    return WarpReference(
        torch.stack(flows_p), torch.stack(masks_p), torch.stack(flows_f), torch.stack(masks_f)
    )


def restrict_to_reliable_flow(reference: WarpReference, clean: torch.Tensor,
                              tolerance: float = 0.02, chunk: int = 16) -> WarpReference:
    """The same flows with their masks cut down to the pixels where they explain the clean
    clip [T,H,W,3] itself: |clean_t - warp(clean_s)| (channel mean) below `tolerance`.

    Occlusion checks do not catch flow that is consistent but wrong (a turning, finely striped
    object): there the clean clip itself scores a large warping error, and a result that blurs
    the object away scores lower than the truth. With ground truth at hand, such pixels can be
    left out, so that the error measures the result's steadiness rather than the flow's.
    """
    if clean.shape[0] != reference.num_frames:
        raise ValueError(f"Clean clip has {clean.shape[0]} frames, the reference "
                         f"{reference.num_frames}.")
    short, long = zip(*_warp_differences(clean, reference, chunk), strict=True)
    return WarpReference(reference.flow_prev, reference.mask_prev * (torch.cat(short) < tolerance),
                         reference.flow_first,
                         reference.mask_first * (torch.cat(long) < tolerance))


def _warp_differences(clip: torch.Tensor, reference: WarpReference, chunk: int):
    """Per chunk of frames 1..T-1 of `clip` [T,H,W,3]: (|O_t - warp(O_{t-1})|, |O_t -
    warp(O_0)|), channel means [N,H,W], with the reference's flows (not yet masked)."""
    first = to_nchw(clip[:1].float())
    for start in range(1, clip.shape[0], chunk):
        stop = min(start + chunk, clip.shape[0])
        cur = to_nchw(clip[start:stop].float())
        prev = to_nchw(clip[start - 1 : stop - 1].float())
        idx = slice(start - 1, stop - 1)
        short = (cur - warp_with_flow(prev, reference.flow_prev[idx])).abs().mean(dim=1)
        long = (cur - warp_with_flow(first.expand(len(cur), -1, -1, -1),
                                     reference.flow_first[idx])).abs().mean(dim=1)
        yield short, long


def _masked_mean(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """diff, mask [N,H,W] -> [N] mean of diff over the valid pixels."""
    return (diff * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)


def warping_error(clip: torch.Tensor, reference: WarpReference, chunk: int = 16) -> float:
    """Paper's warping error of `clip` [T,H,W,3] using the reference's flows (lower = steadier).

    Returned in 0..1 intensity units (multiply by 255 for 8-bit levels).
    """
    return float(warping_error_per_frame(clip, reference, chunk).mean())


def warping_error_per_frame(clip: torch.Tensor, reference: WarpReference,
                            chunk: int = 16) -> torch.Tensor:
    """[T-1] short + long term warping error of frames 1..T-1 (their mean is `warping_error`)."""
    if clip.shape[0] != reference.num_frames:
        raise ValueError(
            f"Clip has {clip.shape[0]} frames but the reference has {reference.num_frames}."
        )
    per_frame, start = [], 0
    for short, long in _warp_differences(clip, reference, chunk):
        idx = slice(start, start + len(short))
        per_frame.append(_masked_mean(short, reference.mask_prev[idx])
                         + _masked_mean(long, reference.mask_first[idx]))
        start += len(short)
    return torch.cat(per_frame)


def warping_errors_streamed(
    clips: list[torch.Tensor], reference: torch.Tensor, preset: str = "medium",
    on_progress: ProgressFn | None = None,
) -> list[torch.Tensor]:
    """[T-1] per-frame warping error of each clip, with the flow of `reference` [T,H,W,3].

    The same numbers as `warping_error_per_frame` with `compute_warp_reference(reference)`, but
    each frame's flows are computed, used for every clip and dropped: memory does not grow with
    the clip's length (a stored reference of 200 frames at 1080p would take about 7 GB).
    """
    t_total = reference.shape[0]
    if t_total < 2:
        raise ValueError("Warping error needs at least 2 frames.")
    for clip in clips:
        if clip.shape[0] != t_total:
            raise ValueError(f"Clip has {clip.shape[0]} frames but the reference has {t_total}.")
    per_clip = [[] for _ in clips]
    for t in range(1, t_total):
        if on_progress is not None:
            on_progress(t - 1, t_total - 1)
        fp, mp = flow_with_occlusion(reference[t], reference[t - 1], preset)
        ff, mf = (fp, mp) if t == 1 else flow_with_occlusion(reference[t], reference[0], preset)
        for errors, clip in zip(per_clip, clips, strict=True):
            cur = to_nchw(clip[t:t + 1].float())
            prev = warp_with_flow(to_nchw(clip[t - 1:t].float()), fp[None])
            first = warp_with_flow(to_nchw(clip[:1].float()), ff[None])
            short = _masked_mean((cur - prev).abs().mean(dim=1), mp[None])
            long = _masked_mean((cur - first).abs().mean(dim=1), mf[None])
            errors.append(short + long)
    if on_progress is not None:
        on_progress(t_total - 1, t_total - 1)
    return [torch.cat(errors) for errors in per_clip]


def mean_luma_per_frame(clip: torch.Tensor) -> torch.Tensor:
    """[T] mean luma of every frame of clip [T,H,W,3], in 8-bit levels (0..255)."""
    return luma(clip.float()).flatten(1).mean(dim=1) * 255.0


def flicker_index(clip: torch.Tensor) -> float:
    """Global flicker: mean |Y_t - median5(Y)_t| of per-frame mean luma, in 8-bit levels.

    The 5-frame temporal median is the local "steady" brightness; scene motion changes mean luma
    slowly, flicker changes it from frame to frame.
    """
    y = mean_luma_per_frame(clip)
    t = y.shape[0]
    if t < 3:
        return 0.0
    median5 = temporal_median(y[:, None], 5)[:, 0]
    return float((y - median5).abs().mean())
