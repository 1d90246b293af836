"""Learning-rate schedule shared by the trainers."""

from __future__ import annotations

import math


def warmup_cosine_lr(lr: float, warmup: int, final_fraction: float, step: int,
                     progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay from lr to lr * final_fraction as
    `progress` (0..1, by steps or by the wall-clock budget) goes to 1."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    cosine = final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return lr * warm * cosine
