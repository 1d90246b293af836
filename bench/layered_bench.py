"""Two-layer benchmark: one atlas vs foreground + background atlases, on clips where an object
moves against its background (see bench/layered_data.py for the inputs and their masks).

    .venv/bin/python -m bench.layered_bench            # 48 frames, 384 px long side
    .venv/bin/python -m bench.layered_bench --quick    # 16 frames, 192 px, W = 1 only

Every method sees the very same tensors; the two-layer rows get the masks. Writes
<out>/<name>.json and <out>/<name>.md, and with --figures the README's PNGs in bench/figures/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from deflicker_impl.atlas import AtlasConfig, fit_atlas, render_atlas_frames
from deflicker_impl.evaluation.metrics import (
    compute_warp_reference,
    flicker_index,
    psnr,
    restrict_to_reliable_flow,
    warping_error,
)
from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter
from deflicker_impl.refine.apply import apply_local_refine, load_local_refine

from .deflicker_bench import machine_description, mean_of
from .layered_data import COMPOSITES, REAL_OBJECT_CLIPS, layered_inputs, mask_overlay

METHODS = (
    ("clean", "clean clip (ground truth)"),  # composites only: the steadiness of the truth
    ("input", "input (no-op)"),
    ("atlas1", "one-layer atlas"),
    ("filter1", "one-layer atlas + filter"),
    ("atlas2", "two-layer atlas (masks)"),
    ("filter2", "two-layer atlas + filter (masks)"),
    ("refine1", "one-layer full pipeline (+ refine)"),
    ("refine2", "two-layer full pipeline (+ refine, masks)"),
)
# The pipeline as users run it (atlas, filter, refine: the default) is what the targets judge.
PIPELINE = {1: "refine1", 2: "refine2"}


def run_input(inp, masks, args) -> dict:
    """Every method on one input -> {method: (frames, seconds)}, plus the two atlases."""
    out = {"input": (inp.frames, 0.0)}
    if inp.clean is not None:
        out["clean"] = (inp.clean, 0.0)
    atlases = {}
    refine_net = load_local_refine()
    for layers, given in ((1, None), (2, masks)):
        t0 = time.perf_counter()
        atlas = fit_atlas(inp.frames, AtlasConfig(seed=args.seed), masks=given)
        frames = render_atlas_frames(atlas)
        t_atlas = time.perf_counter() - t0
        filtered = apply_neural_filter(inp.frames, frames, FilterConfig())
        t_filter = time.perf_counter() - t0
        refined = apply_local_refine(filtered, net=refine_net)
        t_all = time.perf_counter() - t0
        out[f"atlas{layers}"] = (frames, t_atlas)
        out[f"filter{layers}"] = (filtered, t_filter)
        out[f"refine{layers}"] = (refined, t_all)
        atlases[layers] = atlas
    return out, atlases


def score(inp, frames, reference, ewarp_in, reliable=None, reliable_in=None) -> dict:
    """PSNR, E_warp ratio (flow of the clean clip / of the input for real clips), flicker index
    and, with ground truth, the E_warp ratio on the pixels where the flow explains the clean
    clip (`restrict_to_reliable_flow`)."""
    return {
        "psnr": psnr(frames, inp.clean) if inp.clean is not None else None,
        "ewarp_ratio": warping_error(frames, reference) / ewarp_in,
        "ewarp_ratio_reliable": (warping_error(frames, reliable) / reliable_in
                                 if reliable is not None else None),
        "flicker_index": flicker_index(frames),
    }


def _fmt(v, d):
    return "n/a" if v is None else f"{v:.{d}f}"


def markdown(result) -> str:
    m = result["machine"]
    lines = [f"# Two-layer benchmark: {result['name']}", "", f"`{result['command']}`  ",
             f"{result['started']}, wall time {result['wall_seconds'] / 60:.1f} min  ",
             f"{result['frames']} frames, long side {result['long_side']} px  ",
             (f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, torch "
              f"{m['torch']}, {m['torch_threads']} threads, load average at start "
              f"{m['loadavg_start']}, at end {m['loadavg_end']}"), "",
             "## Summary", "",
             ("| method | composite PSNR (dB) | composite E_warp ratio | composite E_warp ratio, "
              "reliable flow | real flicker index | real E_warp ratio | s/frame |"),
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in METHODS:
        s = result["summary"][key]
        lines.append(f"| {label} | {_fmt(s['psnr'], 2)} | {_fmt(s['ewarp_ratio'], 3)} | "
                     f"{_fmt(s['ewarp_ratio_reliable'], 3)} | "
                     f"{_fmt(s['real_flicker_index'], 2)} | {_fmt(s['real_ewarp_ratio'], 3)} | "
                     f"{_fmt(s['seconds_per_frame'], 3)} |")
    lines += ["", "## Targets", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in result["targets"]]
    lines += ["", "## Every input", "",
              ("| clip | input | method | PSNR (dB) | E_warp ratio | E_warp ratio, reliable flow "
               "| flicker index | s/frame |"),
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['clip']} | {r['label']} | {r['method_label']} | "
                     f"{_fmt(r['psnr'], 2)} | {_fmt(r['ewarp_ratio'], 3)} | "
                     f"{_fmt(r.get('ewarp_ratio_reliable'), 3)} | {_fmt(r['flicker_index'], 2)} | {_fmt(r['seconds_per_frame'], 3)} |")
    return "\n".join(lines) + "\n"


def summarize(rows):
    summary = {}
    for key, _ in METHODS:
        mine = [r for r in rows if r["method"] == key]
        syn = [r for r in mine if r["kind"] == "synthetic"]
        real = [r for r in mine if r["kind"] == "real"]
        summary[key] = {
            "psnr": mean_of(r["psnr"] for r in syn),
            "ewarp_ratio": mean_of(r["ewarp_ratio"] for r in syn),
            "ewarp_ratio_reliable": mean_of(r.get("ewarp_ratio_reliable") for r in syn),
            "real_flicker_index": mean_of(r["flicker_index"] for r in real),
            "real_ewarp_ratio": mean_of(r["ewarp_ratio"] for r in real),
            "seconds_per_frame": mean_of(r["seconds_per_frame"] for r in mine),
        }
    return summary


def targets(rows, summary):
    checks = []
    s1, s2 = summary[PIPELINE[1]], summary[PIPELINE[2]]
    if s1["psnr"] is not None:
        checks.append(((f"composites: two-layer pipeline PSNR {s2['psnr']:.2f} dB > one-layer "
                       f"{s1['psnr']:.2f} dB"), s2["psnr"] > s1["psnr"]))
        checks.append(((f"composites: two-layer pipeline E_warp ratio {s2['ewarp_ratio']:.3f} < "
                       f"one-layer {s1['ewarp_ratio']:.3f}"), s2["ewarp_ratio"] < s1["ewarp_ratio"]))
        checks.append(((f"composites, flow-reliable pixels: two-layer pipeline E_warp ratio "
                        f"{s2['ewarp_ratio_reliable']:.3f} < one-layer "
                        f"{s1['ewarp_ratio_reliable']:.3f}"),
                       s2["ewarp_ratio_reliable"] < s1["ewarp_ratio_reliable"]))
        clean = summary["clean"]["ewarp_ratio"]
        if clean is not None:
            checks.append(((f"composites: two-layer pipeline E_warp ratio {s2['ewarp_ratio']:.3f}"
                            f" within 0.03 of the clean clip's own {clean:.3f}"),
                           abs(s2["ewarp_ratio"] - clean) <= 0.03))
        by_input = {(r["clip"], r["label"]): r for r in rows if r["method"] == PIPELINE[1]}
        wins = [r["psnr"] > by_input[(r["clip"], r["label"])]["psnr"] for r in rows
                if r["method"] == PIPELINE[2] and r["kind"] == "synthetic"]
        checks.append(((f"composites: two-layer pipeline PSNR higher on {sum(wins)}/{len(wins)} "
                       "inputs"), all(wins)))
    if s1["real_ewarp_ratio"] is not None:
        checks.append(((f"real clip: two-layer pipeline E_warp ratio {s2['real_ewarp_ratio']:.3f}"
                       f" < one-layer {s1['real_ewarp_ratio']:.3f}"),
                       s2["real_ewarp_ratio"] < s1["real_ewarp_ratio"]))
    return checks


def save_small_figure(image, path: Path) -> None:
    """A README figure small enough to commit (under 300 kB, tests/test_readme.py): .jpg as
    JPEG quality 85 (sheets of video frames), .png as a 256-colour PNG (atlas previews, whose
    flat checker areas PNG keeps crisp)."""
    from PIL import Image

    image = image.convert("RGB")
    if path.suffix.lower() == ".jpg":
        image.save(path, quality=85, optimize=True)
    else:
        image.quantize(256, method=Image.Quantize.MEDIANCUT,
                       dither=Image.Dither.NONE).save(path, optimize=True)


def save_figures(kept, folder: Path, height: int = 108) -> list[Path]:
    """Atlas previews (one layer | two layers) and a frame sheet per kept input, small PNGs."""
    from PIL import Image, ImageDraw

    def image(t: torch.Tensor, h: int) -> Image.Image:
        arr = (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        img = Image.fromarray(arr)
        return img.resize((max(1, round(img.width * h / img.height)), h), Image.LANCZOS)

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, item in kept.items():
        # Atlas previews: the one-layer texture, then foreground | background.
        one, two = (image(a.texture_preview()[0], 2 * height) for a in item["atlases"])
        sheet = Image.new("RGB", (one.width + two.width + 12, 2 * height + 18), "white")
        draw = ImageDraw.Draw(sheet)
        sheet.paste(one, (0, 18))
        sheet.paste(two, (one.width + 12, 18))
        draw.text((4, 3), "one layer", fill="black")
        draw.text((one.width + 16, 3), "two layers: foreground | background", fill="black")
        path = folder / f"layered_{name}_atlases.png"
        save_small_figure(sheet, path)
        paths.append(path)
        # Frames: columns = first / middle / last; rows = what each method shows.
        rows = item["rows"]
        cols = len(item["picks"])
        w = image(rows[0][1][0], height).width
        sheet = Image.new("RGB", (110 + cols * w, len(rows) * height), "white")
        draw = ImageDraw.Draw(sheet)
        for r, (label, frames) in enumerate(rows):
            draw.text((4, r * height + height // 2 - 6), label, fill="black")
            for c in range(cols):
                sheet.paste(image(frames[c], height), (110 + c * w, r * height))
        path = folder / f"layered_{name}_frames.jpg"
        save_small_figure(sheet, path)
        paths.append(path)
    return paths


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.layered_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="16 frames, 192 px, W=1, one composite")
    p.add_argument("--frames", type=int)
    p.add_argument("--long-side", type=int)
    p.add_argument("--windows", default="1,3,10")
    p.add_argument("--composites", help=f"subset of {','.join(COMPOSITES)}, or 'none'")
    p.add_argument("--real", help=f"subset of {','.join(REAL_OBJECT_CLIPS)}, or 'none'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name")
    p.add_argument("--figures", help="folder for the README figures (e.g. bench/figures)")
    args = p.parse_args(argv)
    args.frames = args.frames or (16 if args.quick else 48)
    args.long_side = args.long_side or (192 if args.quick else 384)
    args.windows = [1] if args.quick else [int(w) for w in args.windows.split(",") if w]
    default_composites = list(COMPOSITES)[:1] if args.quick else list(COMPOSITES)
    if args.composites is None:
        args.composites = default_composites
    else:
        args.composites = [] if args.composites == "none" else args.composites.split(",")
    real = args.real or ("none" if args.quick else ",".join(REAL_OBJECT_CLIPS))
    args.real = [] if real == "none" else real.split(",")
    args.name = args.name or ("layered_quick" if args.quick else "layered")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    started, t_start = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    inputs = layered_inputs(args.frames, args.long_side, args.windows, args.composites,
                            args.real)
    rows, kept = [], {}
    labels = dict(METHODS)
    for n, (inp, masks) in enumerate(inputs, 1):
        reference = compute_warp_reference(inp.flow_source)
        ewarp_in = warping_error(inp.frames, reference)
        reliable = reliable_in = None
        if inp.clean is not None:
            reliable = restrict_to_reliable_flow(reference, inp.clean)
            reliable_in = warping_error(inp.frames, reliable)
        outputs, atlases = run_input(inp, masks, args)
        t = inp.frames.shape[0]
        for key, (frames, seconds) in outputs.items():
            row = {"clip": inp.clip, "kind": inp.kind, "label": inp.label, "method": key,
                   "method_label": labels[key], "seconds_per_frame": seconds / t,
                   "layers_note": atlases[2].stats.get("layers_note"),
                   "loadavg": round(os.getloadavg()[0], 2),
                   **score(inp, frames, reference, ewarp_in, reliable, reliable_in)}
            rows.append(row)
            print(f"[{n}/{len(inputs)}] {inp.clip} {inp.label:5s} {labels[key]:34s} PSNR "
                  f"{_fmt(row['psnr'], 2)}  E_warp ratio {row['ewarp_ratio']:.3f}  flicker "
                  f"{row['flicker_index']:.2f}  {row['seconds_per_frame']:.3f} s/frame")
        if inp.kind == "real" or inp.window == 1:
            picks = sorted({0, t // 2, t - 1})
            first = ("clean" if inp.clean is not None else "input", (inp.clean if inp.clean
                     is not None else inp.frames)[picks])
            kept[inp.clip] = {"picks": picks, "atlases": (atlases[1], atlases[2]), "rows": [
                first, ("input + mask", mask_overlay(inp.frames[picks], masks[picks])),
                ("atlas, 1 layer", outputs["atlas1"][0][picks]),
                ("atlas, 2 layers", outputs["atlas2"][0][picks]),
                ("+filter, 1 layer", outputs["filter1"][0][picks]),
                ("+filter, 2 layers", outputs["filter2"][0][picks]),
                ("+refine, 1 layer", outputs["refine1"][0][picks]),
                ("+refine, 2 layers", outputs["refine2"][0][picks])]}
    summary = summarize(rows)
    result = {
        "name": args.name, "started": started, "wall_seconds": time.perf_counter() - t_start,
        "command": " ".join(shlex.quote(a) for a in [
            ".venv/bin/python", "-m", "bench.layered_bench", *(argv or sys.argv[1:])]),
        "frames": args.frames, "long_side": args.long_side,
        "machine": machine_description(args.threads, load)
        | {"loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "rows": rows, "summary": summary, "targets": targets(rows, summary),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    report = markdown(result)
    (out / f"{args.name}.md").write_text(report)
    if args.figures:
        for path in save_figures(kept, Path(args.figures)):
            print(f"wrote {path}")
    print(report)
    return result


if __name__ == "__main__":
    main()
