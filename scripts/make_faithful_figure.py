"""Before/after frames of a generated clip with atlas colour and with faithful colour (README).

    .venv/bin/python -m scripts.make_faithful_figure [--clip wan_turn] [--out bench/figures/...]

Rows: the flickered input (W = 3), atlas colour (the default), faithful colour, the clean clip,
and the atlas confidence preview; columns: first, middle and last frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from bench.generative_data import SPLITS, load_generated_clip
from deflicker_impl.atlas.confidence import confidence_heatmap
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.pipeline import PipelineConfig, run_pipeline

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clip", default="wan_turn")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--long-side", type=int, default=320)
    p.add_argument("--out", default="bench/figures/faithful_wan_turn.jpg")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    stem = {**SPLITS["dev"], **SPLITS["heldout"]}[args.clip][0]
    clean = load_generated_clip(stem, args.frames, args.long_side)
    flickered = add_synthetic_flicker(clean, window=3, seed=2003)
    default = run_pipeline(flickered.clone(), PipelineConfig(confidence=True))
    faithful = run_pipeline(flickered.clone(), PipelineConfig.faithful())
    preview = confidence_heatmap(flickered, faithful.confidence.mask())
    rows = [("input (flicker W=3)", flickered), ("atlas colour (default)", default.frames),
            ("faithful colour", faithful.frames), ("clean", clean),
            ("atlas confidence (red: atlas wrong)", preview)]
    t = clean.shape[0]
    picks = [0, t // 2, t - 1]
    h, w = clean.shape[1:3]
    sheet = Image.new("RGB", (w * len(picks), (h + 14) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        draw.text((4, r * (h + 14) + 1), label, fill="black")
        for c, i in enumerate(picks):
            img = (frames[i].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
            sheet.paste(Image.fromarray(img), (c * w, r * (h + 14) + 14))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=70)  # under the README pictures size limit
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
