"""Named wall-clock phases, for profiling (bench/profile_pipeline.py).

The library marks its phases with `with phase("flow"):`. Nothing is measured unless a caller
records: then every phase adds its wall time under its nested name ("atlas fit/flow").
When nothing records, `phase` returns one shared no-op context, so the marks cost a function call
and cannot change any result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

_NOTHING = nullcontext()


@dataclass
class PhaseTimes:
    """Seconds and entry counts per nested phase name, in the order phases were first seen."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    synchronize: Callable[[], None] | None = None  # e.g. torch.cuda.synchronize for GPU work
    _stack: list[str] = field(default_factory=list, repr=False)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1


_recorder: PhaseTimes | None = None


@contextmanager
def recording(synchronize: Callable[[], None] | None = None) -> Iterator[PhaseTimes]:
    """Record the phases run inside the block (not thread-safe: one recording at a time)."""
    global _recorder
    previous, _recorder = _recorder, PhaseTimes(synchronize=synchronize)
    try:
        yield _recorder
    finally:
        _recorder = previous


def phase(name: str):
    """A context that adds its wall time to the active recording under `name` (nested in the
    enclosing phases); a no-op when nothing records."""
    return _NOTHING if _recorder is None else _timed(_recorder, name)


@contextmanager
def _timed(recorder: PhaseTimes, name: str) -> Iterator[None]:
    full = "/".join([*recorder._stack, name])
    recorder._stack.append(name)
    if recorder.synchronize is not None:
        recorder.synchronize()
    start = time.perf_counter()
    try:
        yield
    finally:
        if recorder.synchronize is not None:
            recorder.synchronize()
        recorder.add(full, time.perf_counter() - start)
        recorder._stack.pop()
