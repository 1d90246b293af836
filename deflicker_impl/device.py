"""The one place where devices are chosen."""

from __future__ import annotations

import torch

from .errors import DeflickerInputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Map "auto" / "cpu" / "cuda" / "cuda:N" / "mps" / a torch.device to a usable device.

    "auto" (or None) picks CUDA when it is available, then MPS, then the CPU.
    """
    if isinstance(device, torch.device):
        return check_device(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError as exc:
        raise DeflickerInputError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    return check_device(resolved, device)


def check_device(resolved: torch.device, asked: object = None) -> torch.device:
    """`resolved` if this machine can compute on it, else a DeflickerInputError that names what
    was asked for (`asked`) and what to use instead."""
    asked = str(resolved) if asked is None else asked
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeflickerInputError(
                f"Device {asked!r} was requested but CUDA is not available in this PyTorch "
                "build or on this machine; use 'cpu' or 'auto'.")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeflickerInputError(
                f"Device {asked!r} was requested but this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1}); pick one of those or 'auto'.")
        return resolved
    if resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeflickerInputError(
                f"Device {asked!r} was requested but Apple's MPS is not available in this "
                "PyTorch build or on this machine; use 'cpu' or 'auto'.")
        return resolved
    raise DeflickerInputError(
        f"Device {asked!r} cannot run the deflicker ({resolved.type} is not a compute device "
        "this pack supports); use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")


def preferred_memory_format(device: torch.device) -> torch.memory_format:
    """The memory layout the networks run fastest in on `device`: channels-last on the CPU
    (its convolution kernels are written for it; bench/README.md has the figures), the default
    elsewhere, where it has not been measured."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format
