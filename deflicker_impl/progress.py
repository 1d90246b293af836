"""Progress reporting across stages.

Every long function in the library takes `on_progress(done, total)` (a `ProgressFn`, the one
progress type of the package); it may raise (ComfyUI's interrupt, `DeflickerCancelled`) to
cancel, and the exception comes out of the library unchanged. `StageProgress` maps each
stage's own counts onto one overall 0..1000 scale, so a single progress bar covers the whole
pipeline. `TerminalProgress` is the one progress display of the command line (CLI and batch).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

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


class ProgressCounter:
    """Steps done out of a known total, reported to an optional `ProgressFn` at every call
    (`counter(n)` adds n steps; `counter(0)` only reports, which lets a callback cancel between
    steps). The count shown never passes the total."""

    def __init__(self, total: int, on_progress: ProgressFn | None):
        self.total, self.done = total, 0
        self._on_progress = on_progress

    def __call__(self, steps: int = 1) -> None:
        self.done += steps
        if self._on_progress is not None:
            self._on_progress(min(self.done, self.total), self.total)


LOG_INTERVAL = 5.0  # seconds between lines when the stream is a log, not a terminal
TERMINAL_INTERVAL = 0.2  # seconds between redraws of the bar on a terminal
BAR_WIDTH = 30


class TerminalProgress:
    """The progress of the CLI and the batch on stderr (an `on_progress`).

    On a terminal: one bar that updates in place (percentage, elapsed time, ETA). Elsewhere
    (a log file, CI, a pipe): a plain line at most every LOG_INTERVAL seconds, so that the log
    reads as lines rather than one ever-growing line of carriage returns. Both end with one
    final line at 100%."""

    def __init__(self, label: str, enabled: bool = True, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.label, self.enabled = label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = _is_terminal(self.stream)
        self.interval = TERMINAL_INTERVAL if self.interactive else LOG_INTERVAL
        self._clock = clock
        self.start = clock()
        self._last: float | None = None
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or self._finished:
            return
        now = self._clock()
        final = done >= total
        if not final and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self._finished = final
        frac = min(1.0, done / total) if total else 1.0
        elapsed = now - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        times = (f"{elapsed:6.1f}s elapsed" if final else
                 f"{elapsed:6.1f}s elapsed, ~{eta:5.1f}s left")
        if self.interactive:
            bar = "#" * int(frac * BAR_WIDTH)
            self.stream.write(f"\r{self.label} [{bar:<{BAR_WIDTH}}] {frac * 100:5.1f}%  {times}"
                              f"{'   ' if final else ''}" + ("\n" if final else ""))
        else:
            self.stream.write(f"{self.label} {frac * 100:5.1f}%  {times.strip()}\n")
        self.stream.flush()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
