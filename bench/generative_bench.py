"""Generative-video benchmark: generated clips, where the atlas is most often wrong.

    .venv/bin/python -m bench.generative_bench --split heldout     # the held-out half (report)
    .venv/bin/python -m bench.generative_bench --split dev         # the half used while tuning
    .venv/bin/python -m bench.generative_bench --quick             # one clip, 12 frames, 128 px

Inputs (bench/generative_data.py, 32 frames at 320 px by default), per clip: the clean clip
itself (do no harm: PSNR to itself), seeded synthetic flicker held W = 1, 3, 10 frames, the
scene's own light changes added to the clean clip BEFORE the flicker (W = 3, same seed as the
W = 3 row: a light switched on, +35 % from 40 % of the clip on; a fade, exposure falling
linearly to 55 %) and scored against the clean clip WITH the change, and a sliding-window
generator's chunk seam (+15 red, -13 blue levels from mid-clip on, no flicker) scored against
the clip without it, and a mild flicker (the W = 3 pattern at 0.3x its spreads: a clip that is
nearly right already), with the count of clips a method leaves worse than its input.

Methods on the very same tensors: input, ffmpeg's deflicker, mean/std matched to the clip's
median, the previous release (atlas colour with `--previous-filter-weights`), our pipeline with
atlas colour (the default: `FilterConfig(faithful=False)`, `RefineConfig(flicker_window=0)`) and
with faithful colour (`PipelineConfig.faithful()`: atlas confidence, flicker_window 10). On the seam rows also
faithful with `flicker_window=0` (keep no persistent change), and on the seam and clean rows
the chunk-seam remover then faithful colour (`seams`). The atlas is fitted once per
input and shared by all pipelines (the fit is the same).
Writes <out>/generative_<split>.json and .md with PASS/FAIL lines for the targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import torch

from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    psnr,
    restrict_to_reliable_flow,
    warping_error,
)
from deflicker_impl.evaluation.synthetic import (
    FlickerConfig,
    add_chunk_seam,
    add_light_event,
    add_synthetic_flicker,
)

from . import baselines
from .deflicker_bench import PeakMemory, machine_description, mean_of, save_sheets
from .generative_data import SPLITS, load_generated_clip

WINDOWS = (1, 3, 10)
EVENT_WINDOW = 3
# Mild flicker: the W = 3 pattern at this fraction of every spread. Such a clip is already
# nearly right, so a deflicker must not make it worse than it came in (do no harm).
MILD_AMPLITUDE = 0.3


@dataclass
class GenInput:
    clip: str
    kind: str  # "clean" | "synthetic" | "mild" | "step" | "ramp" | "seam"
    window: int | None
    frames: torch.Tensor
    reference: torch.Tensor  # what the output is scored against

    @property
    def label(self) -> str:
        return f"W={self.window}" if self.kind == "synthetic" else self.kind


def clip_inputs(name: str, clean: torch.Tensor, index: int) -> list[GenInput]:
    seed = 2000 + 100 * index
    rows = [GenInput(name, "clean", None, clean, clean)]
    for w in WINDOWS:
        rows.append(GenInput(name, "synthetic", w,
                             add_synthetic_flicker(clean, window=w, seed=seed + w), clean))
    for kind in ("step", "ramp"):
        lit = add_light_event(clean, kind)
        rows.append(GenInput(name, kind, EVENT_WINDOW, add_synthetic_flicker(
            lit, window=EVENT_WINDOW, seed=seed + EVENT_WINDOW), lit))
    rows.append(GenInput(name, "seam", None, add_chunk_seam(clean), clean))
    full = FlickerConfig()
    mild = replace(full, window=EVENT_WINDOW, seed=seed + EVENT_WINDOW,
                   **{k: getattr(full, k) * MILD_AMPLITUDE
                      for k in ("gain_sigma", "gamma_sigma", "offset_sigma", "local_sigma")})
    rows.append(GenInput(name, "mild", EVENT_WINDOW, add_synthetic_flicker(clean, mild), clean))
    return rows


def seed_index(split: str, name: str) -> int:
    """The index that seeds a clip's flicker: its place in its split (held-out clips from 100
    on), so that a `--clips` subset gets the same inputs as the full run."""
    return list(SPLITS[split]).index(name) + (100 if split == "heldout" else 0)


def seam_residual(frames: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest per-channel step (8-bit levels) between the mean colours of the clip's second
    and first halves that the reference does not have."""
    half = frames.shape[0] // 2

    def step(x):
        return x[half:].mean(dim=(0, 1, 2)) - x[:half].mean(dim=(0, 1, 2))

    return float((step(frames) - step(reference)).abs().max() * 255)


# -- methods -----------------------------------------------------------------------------------


# The previous release's faithful colour took the frame-wide persistent level from the running
# median alone (no straight pieces) ...
PREVIOUS_FAITHFUL = {"light_pieces": 0}
# ... the one before it also applied every kept correction as measured, however small (no
# noise floor) ...
BEFORE_NOISE_FLOOR = {**PREVIOUS_FAITHFUL, "noise_floor": 0.0}
# ... and the one before that also added the filter's per-pixel detail back in full from a kept
# correction of 0.03 on, without a limit (1.0: any difference in 0..1).
BEFORE_DETAIL_LIMIT = {**BEFORE_NOISE_FLOOR, "detail_gate": 0.03, "detail_limit": 1.0}


def _pipelines(frames: torch.Tensor, cache: dict, variant: str, args) -> torch.Tensor:
    from deflicker_impl.atlas import AtlasConfig, fit_clip_atlas, render_atlas_frames
    from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter
    from deflicker_impl.flicker_field import FlickerFieldConfig
    from deflicker_impl.pipeline import PipelineConfig
    from deflicker_impl.refine.apply import RefineConfig, apply_local_refine

    if "atlas" not in cache:
        t0 = time.perf_counter()
        atlas = fit_clip_atlas(frames, AtlasConfig())
        cache["atlas"] = (atlas, render_atlas_frames(atlas, dtype=torch.uint8))
        cache["atlas_seconds"] = time.perf_counter() - t0
    atlas, atlas_frames = cache["atlas"]
    if variant in ("previous", "default"):
        weights = args.previous_filter_weights if variant == "previous" else args.filter_weights
        fcfg = FilterConfig(weights_path=weights, faithful=False)
        rcfg = RefineConfig(flicker_window=0)
    else:
        window = 0 if variant == "keep_none" else FlickerFieldConfig().flicker_window
        faithful = PipelineConfig.faithful(
            flicker_window=window, filter=FilterConfig(weights_path=args.filter_weights))
        fcfg, rcfg = faithful.filter, faithful.refine
        if variant == "faithful_previous":
            fcfg = replace(fcfg, flicker=replace(fcfg.flicker, **PREVIOUS_FAITHFUL))
        if args.faithful_smooth_nodes is not None:
            rcfg = replace(rcfg, smooth_nodes=args.faithful_smooth_nodes)
    out = apply_neural_filter(frames, atlas_frames, fcfg, shot_starts=atlas.shot_starts)
    return apply_local_refine(out, rcfg, shot_starts=atlas.shot_starts, out=out)


def _seams_then_faithful(frames: torch.Tensor, cache: dict, args) -> torch.Tensor:
    """Chunk seams removed first (`SeamConfig(enabled=True)`), then faithful colour with its
    default window: the README's recipe for a generator's chunk seams."""
    from deflicker_impl.seams import SeamConfig, remove_chunk_seams

    cleaned, found = remove_chunk_seams(frames, SeamConfig(enabled=True))
    cache["seams_found"] = len(found)
    # Frames that changed get their own fit; unchanged ones share the input's.
    return _pipelines(cleaned, cache if not found else {}, "ours", args)


METHODS = {
    "input": ("input (no-op)", lambda f, c, a: f),
    "ffmpeg": ("ffmpeg deflicker", lambda f, c, a: baselines.ffmpeg_deflicker(f)),
    "clipmedian": ("match clip median", lambda f, c, a: baselines.match_to_clip_median(f)),
    "previous": ("previous release (atlas colour, --previous-filter-weights)",
                 lambda f, c, a: _pipelines(f, c, "previous", a)),
    "default": ("atlas colour (default)", lambda f, c, a: _pipelines(f, c, "default", a)),
    "ours": ("faithful colour", lambda f, c, a: _pipelines(f, c, "ours", a)),
    "faithful_previous": ("faithful colour, previous release (running median alone)",
                          lambda f, c, a: _pipelines(f, c, "faithful_previous", a)),
    "keep_none": ("faithful, flicker_window=0", lambda f, c, a: _pipelines(f, c, "keep_none", a)),
    "seams": ("chunk seams removed, then faithful", _seams_then_faithful),
}
PIPELINES = ("previous", "default", "ours", "faithful_previous", "keep_none", "seams")
# Methods that only run on some kinds of input (the seam tools: on the seam rows, and the seam
# remover also on the clean clips, where it must find nothing).
ONLY_ON = {"keep_none": ("seam",), "seams": ("seam", "clean")}


def run(inputs: list[GenInput], methods: list[str], args, log=print):
    rows, sheets = [], {}
    for n, inp in enumerate(inputs, 1):
        reference = compute_warp_reference(inp.reference)
        ewarp_in = warping_error(inp.frames, reference)
        # On generated motion the flow is often consistent but wrong, and there a result that
        # washes the moving content out scores below the clean clip itself; the flow-reliable
        # pixels (and the clean clip's own ratio, the floor of a faithful result) show that.
        reliable = restrict_to_reliable_flow(reference, inp.reference)
        reliable_in = warping_error(inp.frames, reliable)
        floor = warping_error(inp.reference, reference) / ewarp_in if ewarp_in > 0 else None
        cache: dict = {}
        for key in methods:
            if key in ONLY_ON and inp.kind not in ONLY_ON[key]:
                continue
            torch.manual_seed(0)
            shared_fit = "atlas" in cache
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                out = METHODS[key][1](inp.frames, cache, args)
                wall = time.perf_counter() - t0
            if key in PIPELINES and shared_fit:
                wall += cache["atlas_seconds"]  # the shared fit counts for every pipeline
            ewarp = warping_error(out, reference)
            row = {"clip": inp.clip, "kind": inp.kind, "window": inp.window,
                   "label": inp.label, "method": key, "psnr": psnr(out, inp.reference),
                   "ewarp_ratio": ewarp / ewarp_in if ewarp_in > 0 else None,
                   "ewarp_ratio_reliable": (warping_error(out, reliable) / reliable_in
                                            if reliable_in > 0 else None),
                   "clean_ewarp_ratio": floor,
                   "seconds_per_frame": wall / inp.frames.shape[0],
                   "peak_mb": mem.peak_mb, "loadavg": round(os.getloadavg()[0], 2)}
            if inp.kind == "seam":
                row["seam_levels"] = seam_residual(out, inp.reference)
            if key == "seams":
                row["seams_found"] = cache.pop("seams_found")
            if inp.kind == "mild":
                row["input_psnr"] = psnr(inp.frames, inp.reference)
            rows.append(row)
            log(f"[{n}/{len(inputs)}] {inp.clip:18s} {inp.label:6s} {key:10s} PSNR "
                f"{row['psnr']:6.2f}  Ewarp ratio {row['ewarp_ratio'] or 0:.3f}  "
                f"{row['seconds_per_frame']:.3f} s/frame"
                + (f"  seam {row['seam_levels']:.1f} levels" if "seam_levels" in row else ""))
            if inp.kind in ("synthetic", "clean") and inp.window in (None, 3):
                t = inp.frames.shape[0]
                picks = [0, t // 2, t - 1]
                sheet = sheets.setdefault((inp.clip, inp.label), {"picks": picks})
                sheet[key] = out[picks]
    return rows, sheets


# -- summary and targets -----------------------------------------------------------------------


def summarize(rows: list[dict], methods: list[str]) -> dict:
    out = {}
    for key in methods:
        mine = [r for r in rows if r["method"] == key]
        if not mine:
            continue
        syn = [r for r in mine if r["kind"] == "synthetic"]
        clean = [r for r in mine if r["kind"] == "clean"]
        out[key] = {
            "label": METHODS[key][0],
            "synthetic_psnr": mean_of(r["psnr"] for r in syn),
            "synthetic_ewarp_ratio": mean_of(r["ewarp_ratio"] for r in syn),
            "synthetic_ewarp_ratio_reliable": mean_of(r["ewarp_ratio_reliable"] for r in syn),
            "synthetic_clean_ewarp_ratio": mean_of(r["clean_ewarp_ratio"] for r in syn),
            "clean_psnr": mean_of(r["psnr"] for r in clean),
            "clean_psnr_min": min((r["psnr"] for r in clean), default=None),
            "step_psnr": mean_of(r["psnr"] for r in mine if r["kind"] == "step"),
            "ramp_psnr": mean_of(r["psnr"] for r in mine if r["kind"] == "ramp"),
            "w3_psnr": mean_of(r["psnr"] for r in syn if r["window"] == EVENT_WINDOW),
            "seam_levels": mean_of(r.get("seam_levels") for r in mine if r["kind"] == "seam"),
            "mild_psnr": mean_of(r["psnr"] for r in mine if r["kind"] == "mild"),
            "mild_worse_than_input": sum(r["psnr"] < r["input_psnr"] for r in mine
                                         if r["kind"] == "mild"),
            "mild_clips": sum(r["kind"] == "mild" for r in mine),
            "seconds_per_frame": mean_of(r["seconds_per_frame"] for r in syn),
        }
    return out


def check_targets(rows: list[dict], summary: dict) -> list[tuple[str, bool]]:
    ours, base = summary.get("ours"), summary.get("clipmedian")
    if not ours:
        return []
    checks = []
    if base:
        by = {(r["clip"], r["window"]): r["psnr"] for r in rows
              if r["method"] == "clipmedian" and r["kind"] == "synthetic"}
        mine = [(r["psnr"], by[(r["clip"], r["window"])]) for r in rows
                if r["method"] == "ours" and r["kind"] == "synthetic"
                and (r["clip"], r["window"]) in by]
        wins = sum(a > b for a, b in mine)
        gain = mean_of(a - b for a, b in mine)
        checks.append((f"ours above clip-median match on {wins}/{len(mine)} synthetic inputs",
                       wins == len(mine)))
        checks.append((f"ours {gain:+.2f} dB over clip-median match on average (>= +3)",
                       gain is not None and gain >= 3.0))
    checks.append((f"ours synthetic E_warp ratio {ours['synthetic_ewarp_ratio']:.3f} <= 0.30",
                   ours["synthetic_ewarp_ratio"] <= 0.30))
    checks.append(((f"ours: every clean clip >= 38 dB to itself (worst "
                   f"{ours['clean_psnr_min']:.2f})"), ours["clean_psnr_min"] >= 38.0))
    for kind in ("step", "ramp"):
        value = ours[f"{kind}_psnr"]
        checks.append(((f"ours: {kind} {value:.2f} dB within 2 dB of the same clips without it "
                       f"({ours['w3_psnr']:.2f})"), value >= ours["w3_psnr"] - 2.0))
    keep_none = summary.get("keep_none")
    if keep_none and keep_none["seam_levels"] is not None:
        checks.append(((f"flicker_window=0: chunk seam left {keep_none['seam_levels']:.1f} "
                       "levels (<= 2)"), keep_none["seam_levels"] <= 2.0))
    seams = summary.get("seams")
    if seams and seams["seam_levels"] is not None:
        checks.append(((f"chunk seams removed: seam left {seams['seam_levels']:.1f} levels "
                        "(<= 2)"), seams["seam_levels"] <= 2.0))
    return checks


def markdown(result: dict) -> str:
    s, m = result["settings"], result["machine"]
    lines = [f"# Generative benchmark: {result['name']}", "", f"`{result['command']}`  ",
             f"{result['started']}, wall time {result['wall_seconds'] / 60:.1f} min  ",
             (f"split {s['split']}: {', '.join(s['clips'])}; {s['frames']} frames, long side "
             f"{s['long_side']} px  "),
             (f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch_threads']} "
             f"threads, load average at start {m['loadavg_start']}"), "",
             ("| method | synthetic PSNR | synthetic E_warp ratio | E_warp ratio, reliable flow | "
             "clean PSNR (worst) | step | "
             f"ramp | W=3 (no event) | seam levels | mild {MILD_AMPLITUDE}x (clips worse than "
             "input) | s/frame |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def f(v, d=2):
        return "n/a" if v is None else f"{v:.{d}f}"

    for key, row in result["summary"].items():
        lines.append(f"| {row['label']} | {f(row['synthetic_psnr'])} | "
                     f"{f(row['synthetic_ewarp_ratio'], 3)} | "
                     f"{f(row['synthetic_ewarp_ratio_reliable'], 3)} | {f(row['clean_psnr'])} "
                     f"({f(row['clean_psnr_min'])}) | {f(row['step_psnr'])} | "
                     f"{f(row['ramp_psnr'])} | {f(row['w3_psnr'])} | {f(row['seam_levels'], 1)} | "
                     f"{f(row['mild_psnr'])} ({row['mild_worse_than_input']}/"
                     f"{row['mild_clips']}) | {f(row['seconds_per_frame'], 3)} |")
    floor = next((row["synthetic_clean_ewarp_ratio"] for row in result["summary"].values()
                  if row.get("synthetic_clean_ewarp_ratio") is not None), None)
    if floor is not None:
        lines += ["", (f"The clean clips themselves score a synthetic E_warp ratio of "
                       f"{floor:.3f} against the same flickered inputs: about the lowest that "
                       "a result keeping every frame's own content can reach; below it, moving "
                       "content is being washed out. The reliable-flow column counts only the "
                       "pixels where the clean clip's flow explains the clean clip "
                       "(`metrics.restrict_to_reliable_flow`).")]
    lines += ["", "Per clip (PSNR, dB; E_warp ratio in brackets):", "",
              "| clip | input | method | clean | W=1 | W=3 | W=10 | step | ramp | seam | mild |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for clip in s["clips"]:
        for key in result["summary"]:
            cells = []
            for label in ("clean", "W=1", "W=3", "W=10", "step", "ramp", "seam", "mild"):
                row = next((r for r in result["rows"] if r["clip"] == clip
                            and r["method"] == key and r["label"] == label), None)
                cells.append("" if row is None else
                             f"{row['psnr']:.2f} ({row['ewarp_ratio'] or 0:.2f})")
            lines.append(f"| {clip} | | {key} | " + " | ".join(cells) + " |")
    lines += ["", "Targets:", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in result["targets"]]
    return "\n".join(lines) + "\n"


def chosen_clips(split: str, clips: str | None) -> list[str]:
    """The clips of `--clips` (comma-separated; None: the whole split), or a one-line exit."""
    names = SPLITS[split]
    chosen = [c for c in (clips.split(",") if clips else names) if c]
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise SystemExit(f"--clips: unknown {', '.join(unknown)}; choose from {', '.join(names)}")
    return chosen


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.generative_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    p.add_argument("--clips", help="comma-separated subset of the split's clips")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--long-side", type=int, default=320)
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all; "
                        "previous only with --previous-filter-weights)")
    p.add_argument("--quick", action="store_true", help="first clip only, 12 frames, 128 px")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name")
    p.add_argument("--sheets", help="folder for picture sheets (W=3 and clean rows)")
    p.add_argument("--filter-weights", metavar="FILE",
                   help="neural filter weights of our pipelines (default: the shipped file)")
    p.add_argument("--previous-filter-weights", metavar="FILE",
                   help="the previous release's filter weights, for `previous` (e.g. from "
                        "`git show REV:weights/neural_filter.safetensors > FILE`; default: the "
                        "shipped file)")
    p.add_argument("--faithful-smooth-nodes", type=int, metavar="N",
                   help="the refinement's smooth_nodes in the faithful rows (default: "
                        "PipelineConfig.faithful()'s; 0 is the per-pixel change of an earlier "
                        "release)")
    args = p.parse_args(argv)
    args.clips = chosen_clips(args.split, args.clips)
    if args.quick:
        args.clips, args.frames, args.long_side = args.clips[:1], 12, 128
    if args.methods is None:
        args.methods = ",".join(k for k in METHODS
                                if k != "previous" or args.previous_filter_weights)
    args.methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        raise SystemExit(f"--methods: unknown {', '.join(bad)}; choose from {', '.join(METHODS)}")
    args.name = args.name or (f"generative_{args.split}" + ("_quick" if args.quick else ""))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    started, t0 = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    split = SPLITS[args.split]
    inputs = []
    for name in args.clips:
        clean = load_generated_clip(split[name][0], args.frames, args.long_side)
        inputs += clip_inputs(name, clean, seed_index(args.split, name))
    rows, sheets = run(inputs, args.methods, args)
    summary = summarize(rows, args.methods)
    result = {
        "name": args.name, "started": started, "wall_seconds": time.perf_counter() - t0,
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "-m",
                                                     "bench.generative_bench",
                                                     *(argv or sys.argv[1:])]),
        "machine": machine_description(args.threads, load),
        "settings": {"split": args.split, "clips": args.clips, "frames": args.frames,
                     "long_side": args.long_side, "methods": args.methods},
        "rows": rows, "summary": summary, "targets": check_targets(rows, summary),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    report = markdown(result)
    (out / f"{args.name}.md").write_text(report)
    if args.sheets and sheets:
        save_sheets(sheets, Path(args.sheets), [SimpleNamespace(key=k) for k in args.methods])
    print(report)
    return result


if __name__ == "__main__":
    main()
