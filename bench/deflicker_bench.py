"""Deflicker benchmark: every method on the same inputs, scored with and without ground truth.

Run from the repository root (see bench/README.md):

    .venv/bin/python -m bench.deflicker_bench            # full: 48 frames, 384 px long side
    .venv/bin/python -m bench.deflicker_bench --quick    # smoke test: 1 clip, 16 frames, 128 px

Writes <out>/<name>.json (every number) and <out>/<name>.md (tables, targets), and prints the
tables and the machine description.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    flicker_index,
    psnr,
    warping_error,
)

from . import baselines
from .datasets import CLEAN_CLIPS, QUICK_CLIP, REAL_CLIPS, WINDOWS, BenchInput, build_inputs

PAPER_ITERATIONS = 10001  # the public configuration's main loop


# -- methods ----------------------------------------------------------------------------------


@dataclass
class MethodOutput:
    """What a method returns: its frames (None: quality not measured), plus time that belongs
    to it but was spent elsewhere, or an estimate that replaces the measured time."""

    frames: torch.Tensor | None
    extra_seconds: float = 0.0
    estimated_seconds: float | None = None
    extra_peak_mb: float = 0.0
    note: str = ""


@dataclass
class Method:
    key: str
    label: str
    run: Callable[[torch.Tensor, dict, argparse.Namespace], MethodOutput]
    once: bool = False  # run on the first synthetic input only (timing-only methods)


def _plain(fn):
    return lambda frames, cache, args: MethodOutput(fn(frames))


def _run_atlas(frames, cache, args):
    from deflicker_impl.atlas import AtlasConfig
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline

    result = run_pipeline(frames, PipelineConfig(stop_after="atlas", atlas=AtlasConfig()))
    cache["atlas_frames"] = result.atlas_frames
    cache["shot_starts"] = result.atlas.shot_starts
    return MethodOutput(result.frames)


def _reused_atlas(frames, cache, args) -> tuple[dict, str]:
    """The atlas row of this same input (the fit is deterministic, so refitting would only burn
    CPU), fitted here when that row did not run: (its time and memory, a note saying which)."""
    atlas_row = cache.get("atlas_row")
    if "atlas_frames" not in cache or atlas_row is None:
        _run_atlas(frames, cache, args)
        return {"seconds": 0.0, "peak_mb": 0.0}, "atlas fitted again"
    return atlas_row, "atlas reused from the atlas row"


def _run_atlas_filter(frames, cache, args):
    """Filter on the atlas fitted by the `atlas` method for this same input; its time and
    memory are added."""
    from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter

    atlas_row, note = _reused_atlas(frames, cache, args)
    config = FilterConfig(weights_path=args.filter_weights)
    out = apply_neural_filter(frames, cache["atlas_frames"], config)
    cache["filter_frames"] = out
    return MethodOutput(out, extra_seconds=atlas_row["seconds"],
                        extra_peak_mb=atlas_row["peak_mb"], note=note)


def _run_refine(frames, cache, args):
    """Local refinement on the output of the `filter` method for this same input; the atlas
    and filter rows' time is added (so s/frame is the full pipeline's)."""
    from deflicker_impl.refine.apply import apply_local_refine

    filter_row = cache.get("filter_row")
    if "filter_frames" not in cache or filter_row is None:
        t0 = time.perf_counter()
        _run_atlas_filter(frames, cache, args)
        filter_row = {"seconds": time.perf_counter() - t0, "peak_mb": 0.0}
        note = "atlas and filter run again"
    else:
        note = "filter output reused from the filter row"
    out = apply_local_refine(cache["filter_frames"], atlas_colour_refine_config(args))
    return MethodOutput(out, extra_seconds=filter_row["seconds"],
                        extra_peak_mb=filter_row["peak_mb"], note=note)


def atlas_colour_refine_config(args):
    """The refinement of the atlas-colour rows (refine, previous): the shipped defaults, with
    `--refine-smooth-nodes` when given."""
    from deflicker_impl.refine.apply import RefineConfig

    return RefineConfig(weights_path=args.refine_weights, smooth_nodes=args.refine_smooth_nodes)


def _run_previous(frames, cache, args):
    """The previous release's full pipeline: the same atlas (reused from the atlas row), its
    filter weights (`--previous-filter-weights`), the refinement; the atlas row's time is
    added."""
    from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter
    from deflicker_impl.refine.apply import apply_local_refine

    atlas_row, note = _reused_atlas(frames, cache, args)
    out = apply_neural_filter(frames, cache["atlas_frames"],
                              FilterConfig(weights_path=args.previous_filter_weights))
    out = apply_local_refine(out, atlas_colour_refine_config(args), out=out)
    return MethodOutput(out, extra_seconds=atlas_row["seconds"],
                        extra_peak_mb=atlas_row["peak_mb"], note=note)


def _run_faithful(frames, cache, args):
    """The full pipeline with faithful colour (PipelineConfig.faithful()) on the same atlas;
    the atlas row's time is added."""
    from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter
    from deflicker_impl.pipeline import PipelineConfig
    from deflicker_impl.refine.apply import RefineConfig, apply_local_refine

    atlas_row, note = _reused_atlas(frames, cache, args)
    cfg = PipelineConfig.faithful(filter=FilterConfig(weights_path=args.filter_weights),
                                  refine=RefineConfig(weights_path=args.refine_weights))
    shots = cache["shot_starts"]
    out = apply_neural_filter(frames, cache["atlas_frames"], cfg.filter, shot_starts=shots)
    out = apply_local_refine(out, cfg.refine, shot_starts=shots, out=out)
    return MethodOutput(out, extra_seconds=atlas_row["seconds"],
                        extra_peak_mb=atlas_row["peak_mb"], note=note)


def _run_paper(frames, cache, args):
    """The `paper` preset, timed on a few iterations and extrapolated to the full run."""
    from deflicker_impl.atlas import AtlasConfig, fit_atlas

    t0 = time.perf_counter()
    atlas = fit_atlas(frames, AtlasConfig(preset="paper", iterations=args.paper_iterations))
    fit_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    shown = min(2, frames.shape[0])
    atlas.render(0, shown)
    render_seconds = (time.perf_counter() - t1) * frames.shape[0] / shown
    per_iteration = atlas.stats["seconds_per_iteration"]
    estimate = fit_seconds + per_iteration * (PAPER_ITERATIONS - args.paper_iterations) \
        + render_seconds
    note = (f"time estimated: {per_iteration:.2f} s/iteration x {PAPER_ITERATIONS} + flow + "
            f"render (measured on {args.paper_iterations} iterations, {shown} frames)")
    return MethodOutput(None, estimated_seconds=estimate, note=note)


def _filter_weights(args) -> Path:
    from deflicker_impl.filter.apply import FilterConfig

    return FilterConfig(weights_path=args.filter_weights).resolved_weights_path()


def _refine_weights(args) -> Path:
    from deflicker_impl.refine.apply import RefineConfig

    return RefineConfig(weights_path=args.refine_weights).resolved_weights_path()


METHODS = {
    m.key: m
    for m in (
        Method("input", "input (no-op)", _plain(lambda f: f)),
        Method("ffmpeg", "ffmpeg deflicker", _plain(baselines.ffmpeg_deflicker)),
        Method("median7", "match median7", _plain(baselines.match_to_sliding_median)),
        Method("clipmedian", "match clip median", _plain(baselines.match_to_clip_median)),
        Method("atlas", "ours: atlas (fast)", _run_atlas),
        Method("filter", "ours: atlas+filter", _run_atlas_filter),
        Method("refine", "ours: atlas+filter+refine", _run_refine),
        Method("faithful", "ours: faithful colour (opt-in)", _run_faithful),
        Method("previous", "previous release: atlas+filter+refine", _run_previous),
        Method("paper", "ours: atlas (paper)", _run_paper, once=True),
    )
}


# -- measuring ---------------------------------------------------------------------------------


class PeakMemory:
    """Peak RSS increase of this process while the block runs, sampled every `interval` s by a
    background thread (psutil). Freed heap is handed back to the OS first (malloc_trim), so the
    baseline is what is really held, not what earlier methods left in the allocator."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self.base_bytes = 0  # the RSS when the block started

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self):
        gc.collect()
        _malloc_trim()
        self.base_bytes = self._peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_mb = (self._peak - self.base_bytes) / 2**20


def _malloc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def machine_description(threads: int, load: tuple[float, float, float]) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__,
        "torch_threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in load],
    }


def score(inp: BenchInput, out: MethodOutput, reference, ewarp_in: float) -> dict:
    if out.frames is None:
        return {"psnr": None, "ewarp": None, "ewarp_ratio": None, "flicker_index": None}
    frames = out.frames
    if frames.shape != inp.frames.shape:
        raise RuntimeError(f"method changed the clip's shape {tuple(inp.frames.shape)} -> "
                           f"{tuple(frames.shape)}")
    ewarp = warping_error(frames, reference)
    return {
        "psnr": psnr(frames, inp.clean) if inp.clean is not None else None,
        "ewarp": ewarp,
        "ewarp_ratio": ewarp / ewarp_in if ewarp_in > 0 else None,
        "flicker_index": flicker_index(frames),
    }


def run_benchmark(inputs: list[BenchInput], methods: list[Method], args, log=print) -> tuple:
    """Run every method on every input -> (rows, kept frames for the picture sheets)."""
    rows, sheets = [], {}
    paper_done = False
    for n, inp in enumerate(inputs, 1):
        t, h, w, _ = inp.frames.shape
        reference = compute_warp_reference(inp.flow_source)  # once per input, for all methods
        ewarp_in = warping_error(inp.frames, reference)
        cache: dict = {}
        for method in methods:
            if method.once and (paper_done or inp.kind != "synthetic"):
                continue
            torch.manual_seed(0)
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                out = method.run(inp.frames, cache, args)
                wall = time.perf_counter() - t0
            if method.once:
                paper_done = True
            seconds = out.estimated_seconds if out.estimated_seconds is not None \
                else wall + out.extra_seconds
            row = {
                "clip": inp.clip, "kind": inp.kind, "window": inp.window, "seed": inp.seed,
                "method": method.key, "label": method.label, "frames": t, "size": [h, w],
                "seconds": seconds, "seconds_per_frame": seconds / t, "measured_seconds": wall,
                "estimated": out.estimated_seconds is not None,
                "peak_mb": max(mem.peak_mb, out.extra_peak_mb),
                "ewarp_in": ewarp_in, "flicker_index_in": flicker_index(inp.frames),
                "loadavg": round(os.getloadavg()[0], 2), "note": out.note,
                **score(inp, out, reference, ewarp_in),
            }
            if method.key in ("atlas", "filter"):
                cache[f"{method.key}_row"] = row
            rows.append(row)
            log(f"[{n}/{len(inputs)}] {inp.clip} {inp.label:6s} {method.label:22s} "
                f"PSNR {_fmt(row['psnr'], 2)}  Ewarp ratio {_fmt(row['ewarp_ratio'], 3)}  "
                f"{_fmt(row['seconds_per_frame'], 3)} s/frame  {row['peak_mb']:.0f} MB  "
                f"(load {row['loadavg']})")
            if out.frames is not None and (inp.kind == "real" or inp.window == 1):
                picks = _sheet_frames(t)
                sheet = sheets.setdefault((inp.clip, inp.label), {"picks": picks})
                if inp.kind == "synthetic":
                    sheet["clean"] = inp.clean[picks]
                sheet[method.key] = out.frames[sheet["picks"]]
            del out
    return rows, sheets


# -- report ------------------------------------------------------------------------------------


def _fmt(value, digits: int, estimated: bool = False) -> str:
    if value is None:
        return "n/a"
    return ("~" if estimated else "") + f"{value:.{digits}f}"


def mean_of(values):
    """Mean of the values that are not None (None when there are none)."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(rows: list[dict], methods: list[Method]) -> dict:
    summary = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m.key]
        if not mine:
            continue
        syn = [r for r in mine if r["kind"] == "synthetic"]
        clean = [r for r in mine if r["kind"] == "clean"]
        real = [r for r in mine if r["kind"] == "real"]
        summary[m.key] = {
            "label": m.label,
            "synthetic_psnr": mean_of(r["psnr"] for r in syn),
            "synthetic_ewarp_ratio": mean_of(r["ewarp_ratio"] for r in syn),
            "clean_psnr": mean_of(r["psnr"] for r in clean),
            "clean_psnr_min": min((r["psnr"] for r in clean if r["psnr"] is not None),
                                  default=None),
            "real_flicker_index": mean_of(r["flicker_index"] for r in real),
            "real_ewarp_ratio": mean_of(r["ewarp_ratio"] for r in real),
            "seconds_per_frame": mean_of(r["seconds_per_frame"] for r in syn or mine),
            "estimated": any(r["estimated"] for r in mine),
            "peak_mb": max(r["peak_mb"] for r in mine),
        }
    return summary


def stage_breakdown(summary: dict) -> dict[str, float]:
    """s/frame of each pipeline stage, from the cumulative atlas / filter / refine rows."""
    stages, before = {}, 0.0
    for key in ("atlas", "filter", "refine"):
        row = summary.get(key)
        if row is None or row["seconds_per_frame"] is None:
            break
        stages[key] = row["seconds_per_frame"] - before
        before = row["seconds_per_frame"]
    return stages


def check_targets(rows: list[dict], summary: dict) -> list[tuple[str, bool]]:
    """The issues' targets, as (description, passed) pairs."""
    checks = []
    atlas, ffmpeg = summary.get("atlas"), summary.get("ffmpeg")
    if atlas and atlas["synthetic_psnr"] is not None:
        checks.append(((f"atlas: synthetic E_warp ratio {atlas['synthetic_ewarp_ratio']:.3f} "
                       "<= 0.45"), atlas["synthetic_ewarp_ratio"] <= 0.45))
        if ffmpeg:
            checks.append(((f"atlas: synthetic PSNR {atlas['synthetic_psnr']:.2f} dB >= ffmpeg "
                           f"{ffmpeg['synthetic_psnr']:.2f} dB"),
                           atlas["synthetic_psnr"] >= ffmpeg["synthetic_psnr"]))
        checks.append((f"atlas: fit + render {atlas['seconds_per_frame']:.3f} s/frame <= 1.0",
                       atlas["seconds_per_frame"] <= 1.0))
    filt = summary.get("filter")
    if filt and filt["synthetic_psnr"] is not None:
        checks.append((f"atlas+filter: synthetic PSNR {filt['synthetic_psnr']:.2f} dB >= 27",
                       filt["synthetic_psnr"] >= 27.0))
        by_input = {(r["clip"], r["window"]): r for r in rows
                    if r["method"] == "atlas" and r["kind"] == "synthetic"}
        wins = [r["psnr"] > by_input[(r["clip"], r["window"])]["psnr"] for r in rows
                if r["method"] == "filter" and r["kind"] == "synthetic"
                and (r["clip"], r["window"]) in by_input]
        if wins:
            checks.append(((f"atlas+filter: PSNR above atlas-only on {sum(wins)}/{len(wins)} "
                           "synthetic inputs"), all(wins)))
        checks.append(((f"atlas+filter: synthetic E_warp ratio {filt['synthetic_ewarp_ratio']:.3f}"
                       " <= 0.5"), filt["synthetic_ewarp_ratio"] <= 0.5))
        if filt["clean_psnr_min"] is not None:
            checks.append(((f"atlas+filter: clean clips >= 35 dB to themselves (worst "
                           f"{filt['clean_psnr_min']:.2f} dB)"), filt["clean_psnr_min"] >= 35.0))
        ff = {r["clip"]: r["flicker_index"] for r in rows
              if r["method"] == "ffmpeg" and r["kind"] == "real"}
        below = [r["flicker_index"] < ff[r["clip"]] for r in rows
                 if r["method"] == "filter" and r["kind"] == "real" and r["clip"] in ff]
        if below:
            checks.append(((f"atlas+filter: real flicker index below ffmpeg's on "
                           f"{sum(below)}/{len(below)} clips"), all(below)))
    checks.extend(_refine_targets(rows, summary))
    return checks


def _refine_targets(rows: list[dict], summary: dict) -> list[tuple[str, bool]]:
    """Issue 4: the full pipeline against filter-only, in the same run."""
    ref, filt = summary.get("refine"), summary.get("filter")
    if not ref or ref["synthetic_psnr"] is None:
        return []
    checks = [
        (f"full pipeline: synthetic E_warp ratio {ref['synthetic_ewarp_ratio']:.3f} <= 0.40",
         ref["synthetic_ewarp_ratio"] <= 0.40),
        (f"full pipeline: synthetic PSNR {ref['synthetic_psnr']:.2f} dB >= 27",
         ref["synthetic_psnr"] >= 27.0),
        (f"full pipeline: {ref['seconds_per_frame']:.3f} s/frame <= 1.5 ("
         + ", ".join(f"{k} {v:.3f}" for k, v in stage_breakdown(summary).items()) + ")",
         ref["seconds_per_frame"] <= 1.5),
    ]
    if filt and filt["synthetic_psnr"] is not None:
        checks.append(((f"full pipeline: synthetic E_warp ratio {ref['synthetic_ewarp_ratio']:.3f}"
                        f" below filter-only {filt['synthetic_ewarp_ratio']:.3f}"),
                       ref["synthetic_ewarp_ratio"] < filt["synthetic_ewarp_ratio"]))
        checks.append(((f"full pipeline: synthetic PSNR {ref['synthetic_psnr']:.2f} dB within "
                        f"0.2 dB of filter-only {filt['synthetic_psnr']:.2f} dB"),
                       ref["synthetic_psnr"] >= filt["synthetic_psnr"] - 0.2))
        if ref["real_ewarp_ratio"] is not None and filt["real_ewarp_ratio"] is not None:
            checks.append(((f"full pipeline: real E_warp ratio {ref['real_ewarp_ratio']:.3f} "
                            f"below filter-only {filt['real_ewarp_ratio']:.3f}"),
                           ref["real_ewarp_ratio"] < filt["real_ewarp_ratio"]))
            checks.append(((f"full pipeline: real flicker index {ref['real_flicker_index']:.3f} "
                            f"below filter-only {filt['real_flicker_index']:.3f}"),
                           ref["real_flicker_index"] < filt["real_flicker_index"]))
    return checks


def markdown_report(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        f"# Deflicker benchmark: {result['name']}",
        "",
        f"`{result['command']}`  ",
        f"{result['started']}, wall time {result['wall_seconds'] / 60:.1f} min  ",
        (f"{s['frames']} frames, long side {s['long_side']} px, W = "
        f"{', '.join(map(str, s['windows']))}; clips: {', '.join(s['clips'])}; real: "
        f"{', '.join(s['real']) or 'none'}  "),
        (f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, torch {m['torch']}, "
        f"{m['torch_threads']} threads, load average at start {m['loadavg_start']}"),
        "",
        "## Summary (means over inputs)",
        "",
        ("| method | synthetic PSNR (dB) | synthetic E_warp ratio | clean PSNR to itself (dB) "
        "| real flicker index | real E_warp ratio | s/frame | peak MB |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in result["summary"].values():
        lines.append(
            f"| {v['label']} | {_fmt(v['synthetic_psnr'], 2)} | "
            f"{_fmt(v['synthetic_ewarp_ratio'], 3)} | {_fmt(v['clean_psnr'], 2)} | "
            f"{_fmt(v['real_flicker_index'], 2)} | {_fmt(v['real_ewarp_ratio'], 3)} | "
            f"{_fmt(v['seconds_per_frame'], 3, v['estimated'])} | {v['peak_mb']:.0f} |"
        )
    if result.get("paper_speed_ratio"):
        lines += ["", (f"`paper` preset / fast preset time: {result['paper_speed_ratio']:.0f}x "
                  "(same input; paper time extrapolated, its quality not measured).")]
    stages = stage_breakdown(result["summary"])
    if stages:
        lines += ["", "Time per stage of the full pipeline (s/frame, means over the synthetic "
                  "inputs): " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
                  + f"; total {sum(stages.values()):.3f}."]
    lines += ["", "## Targets", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in result["targets"]] \
        or ["(none: no atlas row in this run)"]
    lines += ["", "## Every input", "",
              ("| clip | input | method | PSNR (dB) | E_warp ratio | flicker index | s/frame "
              "| peak MB |"), "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        label = f"W={r['window']}" if r["kind"] == "synthetic" else r["kind"]
        lines.append(
            f"| {r['clip']} | {label} | {r['label']} | {_fmt(r['psnr'], 2)} | "
            f"{_fmt(r['ewarp_ratio'], 3)} | {_fmt(r['flicker_index'], 2)} | "
            f"{_fmt(r['seconds_per_frame'], 3, r['estimated'])} | {r['peak_mb']:.0f} |"
        )
    lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def _sheet_frames(num_frames: int) -> list[int]:
    return sorted({0, num_frames // 2, num_frames - 1})


def save_sheets(sheets: dict, folder: Path, methods: list[Method]) -> list[Path]:
    """One PNG per clip: rows = frames (first, middle, last), columns = methods."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (clip, label), outputs in sheets.items():
        picks = outputs["picks"]
        cols = [(m.key, outputs[m.key]) for m in methods if m.key in outputs]
        if "clean" in outputs:
            cols.insert(0, ("clean", outputs["clean"]))
        h, w = cols[0][1].shape[1:3]
        sheet = Image.new("RGB", (w * len(cols), (h + 16) * len(picks)), "white")
        draw = ImageDraw.Draw(sheet)
        for c, (name, frames) in enumerate(cols):
            for r, frame in enumerate(frames):
                img = (frame.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
                sheet.paste(Image.fromarray(img), (c * w, r * (h + 16) + 16))
                draw.text((c * w + 4, r * (h + 16) + 2), f"{name} #{picks[r]}", fill="black")
        path = folder / f"{clip}_{label.replace('=', '')}.png"
        sheet.save(path)
        paths.append(path)
    return paths


# -- command line ------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.deflicker_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: clip {QUICK_CLIP} only, 16 frames, 128 px, no real clips")
    p.add_argument("--frames", type=int, help="first N frames of every clip (default 48)")
    p.add_argument("--long-side", type=int, help="resize so the long side is this (default 384)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all; "
                        "previous only with --previous-filter-weights)")
    p.add_argument("--clips", help=f"comma-separated subset of {','.join(CLEAN_CLIPS)}")
    p.add_argument("--real", help=f"comma-separated subset of {','.join(REAL_CLIPS)}, or 'none'")
    p.add_argument("--windows", default=",".join(map(str, WINDOWS)),
                   help="flicker windows W (frames sharing one flicker pattern)")
    p.add_argument("--paper-iterations", type=int,
                   help="iterations the paper preset is timed on, its time is extrapolated "
                   "(default 10; --quick: 2)")
    p.add_argument("--filter-weights",
                   help="neural filter weights for the filter method (default: the shipped file)")
    p.add_argument("--previous-filter-weights", metavar="FILE",
                   help="the previous release's filter weights, for the previous method (e.g. "
                        "from `git show REV:weights/neural_filter.safetensors > FILE`)")
    p.add_argument("--refine-weights",
                   help="local refinement weights for the refine method (default: shipped file)")
    p.add_argument("--refine-smooth-nodes", type=int, default=0, metavar="N",
                   help="the refinement's smooth_nodes in the refine and previous rows (default "
                        "0: the per-pixel change; the faithful row keeps "
                        "PipelineConfig.faithful()'s)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch threads (default: number of cores)")
    p.add_argument("--out", default="bench/results", help="folder for the reports")
    p.add_argument("--name", help="report name (default: quick or full)")
    p.add_argument("--no-sheets", action="store_true", help="do not write picture sheets")
    args = p.parse_args(argv)
    args.frames = args.frames or (16 if args.quick else 48)
    args.long_side = args.long_side or (128 if args.quick else 384)
    args.name = args.name or ("quick" if args.quick else "full")
    args.paper_iterations = args.paper_iterations or (2 if args.quick else 10)
    default_clips = QUICK_CLIP if args.quick else ",".join(CLEAN_CLIPS)
    args.clips = _choose(args.clips or default_clips, CLEAN_CLIPS, "--clips")
    real = args.real or ("none" if args.quick else ",".join(REAL_CLIPS))
    args.real = [] if real == "none" else _choose(real, REAL_CLIPS, "--real")
    if args.methods is None:
        args.methods = ",".join(k for k in METHODS
                                if k != "previous" or args.previous_filter_weights)
    args.methods = _choose(args.methods, METHODS, "--methods")
    args.windows = [int(w) for w in args.windows.split(",") if w]
    return args


def _choose(text: str, known: dict, option: str) -> list[str]:
    chosen = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise SystemExit(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return chosen


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    started_at = datetime.datetime.now().isoformat(timespec="seconds")
    notes = [
        "PSNR: vs the clean clip (synthetic), vs itself (clean: do no harm); n/a on real clips.",
        ("E_warp ratio: warping error of the output / of the input; flow and occlusion from the "
        "clean clip (synthetic, clean) or from the input (real), computed once per input."),
        "flicker index: mean |Y_t - median5(Y)_t| of per-frame mean luma, 8-bit levels.",
        ("s/frame: wall time of the method / frames (atlas: flow + fit + render; atlas+filter: "
        "that plus the filter; +refine: that plus the refinement). peak MB: peak RSS increase while the method runs, sampled every "
        "10 ms by a background thread (psutil), after returning freed heap to the OS."),
        "Means over the synthetic set; s/frame over synthetic inputs; '~' = extrapolated.",
    ]
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        print("WARNING: the machine is busy (load > 0.5); timings will be pessimistic.")
        notes.append(f"Machine busy at start (load {load[0]:.2f}); timings are pessimistic.")

    methods = [METHODS[k] for k in args.methods]
    if "filter" in args.methods and not _filter_weights(args).is_file():
        notes.append(f"atlas+filter skipped: {_filter_weights(args)} not found.")
        print(f"note: {notes[-1]}")
        methods = [m for m in methods if m.key not in ("filter", "refine")]
    if "refine" in args.methods and not _refine_weights(args).is_file():
        notes.append(f"atlas+filter+refine skipped: {_refine_weights(args)} not found.")
        print(f"note: {notes[-1]}")
        methods = [m for m in methods if m.key != "refine"]
    if "paper" in args.methods:
        notes.append(f"paper preset timed on {args.paper_iterations} iterations of the first "
                     f"synthetic input and extrapolated to {PAPER_ITERATIONS}; quality n/a.")

    inputs = build_inputs(args.clips, args.real, args.frames, args.long_side, args.windows)
    if not inputs:
        raise SystemExit("No input clip found; see bench/README.md for where the clips live.")
    machine = machine_description(args.threads, load)
    rows, sheets = run_benchmark(inputs, methods, args)
    summary = summarize(rows, methods)
    ratio = _paper_speed_ratio(rows)
    result = {
        "name": args.name,
        "command": " ".join(shlex.quote(a) for a in [
            ".venv/bin/python", "-m", "bench.deflicker_bench", *(argv or sys.argv[1:])]),
        "started": started_at,
        "wall_seconds": time.perf_counter() - started,
        "machine": machine | {"loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"frames": args.frames, "long_side": args.long_side,
                     "windows": args.windows, "clips": args.clips, "real": args.real,
                     "methods": [m.key for m in methods],
                     "paper_iterations": args.paper_iterations},
        "rows": rows, "summary": summary, "paper_speed_ratio": ratio,
        "targets": check_targets(rows, summary), "notes": notes,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_sheets and sheets:
        paths = save_sheets(sheets, out / f"{args.name}_frames", methods)
        notes.append(f"Frames side by side: {', '.join(str(p) for p in paths)}")
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    report = markdown_report(result)
    (out / f"{args.name}.md").write_text(report)
    print(report)
    print(json.dumps(machine, indent=1))
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")
    return result


def _paper_speed_ratio(rows: list[dict]) -> float | None:
    paper = next((r for r in rows if r["method"] == "paper"), None)
    if paper is None:
        return None
    fast = next((r for r in rows if r["method"] == "atlas" and r["clip"] == paper["clip"]
                 and r["window"] == paper["window"] and r["kind"] == paper["kind"]), None)
    return paper["seconds"] / fast["seconds"] if fast else None


if __name__ == "__main__":
    main()
