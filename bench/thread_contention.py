"""Does a run keep its speed beside another busy process? (issue 13, item 3)

    python -m bench.thread_contention                  # 32 frames at 320 px, once each
    python -m bench.thread_contention --repeats 3 --frames 48 --size 384

Runs the `deflicker` command on one flickered clip four ways: the automatic thread choice and a
fixed count (--fixed, default 2), each on a quiet machine and beside one busy process (a Python
busy loop pinned to one CPU, at the same priority). Prints the wall times, the busy/quiet ratio
of each (target: at most 1.5 for the automatic choice) and the thread count the automatic
choice made. Quiet/busy runs alternate, so that slow drift in the machine's load hits both;
the load average is printed because "quiet" is only as quiet as the machine is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.datasets import CLEAN_CLIPS
from bench.profile_pipeline import case_clip, parse_case, write_json

ROOT = Path(__file__).resolve().parents[1]
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass\n"


def start_busy_process(cpu: int) -> subprocess.Popen:
    """A Python busy loop pinned to `cpu` (the 'other process' of the measurement)."""
    return subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(cpu)])


def run_cli(clip: Path, out: Path, threads: str | None) -> tuple[float, str]:
    """(wall seconds, the thread line it printed) of one `deflicker` run."""
    env = {k: v for k, v in os.environ.items() if k != "DEFLICKER_THREADS"}
    cmd = [sys.executable, "-m", "deflicker_impl", "deflicker", str(clip), str(out),
           "--overwrite"]
    if threads is not None:
        cmd += ["--threads", threads]
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"deflicker failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    line = next((ln for ln in res.stderr.splitlines() if ln.startswith("threads:")), "")
    return seconds, line


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.thread_contention", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", default="320", help="long side or WxH (default 320)")
    p.add_argument("--fixed", default="2", help="the fixed thread count compared (default 2)")
    p.add_argument("--repeats", type=int, default=1, help="runs per condition (median kept)")
    p.add_argument("--clip", default="juggle", choices=sorted(CLEAN_CLIPS))
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    busy_cpu = cpus[-1]
    frames, size = parse_case(f"{args.frames}@{args.size}")
    result: dict = {"frames": frames, "size": args.size, "cpus": len(cpus),
                    "busy_cpu": busy_cpu, "loadavg_start": os.getloadavg(), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="deflicker_contention_") as work:
        from deflicker_impl.video_io import write_clip

        clip = write_clip(Path(work) / "in.mp4", case_clip(CLEAN_CLIPS[args.clip], frames,
                                                           size), 24)
        out = Path(work) / "out.mp4"
        modes = {"automatic": None, f"fixed {args.fixed}": args.fixed}
        times = {(m, c): [] for m in modes for c in ("quiet", "busy")}
        lines: dict = {}
        for _ in range(args.repeats):
            for mode, threads in modes.items():
                for condition in ("quiet", "busy"):
                    busy = start_busy_process(busy_cpu) if condition == "busy" else None
                    try:
                        if busy is not None:
                            time.sleep(0.5)  # the busy loop is running before we start
                        seconds, line = run_cli(clip, out, threads)
                    finally:
                        if busy is not None:
                            busy.kill()
                            busy.wait()
                    times[(mode, condition)].append(seconds)
                    lines[(mode, condition)] = line
                    print(f"{mode:>10} {condition:>5}: {seconds:6.1f} s  {line}", flush=True)
    print(f"\n{frames} frames at {args.size} px, {len(cpus)} CPUs, busy process on CPU "
          f"{busy_cpu}; load average at start {result['loadavg_start'][0]:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| threads | quiet s | busy s | busy/quiet | s/frame quiet | s/frame busy |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in modes:
        quiet = statistics.median(times[(mode, "quiet")])
        busy = statistics.median(times[(mode, "busy")])
        result["modes"][mode] = {"quiet_s": quiet, "busy_s": busy, "ratio": busy / quiet,
                                 "threads_line": {c: lines[(mode, c)] for c in
                                                  ("quiet", "busy")}}
        print(f"| {mode} | {quiet:.1f} | {busy:.1f} | {busy / quiet:.2f} | "
              f"{quiet / frames:.3f} | {busy / frames:.3f} |")
    result["loadavg_end"] = os.getloadavg()
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
