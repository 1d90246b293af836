"""Where the time goes: per stage of a CLI run and inside the atlas fit.

    python -m bench.profile_pipeline                       # the four cases of bench/README.md
    python -m bench.profile_pipeline --frames 32,96,300 --size 320 --threads 2
    python -m bench.profile_pipeline --cases 81@832x480 --json bench/results/profile.json

A case is FRAMES@SIZE: SIZE is a long side in pixels (the source's aspect ratio kept) or WxH.
Each case takes the first frames of a clean clip (looped back and forth when it is shorter),
adds seeded synthetic flicker, writes it as an mp4 and then times what the `deflicker`
command does with it: its start (a fresh interpreter importing the pack, measured apart),
decoding, loading the networks, the pipeline's stages and atlas phases (the library's
`timing.phase` marks, see deflicker_impl/timing.py) and encoding the output. Times are wall
clock: measure on a quiet machine (the load average is printed with each case).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.datasets import CLEAN_CLIPS, load_clip
from deflicker_impl.clip import to_nchw, to_nhwc
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.timing import recording

DEFAULT_CASES = "32@320,96@320,300@320,81@832x480"
ROOT = Path(__file__).resolve().parents[1]


def parse_case(text: str) -> tuple[int, tuple[int, int] | int]:
    """"81@832x480" -> (81, (480, 832)) as (frames, (h, w)); "32@320" -> (32, 320)."""
    frames, _, size = text.strip().partition("@")
    if "x" in size:
        w, h = size.lower().split("x")
        return int(frames), (int(h), int(w))
    return int(frames), int(size)


def case_clip(source: Path, frames: int, size: tuple[int, int] | int, seed: int = 0
              ) -> torch.Tensor:
    """`frames` flickered frames at `size` (long side or (h, w)) from a clean clip."""
    long_side = size if isinstance(size, int) else max(size)
    clean = load_clip(source, frames, long_side)
    if clean.shape[0] < frames:  # loop back and forth: motion stays continuous
        n = clean.shape[0]
        period = max(1, 2 * n - 2)
        idx = [(i % period) if (i % period) < n else period - (i % period)
               for i in range(frames)]
        clean = clean[idx]
    if not isinstance(size, int) and tuple(clean.shape[1:3]) != size:
        clean = to_nhwc(F.interpolate(to_nchw(clean), size=size, mode="area").clamp(0, 1))
    return add_synthetic_flicker(clean.contiguous(), window=1, seed=seed)


def cli_start_seconds() -> float:
    """Wall time of a fresh interpreter that imports the CLI (torch included) and exits."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import deflicker_impl.cli"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def profile_case(source: Path, frames: int, size, threads: int, work: Path) -> dict:
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline
    from deflicker_impl.preflight import load_stage_networks
    from deflicker_impl.video_io import read_clip, write_clip

    clip = case_clip(source, frames, size)
    t, h, w, _ = clip.shape
    path = write_clip(work / f"in_{t}_{w}x{h}.mp4", clip, 24)
    del clip
    load = os.getloadavg()
    seconds: dict[str, float] = {"start (import)": cli_start_seconds()}
    start = time.perf_counter()
    decoded = read_clip(path).frames
    seconds["decode"] = time.perf_counter() - start
    config = PipelineConfig(in_place=True)
    start = time.perf_counter()
    load_stage_networks(config)
    seconds["weights"] = time.perf_counter() - start
    with recording() as phases:
        start = time.perf_counter()
        result = run_pipeline(decoded, config, threads=threads)
        seconds["pipeline"] = time.perf_counter() - start
    start = time.perf_counter()
    write_clip(work / "out.mp4", result.frames, 24)
    seconds["encode"] = time.perf_counter() - start
    stats = result.atlas.stats
    steps = sum(s.get("iterations", 0) for s in stats["segment_stats"])
    total = sum(seconds.values())
    return {"frames": t, "width": w, "height": h, "threads": threads,
            "loadavg_before": [round(x, 2) for x in load], "loadavg_after":
            [round(x, 2) for x in os.getloadavg()], "seconds": seconds,
            "phases": phases.seconds, "phase_calls": phases.calls,
            "segments": len(stats["segments"]), "optimisation_steps": steps,
            "total_seconds": total, "seconds_per_frame": total / t}


def markdown(case: dict) -> str:
    """One table per case: the CLI's parts, the pipeline's stages and the atlas phases."""
    t, total = case["frames"], case["total_seconds"]
    title = (f"**{t} frames at {case['width']}x{case['height']}**, {case['threads']} "
             f"thread(s): {total:.1f} s = {case['seconds_per_frame']:.3f} s/frame "
             f"({case['segments']} atlas segment(s), {case['optimisation_steps']} optimisation "
             f"steps; load average {case['loadavg_before'][0]:.2f} before, "
             f"{case['loadavg_after'][0]:.2f} after)")
    lines = [title, "", "| part | seconds | share | ms/frame |", "|---|---:|---:|---:|"]

    def row(name: str, value: float, indent: int = 0) -> None:
        lines.append(f"| {'&nbsp;' * 4 * indent}{name} | {value:.2f} | "
                     f"{100 * value / total:.0f}% | {1000 * value / t:.0f} |")

    phases = case["phases"]
    # Phases are recorded as they end (the parts of the atlas fit before the fit itself): list
    # each top-level phase first, then its parts and what they leave unaccounted.
    tops = list(dict.fromkeys(name.split("/")[0] for name in phases))
    for name, value in case["seconds"].items():
        row(name, value)
        if name != "pipeline":
            continue
        for top in tops:
            parts = {k: v for k, v in phases.items() if k.startswith(top + "/")}
            row(top, phases.get(top, 0.0), 1)
            for part, spent in parts.items():
                row(part.split("/", 1)[1], spent, 2)
            if parts:
                row("(rest)", max(0.0, phases.get(top, 0.0) - sum(parts.values())), 2)
        named = sum(phases.get(top, 0.0) for top in tops)
        row("(rest of the pipeline)", max(0.0, value - named), 1)
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.profile_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=None,
                   help=f"comma-separated FRAMES@SIZE (default {DEFAULT_CASES})")
    p.add_argument("--frames", default=None, help="comma-separated frame counts (with --size)")
    p.add_argument("--size", default="320", help="long side or WxH for --frames (default 320)")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenCV threads (default 2)")
    p.add_argument("--clip", default="juggle", choices=sorted(CLEAN_CLIPS),
                   help="clean source clip (default juggle)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.frames:
        cases = [parse_case(f"{n}@{args.size}") for n in args.frames.split(",")]
    else:
        cases = [parse_case(c) for c in (args.cases or DEFAULT_CASES).split(",")]
    source = CLEAN_CLIPS[args.clip]
    results = []
    with tempfile.TemporaryDirectory(prefix="deflicker_profile_") as work:
        for frames, size in cases:
            case = profile_case(source, frames, size, args.threads, Path(work))
            results.append(case)
            print(markdown(case) + "\n", flush=True)
    write_json(args.json, results)
    return results


def write_json(path: str | None, data) -> None:
    """Write `data` as JSON to `path` (its folder created), or nothing when path is None."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
