"""Validation and normalisation of clips at the library boundary.

A clip is a float32 tensor [T,H,W,3] in 0..1 (the layout of a ComfyUI IMAGE batch). Everything
the pipeline accepts from outside goes through `prepare_clip`, so the stages can rely on it.
"""

from __future__ import annotations

import torch

from .errors import DeflickerInputError

CHECK_CHUNK = 16  # frames checked at a time
# How far float frames may stray outside 0..1 and still be clamped: bicubic/lanczos resizing
# overshoots by a few percent; a 0..255 or -1..1 clip is far beyond it.
RANGE_TOLERANCE = 0.05


def prepare_clip(frames: torch.Tensor, name: str = "frames", min_frames: int = 1) -> torch.Tensor:
    """Check a clip and bring it to float32 RGB [T,H,W,3] in 0..1 on the CPU.

    Accepts [T,H,W,C] with C = 1 (grayscale, replicated), 3, or 4 (alpha dropped: deflickering
    acts on colour; the alpha channel of a video is not flicker), and a single image [H,W,C].
    Integer tensors are read as 8-bit (values must lie in 0..255). Float values may overshoot
    0..1 by RANGE_TOLERANCE (resampling overshoot; clamped), no more: a clip in 0..255 or -1..1
    is refused with the expected range rather than clamped into garbage. NaN/inf values, empty
    batches, bool, complex and meta tensors are refused because they would silently poison the
    atlas fit.
    """
    if isinstance(frames, torch.Tensor) and frames.ndim == 3 and frames.shape[-1] in (1, 3, 4):
        frames = frames.unsqueeze(0)
    check_clip(frames, name, min_frames)
    t, _, _, c = frames.shape
    if not frames.dtype.is_floating_point:
        low, high = int(frames.min()), int(frames.max())
        if low < 0 or high > 255:
            raise DeflickerInputError(
                f"{name} is an integer tensor with values {low}..{high}; integer clips are read "
                "as 8-bit and must lie in 0..255. Scale it to float 0..1 first.")
        frames = frames.float() / 255.0
    frames = frames.detach().to(device="cpu", dtype=torch.float32)
    if c == 1:
        frames = frames.expand(-1, -1, -1, 3)
    elif c == 4:
        frames = frames[..., :3]
    # Checked in chunks and returned without a copy when already valid: a 300-frame 1080p clip
    # is 7.5 GB, and every full-length temporary counts against the user's RAM.
    bad: list[int] = []
    low, high = 0.0, 1.0
    for start in range(0, t, CHECK_CHUNK):
        part = frames[start:start + CHECK_CHUNK]
        finite = torch.isfinite(part).flatten(1).all(dim=1)
        bad += [start + int(i) for i in (~finite).nonzero().flatten()]
        if not bad:
            low, high = min(low, float(part.amin())), max(high, float(part.amax()))
    if bad:
        shown = ", ".join(str(i) for i in bad[:8]) + (" ..." if len(bad) > 8 else "")
        raise DeflickerInputError(
            f"{name} contains NaN or infinite values in frame(s) {shown}. Fix the node that "
            "produced them (often a VAE decode in fp16); deflickering cannot guess those pixels."
        )
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        hint = (" It looks like 0..255: divide by 255." if high > 2.0 else
                " It looks like -1..1: use (x + 1) / 2." if low < -0.5 else "")
        raise DeflickerInputError(
            f"{name} has values {low:.3g}..{high:.3g}; a clip must be float in 0..1 (IMAGE "
            f"convention).{hint}")
    if low < 0.0 or high > 1.0:
        return frames.clamp(0.0, 1.0).contiguous()
    return frames if frames.is_contiguous() else frames.contiguous()


def check_clip(frames: torch.Tensor, name: str = "frames", min_frames: int = 1) -> None:
    """Check that `frames` is a clip [T,H,W,C] with C = 1, 3 or 4 and pixel data, float or
    8-bit; raise a DeflickerInputError that says what is wrong otherwise.

    Nothing is read or copied: the values are checked where they are converted (`prepare_clip`
    at the library boundary, `tiling.chunk_as_batch` chunk by chunk in the network stages).
    """
    if not isinstance(frames, torch.Tensor):
        raise DeflickerInputError(
            f"{name} must be a torch tensor [T,H,W,3], got {type(frames).__name__}."
        )
    if frames.ndim != 4:
        raise DeflickerInputError(
            f"{name} must have shape [frames, height, width, 3], got {tuple(frames.shape)}."
        )
    t, h, w, c = frames.shape
    if t < min_frames:
        raise DeflickerInputError(
            f"{name} has {t} frames; at least {min_frames} needed. Check that the video loaded "
            "(an empty batch usually means the loader found no frames)."
        )
    if h < 1 or w < 1:
        raise DeflickerInputError(f"{name} has an empty frame size {h}x{w}.")
    if c not in (1, 3, 4):
        raise DeflickerInputError(
            f"{name} has {c} channels; expected 3 (RGB), 4 (RGBA) or 1 (grayscale). A channel "
            "count like this usually means the tensor is [T,C,H,W]: it must be permuted to "
            "[T,H,W,C]."
        )
    if frames.device.type == "meta" or frames.layout != torch.strided:
        raise DeflickerInputError(
            f"{name} is a {frames.device.type if frames.device.type == 'meta' else 'sparse'} "
            "tensor without pixel data; pass a dense tensor on the CPU or a GPU.")
    if frames.dtype == torch.bool or frames.dtype.is_complex:
        raise DeflickerInputError(
            f"{name} has dtype {frames.dtype}; a clip is float32 in 0..1 (or uint8 in 0..255). "
            "Convert it first, e.g. frames.float() for a 0/1 mask-like clip.")


def to_nchw(frames: torch.Tensor) -> torch.Tensor:
    """[T,H,W,C] -> [T,C,H,W]."""
    return frames.permute(0, 3, 1, 2)


def to_nhwc(frames: torch.Tensor) -> torch.Tensor:
    """[T,C,H,W] -> [T,H,W,C] (contiguous)."""
    return frames.permute(0, 2, 3, 1).contiguous()


def luma(frames: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of [...,3] RGB in 0..1 -> [...]."""
    return frames[..., 0] * 0.299 + frames[..., 1] * 0.587 + frames[..., 2] * 0.114
