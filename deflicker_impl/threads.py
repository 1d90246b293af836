"""The one place where the pack's CPU thread count (torch and OpenCV) is chosen.

Why: on a CPU shared with another busy process (a ComfyUI sampler, a second job), torch's
default of one thread per core makes every parallel region wait for the thread that the
scheduler put behind the other process; a run then takes 2-4x as long instead of the ~1.5x that
losing one core costs. So the pack uses the cores that are free, not all of them.

The choice, in order:
1. an explicit count: the commands' `--threads N` (or `run_pipeline(threads=N)`);
2. the environment variable DEFLICKER_THREADS (a whole number; `auto` or 0 = automatic). A
   value that is not a usable count is said once, as a warning, and the automatic choice is
   used: an environment variable is often set far from where the run starts (a service, a
   shell profile), and failing every run over it would be worse than running well;
3. automatic: the CPUs this process may use (its affinity, capped by a cgroup CPU quota) minus
   the CPUs kept busy by other work, at least 1. "Busy with other work" is measured from
   /proc/stat over a short window (what all processes used minus what this process used), or
   from the load average where there is no /proc/stat; elsewhere nothing is subtracted.

`ThreadChoice.applied()` sets the count for a block of work and restores the caller's setting
afterwards (ComfyUI's own nodes must keep theirs); `ThreadChoice.redecide()` re-measures at a
stage boundary (a sampler that started or stopped mid-run) at no waiting cost, because the
window is then the stage that just ran.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import DeflickerInputError

ENV_VAR = "DEFLICKER_THREADS"
AUTOMATIC = "automatic"
MAX_THREADS_PER_CPU = 4  # more than this many threads per CPU is a typo, not a choice
SAMPLE_SECONDS = 0.15  # the window measured when no recent sample exists
MAX_SAMPLE_AGE = 10.0  # an older sample says little about the load now
BUSY_THRESHOLD = 0.5  # a CPU counts as taken when others use at least this much of one

log = logging.getLogger(__name__)
_said: set[str] = set()  # warnings already given in this process (each is said once)


def say_once(message: str, warn: Callable[[str], None] | None = None) -> None:
    """Give `message` (a warning) the first time only, through `warn` or the logger."""
    if message in _said:
        return
    _said.add(message)
    (warn or log.warning)(message)


# -- the CPUs ----------------------------------------------------------------------------------

def usable_cpus() -> tuple[int, frozenset[int] | None]:
    """(how many CPUs this process may use, their ids where known).

    The affinity mask (taskset, cpusets) gives the ids; a cgroup v2 CPU quota (containers'
    --cpus) caps the count."""
    try:
        ids: frozenset[int] | None = frozenset(os.sched_getaffinity(0))
        count = len(ids)
    except (AttributeError, OSError):
        ids, count = None, os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count), ids


def cgroup_cpu_quota(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """CPUs granted by a cgroup v2 quota ("quota period" in cpu.max), or None for no quota."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def thread_limit() -> int:
    """The largest thread count accepted: MAX_THREADS_PER_CPU per CPU of the machine."""
    return MAX_THREADS_PER_CPU * (os.cpu_count() or 1)


# -- measuring the other work ------------------------------------------------------------------

@dataclass(frozen=True)
class CpuSample:
    """One reading of the CPU counters: wall time, this process's CPU seconds (all threads)
    and, per CPU id, (busy, total) jiffies since boot."""

    wall: float
    own_cpu_seconds: float
    cpus: Mapping[int, tuple[int, int]]


def parse_proc_stat(text: str) -> dict[int, tuple[int, int]]:
    """Per-CPU (busy, total) jiffies from /proc/stat's "cpuN" lines.

    Busy = user + nice + system + irq + softirq + steal; idle and iowait are free time (guest
    time is already inside user)."""
    cpus = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        values = [int(v) for v in rest.split()[:8]]
        values += [0] * (8 - len(values))
        user, nice, system, idle, iowait, irq, softirq, steal = values
        busy = user + nice + system + irq + softirq + steal
        cpus[int(name[3:])] = (busy, busy + idle + iowait)
    return cpus


def others_busy(before: CpuSample, after: CpuSample, cpu_ids: frozenset[int] | None) -> float:
    """CPUs (on average over the window) used by work other than this process, counting only
    the CPUs in `cpu_ids` (all when None)."""
    used = 0.0
    for cpu, (busy, total) in after.cpus.items():
        if (cpu_ids is not None and cpu not in cpu_ids) or cpu not in before.cpus:
            continue
        d_busy, d_total = busy - before.cpus[cpu][0], total - before.cpus[cpu][1]
        if d_total > 0:
            used += min(1.0, max(0.0, d_busy / d_total))
    wall = after.wall - before.wall
    own = (after.own_cpu_seconds - before.own_cpu_seconds) / wall if wall > 0 else 0.0
    return max(0.0, used - own)


def threads_for(usable: int, busy_elsewhere: float) -> int:
    """The automatic count: the usable CPUs minus those others keep busy, at least 1."""
    taken = math.floor(busy_elsewhere + (1.0 - BUSY_THRESHOLD))
    return max(1, usable - taken)


def _read_proc_stat() -> str | None:
    try:
        with open("/proc/stat") as f:
            return f.read()
    except OSError:
        return None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


class LoadMonitor:
    """Measures how many CPUs other work keeps busy. It keeps its last sample: a measurement
    whose previous sample is recent covers the time since then and needs no waiting."""

    def __init__(self, read_stat: Callable[[], str | None] = _read_proc_stat,
                 clock: Callable[[], float] = time.monotonic,
                 own_cpu: Callable[[], float] = time.process_time,
                 sleep: Callable[[float], None] = time.sleep,
                 load_average: Callable[[], float | None] = _load_average):
        self._read_stat, self._clock, self._own_cpu = read_stat, clock, own_cpu
        self._sleep, self._load_average = sleep, load_average
        self._last: CpuSample | None = None

    def sample(self) -> CpuSample | None:
        """Read the counters now (None where there is no /proc/stat); it becomes the start of
        the next measurement's window."""
        text = self._read_stat()
        if text is None:
            return None
        self._last = CpuSample(self._clock(), self._own_cpu(), parse_proc_stat(text))
        return self._last

    def busy_elsewhere(self, cpu_ids: frozenset[int] | None,
                       max_age: float = MAX_SAMPLE_AGE) -> tuple[float, str]:
        """(CPUs busy with other work, how that was measured). The window starts at the last
        sample if it is at most `max_age` seconds old, else now (with a short wait)."""
        before = self._last
        if before is None or self._clock() - before.wall > max_age:
            before = self.sample()
            if before is None:
                load = self._load_average()
                if load is None:
                    return 0.0, "no load measurement on this system"
                return load, f"load average {load:.1f}"
        wait = SAMPLE_SECONDS - (self._clock() - before.wall)
        if wait > 0:
            self._sleep(wait)
        after = self.sample()
        if after is None:
            return 0.0, "no load measurement on this system"
        busy = others_busy(before, after, cpu_ids)
        return busy, f"{busy:.1f} CPU busy with other work over {after.wall - before.wall:.1f} s"


MONITOR = LoadMonitor()  # the process's monitor (one history of samples)


# -- the choice --------------------------------------------------------------------------------

def parse_thread_count(value: object, name: str) -> int:
    """A requested thread count as an int (0 = automatic: also None and "auto"), or a one-line
    DeflickerInputError."""
    if value is None:
        return 0
    limit = thread_limit()
    text = str(value).strip().lower()
    if text in ("auto", AUTOMATIC):
        return 0
    try:
        count = int(text)
    except ValueError:
        count = None
    if count is None or count < 0:
        raise DeflickerInputError(
            f"{name} must be a whole number of threads (1..{limit}) or 'auto' (0), "
            f"got {value!r}.")
    if count > limit:
        raise DeflickerInputError(
            f"{name} {count} is more than {MAX_THREADS_PER_CPU} threads per CPU of this "
            f"machine ({os.cpu_count()} CPUs); use at most {limit}, or 'auto'.")
    return count


@dataclass
class ThreadChoice:
    """A thread count and where it came from (`source`: the option's name, ENV_VAR or
    AUTOMATIC; `why`: what it was based on)."""

    count: int
    source: str
    why: str
    usable: int = 1
    cpu_ids: frozenset[int] | None = None
    monitor: LoadMonitor | None = field(default=None, repr=False)

    @property
    def automatic(self) -> bool:
        return self.source == AUTOMATIC

    def describe(self) -> str:
        """One line for a log: "threads: 1 (automatic: 2 usable CPUs, 1.0 busy ...)"."""
        how = (f"automatic: {self.usable} usable CPU(s), {self.why}; set --threads or "
               f"{ENV_VAR} to override" if self.automatic else f"{self.source}")
        return f"threads: {self.count} ({how})"

    def redecide(self) -> int:
        """Re-measure (automatic choices only) and apply the new count; returns it."""
        if self.automatic and self.monitor is not None:
            # The window is the stage that just ran, however long it took.
            busy, self.why = self.monitor.busy_elsewhere(self.cpu_ids, max_age=math.inf)
            count = threads_for(self.usable, busy)
            if count != self.count:
                self.count = count
                set_threads(count)
        return self.count

    @contextmanager
    def applied(self) -> Iterator[ThreadChoice]:
        """Use this count inside the block; the caller's torch and OpenCV counts after it."""
        previous = set_threads(self.count)
        try:
            yield self
        finally:
            restore_threads(previous)


def choose_threads(requested: object = None, *, option: str = "--threads",
                   environ: Mapping[str, str] | None = None,
                   monitor: LoadMonitor | None = None,
                   warn: Callable[[str], None] | None = None) -> ThreadChoice:
    """The pack's thread count: `requested` (an int, a string such as "4" or "auto"; None or 0 =
    not given) checked and honoured, else DEFLICKER_THREADS, else the automatic choice.

    A bad `requested` raises DeflickerInputError naming `option`; a bad environment value is
    said once through `warn` (default: the logger) and the automatic choice is used."""
    if count := parse_thread_count(requested, option):
        return ThreadChoice(count, option, "as asked")
    env = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if env:
        try:
            count = parse_thread_count(env, ENV_VAR)
        except DeflickerInputError as exc:
            say_once(f"{exc} Ignoring it: choosing the thread count automatically.", warn)
            count = 0
        if count:
            return ThreadChoice(count, ENV_VAR, "as asked")
    return automatic_threads(monitor)


def automatic_threads(monitor: LoadMonitor | None = None) -> ThreadChoice:
    """The usable CPUs minus those busy with other work (see the module docstring)."""
    monitor = monitor or MONITOR
    usable, ids = usable_cpus()
    busy, why = monitor.busy_elsewhere(ids)
    return ThreadChoice(threads_for(usable, busy), AUTOMATIC, why, usable, ids, monitor)


def as_choice(threads: ThreadChoice | int | str | None, option: str = "threads") -> ThreadChoice:
    """A ThreadChoice from what an API caller passed (a choice, a count, "auto" or None)."""
    return threads if isinstance(threads, ThreadChoice) else choose_threads(threads, option=option)


# -- applying it -------------------------------------------------------------------------------

def set_threads(count: int) -> tuple[int, int | None]:
    """Set torch's intra-op and OpenCV's thread counts; returns the previous (torch, OpenCV)."""
    import torch

    previous_torch = torch.get_num_threads()
    torch.set_num_threads(count)
    previous_cv2 = None
    try:
        from .opencv import require_cv2

        cv2 = require_cv2()
        previous_cv2 = cv2.getNumThreads()
        cv2.setNumThreads(count)
    except ImportError:  # flow says how to install OpenCV when it is needed
        pass
    return previous_torch, previous_cv2


def restore_threads(previous: tuple[int, int | None]) -> None:
    """Undo `set_threads` (its return value)."""
    import torch

    torch_threads, cv2_threads = previous
    torch.set_num_threads(torch_threads)
    if cv2_threads is not None:
        from .opencv import require_cv2

        require_cv2().setNumThreads(cv2_threads)


def with_pack_threads(function):
    """Decorator for entry points run inside a host (the ComfyUI nodes): the call runs with the
    pack's choice of threads and the host's own setting is restored afterwards."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        with choose_threads().applied():
            return function(*args, **kwargs)

    return call
