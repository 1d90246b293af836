"""Progress reporting across stages.

Every long function in the library takes `on_progress(done, total)`; it may raise (ComfyUI's
interrupt, the CLI's Ctrl-C) to cancel. `StageProgress` maps each stage's own counts onto one
overall 0..1000 scale, so a single progress bar covers the whole pipeline.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None]
SCALE = 1000


class StageProgress:
    """Splits one overall progress bar into weighted stages."""

    def __init__(self, weights: dict[str, float], on_progress: ProgressFn | None):
        total = sum(weights.values()) or 1.0
        self._spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for name, wgt in weights.items():
            self._spans[name] = (start, wgt / total)
            start += wgt / total
        self._on_progress = on_progress

    def stage(self, name: str) -> ProgressFn:
        start, span = self._spans[name]

        def report(done: int, total: int) -> None:
            if self._on_progress is not None:
                frac = start + span * (done / total if total else 1.0)
                self._on_progress(min(SCALE, round(frac * SCALE)), SCALE)

        return report
