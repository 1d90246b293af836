"""Speed benchmark: the CLI end to end (start-up included), this tree against a previous release,
in one run, on the inputs of the main and the generative benchmarks.

    .venv/bin/python -m bench.speed_bench                        # everything (about 30 min)
    .venv/bin/python -m bench.speed_bench --sets main --busy 0   # a part of it
    .venv/bin/python -m bench.speed_bench --quick                # smoke test

Every input is written once as a folder of PNG frames; each version runs
`python -m deflicker_impl deflicker IN OUT --quiet` on it as a user would (its own process:
torch import, weights, decoding and encoding are part of the time) with its default options.
The output is read back and scored as the benchmarks do: PSNR to the clean clip and the warping
error ratio (output / input, flow of the clean clip). The previous release is checked out of
git (`--previous REV`, default: the last landed release) into a temporary folder.

Parts:
- quality + speed: the main benchmark's inputs (4 clean clips x W = 1, 3, 10 and the clean clips
  themselves, 48 frames at 384 px) and the generative benchmark's held-out clips (x W = 1, 3, 10
  and clean, 32 frames at 320 px);
- under load (`--busy N`): the first N inputs again while one other process spins on one core
  (pinned to the last CPU), the way a sampler or a second job shares the machine;
- linearity (`--lengths`): one clip looped to 32, 96 and 300 frames at 320 px (current only).

Time only on a quiet machine (the report records the load average before each run).
Writes <out>/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from deflicker_impl.evaluation.metrics import compute_warp_reference, psnr, warping_error
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.video_io import read_clip, write_clip

from .datasets import CLEAN_CLIPS, build_inputs, load_clip
from .deflicker_bench import machine_description, mean_of
from .generative_data import HELD_OUT, load_generated_clip
from .thread_contention import start_busy_process

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "f21627a"  # the last landed release (stop 17)
WINDOWS = (1, 3, 10)
TARGET_SPF = 0.35


def main_inputs(frames: int, long_side: int) -> list[dict]:
    rows = []
    for inp in build_inputs(list(CLEAN_CLIPS), [], frames, long_side, WINDOWS, log=lambda *_: None):
        rows.append({"set": "main", "clip": inp.clip, "label": inp.label, "frames": inp.frames,
                     "clean": inp.clean})
    return rows


def generative_inputs(frames: int, long_side: int) -> list[dict]:
    rows = []
    for index, (name, (stem, _)) in enumerate(HELD_OUT.items()):
        clean = load_generated_clip(stem, frames, long_side)
        seed = 2000 + 100 * index  # the generative benchmark's seeds
        rows.append({"set": "generative", "clip": name, "label": "clean", "frames": clean,
                     "clean": clean})
        for w in WINDOWS:
            rows.append({"set": "generative", "clip": name, "label": f"W={w}",
                         "frames": add_synthetic_flicker(clean, window=w, seed=seed + w),
                         "clean": clean})
    return rows


def checkout(rev: str, into: Path) -> Path:
    """The tree of `rev` (tracked files, weights included) extracted into `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


@contextmanager
def busy_core():
    """One other process spinning on one core (the last CPU this process may use)."""
    spinner = start_busy_process(max(os.sched_getaffinity(0)))
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_cli(root: Path, source: Path, target: Path, extra: list[str],
            threads: int | None = None) -> float:
    """Wall seconds of one `deflicker` run of the tree at `root`. `threads`: a fixed count for
    every version (torch's OMP_NUM_THREADS, which releases without a choice of their own follow);
    None: each version chooses, as for a user."""
    env = dict(os.environ, PYTHONPATH=str(root))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "DEFLICKER_THREADS"):
        env.pop(var, None)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), DEFLICKER_THREADS=str(threads))
    cmd = [sys.executable, "-m", "deflicker_impl", "deflicker", str(source), str(target),
           "--quiet", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-800:]}")
    return seconds


def measure(versions: dict[str, Path], inputs: list[dict], work: Path, busy: bool, log,
            extra: list[str], threads: int | None = None) -> list[dict]:
    rows = []
    for n, inp in enumerate(inputs, 1):
        source = work / f"in_{inp['set']}_{inp['clip']}_{inp['label']}".replace("=", "")
        if not source.exists():
            write_clip(source, inp["frames"])
        reference = compute_warp_reference(inp["clean"])
        ewarp_in = warping_error(inp["frames"], reference)
        for version, root in versions.items():
            target = work / f"out_{version}"
            subprocess.run(["rm", "-rf", str(target)], check=True)
            load = os.getloadavg()[0]
            if busy:
                with busy_core():
                    seconds = run_cli(root, source, target, extra, threads)
            else:
                seconds = run_cli(root, source, target, extra, threads)
            out = read_clip(target).frames
            t = out.shape[0]
            row = {"set": inp["set"], "clip": inp["clip"], "label": inp["label"],
                   "version": version, "busy": busy, "frames": t,
                   "size": list(out.shape[1:3]), "seconds": seconds,
                   "seconds_per_frame": seconds / t, "loadavg_before": round(load, 2),
                   "psnr": psnr(out, inp["clean"]),
                   "ewarp_ratio": warping_error(out, reference) / ewarp_in if ewarp_in > 0
                   else None}
            rows.append(row)
            log(f"[{n}/{len(inputs)}] {inp['set']:10s} {inp['clip']:18s} {inp['label']:6s} "
                f"{version:8s}{' busy' if busy else ''}  {row['seconds_per_frame']:.3f} s/frame  "
                f"PSNR {row['psnr']:.2f}  Ewarp ratio "
                f"{row['ewarp_ratio'] if row['ewarp_ratio'] is None else round(row['ewarp_ratio'], 3)}"
                f"  (load {load:.2f})")
    return rows


def loop_clip(clip: torch.Tensor, frames: int) -> torch.Tensor:
    """Ping-pong the clip to `frames` frames (no jump at the turn)."""
    cycle = torch.cat((clip, clip.flip(0)[1:-1])) if clip.shape[0] > 2 else clip
    reps = -(-frames // cycle.shape[0])
    return cycle.repeat(reps, 1, 1, 1)[:frames].contiguous()


def summarize(rows: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["set"], r["version"], r["busy"]) for r in rows}):
        mine = [r for r in rows if (r["set"], r["version"], r["busy"]) == key]
        flick = [r for r in mine if r["label"].startswith("W=")]
        clean = [r for r in mine if r["label"] == "clean"]
        out["/".join((key[0], key[1], "busy" if key[2] else "alone"))] = {
            "inputs": len(mine),
            "seconds_per_frame": mean_of(r["seconds_per_frame"] for r in mine),
            "synthetic_psnr": mean_of(r["psnr"] for r in flick),
            "synthetic_ewarp_ratio": mean_of(r["ewarp_ratio"] for r in flick),
            "clean_psnr": mean_of(r["psnr"] for r in clean),
            "clean_psnr_min": min((r["psnr"] for r in clean), default=None),
        }
    return out


def markdown(result: dict) -> str:
    lines = [f"# Speed benchmark ({result['date']})", "", f"Command: `{result['command']}`", "",
             (f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; "
              f"previous release `{result['previous']}`; threads: "
              f"{result['threads'] or 'each version its own choice'}."), "",
             ("| set / version / load | inputs | s/frame (CLI, start included) | synthetic PSNR "
              "| E_warp ratio | clean PSNR mean (worst) |"), "|---|---|---|---|---|---|"]
    fmt = (lambda v, d: "n/a" if v is None else f"{v:.{d}f}")
    for key, s in result["summary"].items():
        lines.append(f"| {key} | {s['inputs']} | {fmt(s['seconds_per_frame'], 3)} | "
                     f"{fmt(s['synthetic_psnr'], 2)} | {fmt(s['synthetic_ewarp_ratio'], 3)} | "
                     f"{fmt(s['clean_psnr'], 2)} ({fmt(s['clean_psnr_min'], 2)}) |")
    if result.get("lengths"):
        lines += ["", "| frames (320 px) | s/frame | ratio to the shortest |", "|---|---|---|"]
        first = result["lengths"][0]["seconds_per_frame"]
        for r in result["lengths"]:
            lines.append(f"| {r['frames']} | {r['seconds_per_frame']:.3f} | "
                         f"{r['seconds_per_frame'] / first:.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--previous", default=PREVIOUS, help="git revision of the previous release")
    p.add_argument("--sets", default="main,generative", help="main, generative or both")
    p.add_argument("--busy", type=int, default=4,
                   help="inputs measured again beside one busy core (0: none)")
    p.add_argument("--lengths", default="32,96,300",
                   help="frame counts of the linearity part ('' to skip)")
    p.add_argument("--threads", type=int,
                   help="a fixed thread count for both versions (default: each chooses)")
    p.add_argument("--quick", action="store_true", help="one clip, 12 frames, 128 px")
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default="speed")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    sets = [s for s in args.sets.split(",") if s]
    inputs = []
    if args.quick:
        clean = load_clip(CLEAN_CLIPS["old_man"], 12, 128)
        inputs = [{"set": "main", "clip": "old_man", "label": "W=3", "clean": clean,
                   "frames": add_synthetic_flicker(clean, window=3, seed=3)}]
        lengths = [12, 24]
    else:
        if "main" in sets:
            inputs += main_inputs(48, 384)
        if "generative" in sets:
            inputs += generative_inputs(32, 320)
        lengths = [int(x) for x in args.lengths.split(",") if x]
    machine = machine_description(0, os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="speed_bench_") as tmp:
        work = Path(tmp)
        versions = {"previous": checkout(args.previous, work / "previous"), "current": ROOT}
        rows = measure(versions, inputs, work, False, log, [], args.threads)
        if args.busy:
            rows += measure(versions, inputs[:args.busy], work, True, log, [], args.threads)
        length_rows = []
        if lengths:
            base = load_clip(CLEAN_CLIPS["bigbuckbunny"], 48, 320) if not args.quick else clean
            for n in lengths:
                clip = add_synthetic_flicker(loop_clip(base, n), window=3, seed=n)
                source = work / f"len_{n}"
                write_clip(source, clip)
                seconds = run_cli(ROOT, source, work / f"len_out_{n}", [], args.threads)
                length_rows.append({"frames": n, "seconds": seconds,
                                    "seconds_per_frame": seconds / n})
                log(f"length {n}: {seconds / n:.3f} s/frame")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join([sys.executable, "-m", "bench.speed_bench", *(argv or sys.argv[1:])]),
              "machine": machine, "previous": args.previous, "threads": args.threads,
              "rows": rows,
              "summary": summarize(rows), "lengths": length_rows, "target_spf": TARGET_SPF}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (out / f"{args.name}.md").write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
