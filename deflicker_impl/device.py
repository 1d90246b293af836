"""The one place where devices are chosen."""

from __future__ import annotations

import torch

from .errors import DeflickerInputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Map "auto" / "cpu" / "cuda" / "cuda:N" / "mps" / a torch.device to a usable device.

    "auto" (or None) picks CUDA when it is available, then MPS, then the CPU.
    """
    if isinstance(device, torch.device):
        return device
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
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeflickerInputError(
            f"Device {device!r} was requested but CUDA is not available in this PyTorch build; "
            "use 'cpu' or 'auto'."
        )
    return resolved
