"""Faithful colour's settings tried on stored stage outputs: the generative benchmark's faithful
rows for several variants in minutes, instead of a full benchmark run per variant.

    .venv/bin/python -m bench.faithful_variants --split dev \\
        --variant previous:colour_window_scale=0 --variant no_pieces:light_pieces=0

Per input of bench/generative_bench.py (every kind but the seam rows, which faithful colour
with its default window does not serve) the atlas is fitted and the neural filter's network run
once, and their outputs, the atlas confidence and the scoring's flows are stored under
`--cache` (about 1 GB per split at the default size). Every variant then runs the rest of the
faithful pipeline, exactly as the benchmark does (filter.apply.apply_faithful_colour, then
LocalFlickerRefine), so the first row reproduces the benchmark's `ours` row. A variant is
NAME:FIELD=VALUE[,FIELD=VALUE...] over FlickerFieldConfig's fields. Tuning happens on `dev`
and `extra`; the held-out half is refused.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    psnr,
    restrict_to_reliable_flow,
    warping_error,
)

from . import baselines
from .deflicker_bench import mean_of
from .generative_bench import GenInput, chosen_clips, clip_inputs, seed_index, summarize
from .generative_data import SPLITS, load_generated_clip

TUNING_SPLITS = ("dev", "extra")


def stage_outputs(inp: GenInput, path: Path | None = None,
                  filter_weights: str | os.PathLike | None = None) -> dict:
    """The atlas frames, shot starts, the filter network's raw output (full size and at the
    field's fit size; `filter_weights`: that file's network instead of the shipped one), the
    atlas confidence and the scoring's references of one input; read from `path` when it is
    there, else computed (and stored there)."""
    if path is not None and path.exists():
        return torch.load(path, weights_only=False)
    from deflicker_impl.atlas import AtlasConfig, fit_clip_atlas, render_atlas_frames
    from deflicker_impl.atlas.confidence import atlas_confidence, coarse_frames
    from deflicker_impl.filter.apply import filter_chunk, filter_chunk_frames, load_neural_filter
    from deflicker_impl.pipeline import PipelineConfig

    cfg = replace(PipelineConfig.faithful().filter, weights_path=filter_weights)
    torch.manual_seed(0)  # as the benchmark does before the method that fits the atlas
    atlas = fit_clip_atlas(inp.frames, AtlasConfig())
    atlas_frames = render_atlas_frames(atlas, dtype=torch.uint8)
    net = load_neural_filter(cfg)
    t = inp.frames.shape[0]
    chunk = filter_chunk_frames(cfg, tuple(inp.frames.shape[1:3]))
    raw, coarse = [], []
    for start in range(0, t, chunk):
        part = filter_chunk(net, inp.frames, atlas_frames, start, min(t, start + chunk), cfg,
                            blend=False)
        raw.append(part)
        coarse.append(coarse_frames(part, 0, part.shape[0], cfg.flicker.fit_long_side))
    reference = compute_warp_reference(inp.reference)
    reliable = restrict_to_reliable_flow(reference, inp.reference)
    stored = {
        "atlas_frames": atlas_frames, "shot_starts": atlas.shot_starts,
        "filtered": torch.cat(raw), "filtered_coarse": torch.cat(coarse),
        "confidence": atlas_confidence(inp.frames, atlas_frames, cfg.confidence),
        "reference": reference, "reliable": reliable,
        "input_psnr": psnr(inp.frames, inp.reference),
        "clipmedian_psnr": psnr(baselines.match_to_clip_median(inp.frames), inp.reference),
        "input_ewarp": warping_error(inp.frames, reference),
        "input_ewarp_reliable": warping_error(inp.frames, reliable),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(stored, partial)
        partial.replace(path)  # an interrupted run leaves no half-written entry
    return stored


def faithful_output(inp: GenInput, stored: dict, flicker_settings: dict) -> torch.Tensor:
    """The faithful pipeline's output for one input from its stored stage outputs, with
    FlickerFieldConfig's fields in `flicker_settings` changed."""
    from deflicker_impl.filter.apply import apply_faithful_colour
    from deflicker_impl.pipeline import PipelineConfig
    from deflicker_impl.refine.apply import apply_local_refine

    faithful = PipelineConfig.faithful()
    fcfg = replace(faithful.filter, flicker=replace(faithful.filter.flicker, **flicker_settings))
    torch.manual_seed(0)  # as the benchmark does before every method
    out = apply_faithful_colour(inp.frames, stored["atlas_frames"], stored["filtered"],
                                stored["filtered_coarse"], stored["confidence"], fcfg,
                                stored["shot_starts"])
    return apply_local_refine(out, faithful.refine, shot_starts=stored["shot_starts"], out=out)


def score(inp: GenInput, stored: dict, out: torch.Tensor) -> dict:
    """One row in generative_bench's layout (as its `ours`), with the clip-median match's PSNR."""
    return {"clip": inp.clip, "kind": inp.kind, "label": inp.label, "window": inp.window,
            "method": "ours", "psnr": psnr(out, inp.reference),
            "ewarp_ratio": warping_error(out, stored["reference"]) / stored["input_ewarp"],
            "ewarp_ratio_reliable": (warping_error(out, stored["reliable"])
                                     / stored["input_ewarp_reliable"]),
            "clean_ewarp_ratio": None, "seconds_per_frame": None,
            "clipmedian_psnr": stored["clipmedian_psnr"], "input_psnr": stored["input_psnr"]}


def summary_line(name: str, rows: list[dict]) -> str:
    """One markdown row: the generative benchmark's faithful columns (generative_bench.summarize),
    per-W means, and the synthetic inputs above the clip-median match."""
    s = summarize(rows, ["ours"])["ours"]
    syn = [r for r in rows if r["kind"] == "synthetic"]
    wins = sum(r["psnr"] > r["clipmedian_psnr"] for r in syn)
    gain = mean_of(r["psnr"] - r["clipmedian_psnr"] for r in syn)
    per_window = (mean_of(r["psnr"] for r in syn if r["window"] == w) for w in (1, 3, 10))
    cells = [f"{s['synthetic_psnr']:.2f}", f"{s['synthetic_ewarp_ratio']:.3f}",
             f"{s['synthetic_ewarp_ratio_reliable']:.3f}",
             f"{s['clean_psnr']:.2f} ({s['clean_psnr_min']:.2f})", f"{s['step_psnr']:.2f}",
             f"{s['ramp_psnr']:.2f}", *(f"{m:.2f}" for m in per_window),
             f"{s['mild_psnr']:.2f} ({s['mild_worse_than_input']})",
             f"{wins}/{len(syn)} ({gain:+.2f})"]
    return f"| {name} | " + " | ".join(cells) + " |"


HEADER = ("| variant | synthetic | E_warp | E_warp reliable | clean (worst) | step | ramp | W=1 | "
          "W=3 | W=10 | mild (worse) | above clip median (mean gain) |\n"
          "|---|" + "---:|" * 11)


def parse_variant(text: str) -> tuple[str, dict]:
    from deflicker_impl.flicker_field import FlickerFieldConfig

    name, _, body = text.partition(":")
    known = {f.name for f in fields(FlickerFieldConfig)}
    settings = {}
    for item in filter(None, body.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            raise SystemExit(f"--variant {text!r}: expected NAME:FIELD=VALUE,... with FIELD one "
                             f"of {', '.join(sorted(known))}")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise SystemExit(f"--variant {text!r}: {value!r} is not a number") from None
    FlickerFieldConfig(**settings)  # a bad value is refused here, with its own message
    return name or "unnamed", settings


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.faithful_variants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=TUNING_SPLITS, default="dev")
    p.add_argument("--clips", help="comma-separated subset of the split's clips")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--long-side", type=int, default=320)
    p.add_argument("--variant", action="append", default=[], metavar="NAME:FIELD=VALUE,...")
    p.add_argument("--cache", default=".benchcache", help="folder of the stored stage outputs")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--filter-weights", metavar="FILE",
                   help="neural filter weights to store the outputs of (default: the shipped "
                        "file); they get their own cache folder, named by the file's content")
    p.add_argument("--per-clip", action="store_true", help="also print every input's PSNR")
    args = p.parse_args(argv)
    args.clips = chosen_clips(args.split, args.clips)
    args.variants = [("this release", {})] + [parse_variant(v) for v in args.variant]
    return args


def cache_folder(args: argparse.Namespace) -> Path:
    """Where an input's stage outputs are stored: one folder per split, size and filter
    weights (by the weights file's content, so a re-exported file is not mistaken for the
    one stored)."""
    name = f"faithful_{args.split}_{args.frames}f_{args.long_side}px"
    if args.filter_weights:
        digest = hashlib.sha256(Path(args.filter_weights).read_bytes()).hexdigest()[:12]
        name += f"_filter_{digest}"
    return Path(args.cache) / name


def main(argv=None) -> list[str]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = cache_folder(args)
    rows: dict[str, list[dict]] = {name: [] for name, _ in args.variants}
    t0 = time.perf_counter()
    for clip in args.clips:
        clean = load_generated_clip(SPLITS[args.split][clip][0], args.frames, args.long_side)
        for inp in clip_inputs(clip, clean, seed_index(args.split, clip)):
            if inp.kind == "seam":
                continue
            stored = stage_outputs(inp, cache / f"{clip}_{inp.label}.pt", args.filter_weights)
            for name, settings in args.variants:
                row = score(inp, stored, faithful_output(inp, stored, settings))
                rows[name].append(row)
                if args.per_clip:
                    print(f"{name:16s} {clip:18s} {inp.label:6s} {row['psnr']:6.2f} dB "
                          f"(clip median {row['clipmedian_psnr']:.2f})", flush=True)
    lines = [HEADER] + [summary_line(name, rows[name]) for name, _ in args.variants]
    print(f"split {args.split}: {', '.join(args.clips)}; {args.frames} frames, long side "
          f"{args.long_side} px; {time.perf_counter() - t0:.0f} s")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
