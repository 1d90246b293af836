"""When the atlas optimisation has converged: the loss stalls.

The loss of one step is noisy (a fresh random pixel subset each step), so it is averaged over
windows of steps; the fit stops when a window's mean is no longer lower than the previous one's
by `tolerance` (relative). One host sync per window, not per step (cheap on a GPU too).
"""

from __future__ import annotations

import torch


class LossStall:
    """Window means of the loss, and whether the fit may stop.

    `tolerance` <= 0 never stops (a fixed number of steps); `min_steps` are always run.
    """

    def __init__(self, tolerance: float, min_steps: int, window: int = 25):
        self.tolerance, self.min_steps, self.window = tolerance, min_steps, window
        self.means: list[float] = []
        self._sum: torch.Tensor | None = None
        self._count = 0
        self._steps = 0

    def update(self, loss: torch.Tensor) -> bool:
        """Record one step's loss; True when the fit should stop after this step."""
        value = loss.detach()
        self._sum = value if self._sum is None else self._sum + value
        self._count += 1
        self._steps += 1
        if self._count < self.window:
            return False
        self.means.append(float(self._sum) / self._count)
        self._sum, self._count = None, 0
        if self.tolerance <= 0 or self._steps < self.min_steps or len(self.means) < 2:
            return False
        previous, latest = self.means[-2], self.means[-1]
        return previous - latest < self.tolerance * abs(previous)
