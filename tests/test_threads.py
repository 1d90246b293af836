"""The pack's thread count (deflicker_impl/threads.py): an explicit --threads or
DEFLICKER_THREADS is honoured and checked; otherwise the CPUs not busy with other work are used,
measured from /proc/stat; hosts keep their own thread count."""

from __future__ import annotations

import logging

import pytest
import torch

from deflicker_impl import threads
from deflicker_impl.cli import main
from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.threads import (
    ENV_VAR,
    LoadMonitor,
    choose_threads,
    others_busy,
    parse_proc_stat,
    threads_for,
    with_pack_threads,
)


def proc_stat(*cpus: tuple[int, int]) -> str:
    """/proc/stat text with one line per CPU: (busy jiffies in `user`, idle jiffies)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} {busy} 0 0 {idle} 0 0 0 0 0 0" for i, (busy, idle) in enumerate(cpus)]
    return "\n".join(lines + ["intr 12345", "ctxt 999"]) + "\n"


class FakeMachine:
    """Counters of a 2-CPU machine that advance as the fake clock does."""

    def __init__(self):
        self.now, self.own = 100.0, 0.0
        self.jiffies = [[0, 0], [0, 0]]  # per CPU: busy, idle
        self.sleeps: list[float] = []

    def run(self, seconds: float, busy: tuple[float, float], own: float = 0.0) -> None:
        """`seconds` pass; CPU i is busy a fraction busy[i] of it (100 jiffies a second), of
        which this process used `own` CPU-seconds per second."""
        for cpu, frac in enumerate(busy):
            self.jiffies[cpu][0] += round(100 * seconds * frac)
            self.jiffies[cpu][1] += round(100 * seconds * (1 - frac))
        self.now += seconds
        self.own += own * seconds

    def monitor(self, background: tuple[float, float] = (0.0, 0.0)) -> LoadMonitor:
        def sleep(seconds):
            self.sleeps.append(seconds)
            self.run(seconds, background)

        return LoadMonitor(read_stat=lambda: proc_stat(*map(tuple, self.jiffies)),
                           clock=lambda: self.now, own_cpu=lambda: self.own, sleep=sleep)


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: (2, frozenset({0, 1})))
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_proc_stat_lines_give_busy_and_total_jiffies_per_cpu():
    text = ("cpu  9 9 9 9 9 9 9 9 0 0\n"
            "cpu0 10 2 3 100 5 1 1 0 0 0\n"
            "cpu1 0 0 0 50 0 0 0 0\n"
            "intr 1 2 3\n")
    # busy = user + nice + system + irq + softirq + steal; idle + iowait are free
    assert parse_proc_stat(text) == {0: (17, 122), 1: (0, 50)}


def test_busy_elsewhere_subtracts_this_process_and_counts_only_usable_cpus():
    before = threads.CpuSample(0.0, 0.0, {0: (0, 0), 1: (0, 0), 2: (0, 0)})
    # over 1 s: CPU0 fully busy, CPU1 half, CPU2 (not ours) fully; we used 0.5 CPU-seconds
    after = threads.CpuSample(1.0, 0.5, {0: (100, 100), 1: (50, 100), 2: (100, 100)})
    assert others_busy(before, after, frozenset({0, 1})) == pytest.approx(1.0)
    assert others_busy(before, after, None) == pytest.approx(2.0)


@pytest.mark.parametrize(("usable", "busy", "expected"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 3.0, 1), (8, 2.5, 5), (1, 0.9, 1)])
def test_automatic_count_is_the_usable_cpus_minus_those_taken_at_least_one(usable, busy,
                                                                           expected):
    assert threads_for(usable, busy) == expected


def test_a_busy_process_on_one_cpu_leaves_one_thread(two_cpus):
    machine = FakeMachine()
    choice = choose_threads(None, monitor=machine.monitor(background=(0.0, 1.0)))
    assert (choice.count, choice.source, choice.automatic) == (1, "automatic", True)
    assert machine.sleeps == [pytest.approx(threads.SAMPLE_SECONDS)]  # one short window
    assert "1.0 CPU busy with other work" in choice.describe()
    assert "DEFLICKER_THREADS" in choice.describe()  # says how to override


def test_a_quiet_machine_gives_every_cpu(two_cpus):
    machine = FakeMachine()
    assert choose_threads(None, monitor=machine.monitor()).count == 2


def test_a_recent_sample_is_a_window_with_no_wait(two_cpus):
    machine = FakeMachine()
    monitor = machine.monitor()
    monitor.sample()  # e.g. at the CLI's start
    machine.run(2.0, busy=(1.0, 1.0), own=1.0)  # decoding (our 1 CPU) beside a busy process
    choice = choose_threads(None, monitor=monitor)
    assert machine.sleeps == [] and choice.count == 1
    machine.run(threads.MAX_SAMPLE_AGE + 1, busy=(1.0, 1.0), own=1.0)  # a stale sample:
    choose_threads(None, monitor=monitor)  # measured afresh
    assert machine.sleeps == [pytest.approx(threads.SAMPLE_SECONDS)]


def test_redecide_follows_a_process_that_starts_and_stops_mid_run(two_cpus):
    machine = FakeMachine()
    choice = choose_threads(None, monitor=machine.monitor())
    with choice.applied():
        assert torch.get_num_threads() == 2
        machine.run(5.0, busy=(1.0, 1.0), own=1.2)  # a sampler started during the fit
        assert choice.redecide() == 1 and torch.get_num_threads() == 1
        machine.run(60.0, busy=(1.0, 0.0), own=1.0)  # and stopped (a long stage:
        assert choice.redecide() == 2 and torch.get_num_threads() == 2  # still one window)
    assert machine.sleeps == [pytest.approx(threads.SAMPLE_SECONDS)]  # only the first choice


def test_explicit_counts_are_not_redecided(two_cpus):
    machine = FakeMachine()
    choice = choose_threads("3", monitor=machine.monitor())
    assert (choice.count, choice.source) == (3, "--threads")
    assert choice.redecide() == 3 and machine.sleeps == []


def test_env_var_is_honoured_and_an_option_wins_over_it(two_cpus, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert (choose_threads(None).count, choose_threads(None).source) == (3, ENV_VAR)
    assert choose_threads(2).count == 2
    monkeypatch.setenv(ENV_VAR, "auto")
    machine = FakeMachine()
    assert choose_threads(None, monitor=machine.monitor()).automatic


@pytest.mark.parametrize("garbage", ["lots", "-2", "1.5", "100000"])
def test_garbage_in_the_env_var_is_said_once_and_the_automatic_choice_is_used(
        two_cpus, monkeypatch, garbage):
    monkeypatch.setenv(ENV_VAR, garbage)
    said: list[str] = []
    machine = FakeMachine()
    for _ in range(3):
        choice = choose_threads(None, monitor=machine.monitor(), warn=said.append)
        assert choice.automatic and choice.count == 2
    assert len(said) == 1 and said[0].startswith(ENV_VAR) and garbage in said[0]
    assert "automatically" in said[0] and "\n" not in said[0]


@pytest.mark.parametrize(("value", "words"), [
    ("-1", "whole number"), ("x", "whole number"), ("2.5", "whole number"),
    ("100000", "threads per CPU")])
def test_bad_thread_options_are_one_line_errors_naming_the_option(value, words):
    with pytest.raises(DeflickerInputError) as err:
        choose_threads(value, option="--threads")
    message = str(err.value)
    assert message.startswith("--threads") and words in message and "\n" not in message


def test_zero_or_auto_means_the_automatic_choice(two_cpus):
    for value in (0, "0", "auto"):
        assert choose_threads(value, monitor=FakeMachine().monitor()).automatic


def test_cgroup_quota_caps_the_usable_cpus(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert threads.cgroup_cpu_quota(str(cpu_max)) == pytest.approx(1.5)
    cpu_max.write_text("max 100000\n")
    assert threads.cgroup_cpu_quota(str(cpu_max)) is None
    assert threads.cgroup_cpu_quota(str(tmp_path / "missing")) is None


def test_a_host_entry_point_runs_with_the_packs_count_and_restores_the_hosts(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")
    host = torch.get_num_threads()
    torch.set_num_threads(3)  # the host's own setting
    try:
        seen = []

        @with_pack_threads
        def node_function(x, *, y):
            seen.append(torch.get_num_threads())
            if y == "fail":
                raise DeflickerInputError("bad input")
            return x

        assert node_function(7, y="ok") == 7
        assert seen == [1] and torch.get_num_threads() == 3
        with pytest.raises(DeflickerInputError):
            node_function(7, y="fail")
        assert torch.get_num_threads() == 3  # restored on errors too
    finally:
        torch.set_num_threads(host)


def test_run_pipeline_restores_the_callers_thread_count():
    from deflicker_impl.atlas import AtlasConfig
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline

    host = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        frames = torch.rand(3, 16, 16, 3)
        config = PipelineConfig(stop_after="atlas", atlas=AtlasConfig(iterations=2))
        run_pipeline(frames, config, threads=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(host)


def test_cli_rejects_a_bad_threads_option_with_one_line(capsys, tmp_path):
    assert main(["metrics", str(tmp_path / "in.mp4"), "--threads", "-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --threads must be a whole number")


def test_cli_warns_once_about_garbage_in_the_env_var(capsys, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(ENV_VAR, "many-please")
    with caplog.at_level(logging.WARNING):
        main(["metrics", str(tmp_path / "missing.mp4")])
    err = capsys.readouterr().err
    assert err.count("warning: DEFLICKER_THREADS") == 1
    assert "error:" in err  # the missing input is still reported after the warning


def test_batch_rejects_a_bad_threads_option_before_any_work(tmp_path):
    from deflicker_impl.batch import run_batch
    from deflicker_impl.pipeline import PipelineConfig

    with pytest.raises(DeflickerInputError, match="--threads"):
        run_batch([str(tmp_path / "none.mp4")], tmp_path / "out", PipelineConfig(),
                  threads="-1")
    assert not (tmp_path / "out").exists()
