"""The command line's progress (TerminalProgress): a bar redrawn in place on a terminal; on a log,
a pipe or CI, a plain line at most every few seconds; both with one final line."""

from __future__ import annotations

import io
import re

import pytest

from deflicker_impl.progress import LOG_INTERVAL, StageProgress, TerminalProgress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(progress: TerminalProgress, clock: FakeClock, seconds: float, steps: int) -> None:
    """Report steps 1..steps evenly over `seconds` of fake time."""
    for step in range(1, steps + 1):
        clock.now += seconds / steps
        progress(step, steps)


def test_on_a_terminal_the_bar_updates_in_place_and_ends_with_one_newline():
    stream, clock = FakeTerminal(), FakeClock()
    progress = TerminalProgress("deflicker", stream=stream, clock=clock)
    drive(progress, clock, seconds=10.0, steps=100)
    progress(100, 100)  # the pipeline's own final report: no second final line
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    redraws = text.split("\r")[1:]
    assert 40 <= len(redraws) <= 51  # about 5 a second over 10 s, not one per step
    assert redraws[-1].startswith("deflicker [" + "#" * 30 + "] 100.0%")
    assert "10.0s elapsed" in redraws[-1] and "left" not in redraws[-1]
    for redraw in redraws[:-1]:  # at a steady rate, elapsed + ETA = the whole run's 10 s
        elapsed, left = re.search(r"([\d.]+)s elapsed, ~\s*([\d.]+)s left", redraw).groups()
        assert float(elapsed) + float(left) == pytest.approx(10.0, abs=0.15)


def test_on_a_log_it_writes_a_line_every_few_seconds_and_no_carriage_returns():
    stream, clock = io.StringIO(), FakeClock()  # StringIO: not a terminal, like a pipe or CI
    progress = TerminalProgress("deflicker", stream=stream, clock=clock)
    drive(progress, clock, seconds=60.0, steps=600)
    progress(600, 600)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) <= 60.0 / LOG_INTERVAL + 2  # the first report, one per interval, the end
    assert len(lines) >= 60.0 / LOG_INTERVAL
    assert lines[0].startswith("deflicker   0.2%")
    assert lines[-1] == "deflicker 100.0%  60.0s elapsed"
    assert sum(line.startswith("deflicker 100.0%") for line in lines) == 1


def test_disabled_progress_writes_nothing():
    stream, clock = FakeTerminal(), FakeClock()
    drive(TerminalProgress("x", enabled=False, stream=stream, clock=clock), clock, 5.0, 10)
    assert stream.getvalue() == ""


def test_a_stage_split_bar_reaches_exactly_the_end_once():
    stream, clock = io.StringIO(), FakeClock()
    bar = TerminalProgress("run", stream=stream, clock=clock)
    stages = StageProgress({"a": 3.0, "b": 1.0}, bar)
    for name in ("a", "b"):
        report = stages.stage(name)
        for done in range(11):
            clock.now += 1.0
            report(done, 10)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("run 100.0%") and sum("100.0%" in line for line in lines) == 1
