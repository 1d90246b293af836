"""README figures of the demo run: the metrics plot and two neighbouring frames before/after.

    bash scripts/demo.sh                                  # writes out/demo/demo_deflickered.mp4
    .venv/bin/python scripts/make_compare_figures.py
    # -> bench/figures/demo_metrics.png and bench/figures/demo_compare.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deflicker_impl.compare import compare_frames
from deflicker_impl.plots import metrics_plot
from deflicker_impl.report import measure
from deflicker_impl.video_io import read_clip, write_clip

FRAMES = (9, 10)  # two neighbouring frames: the input's colour jumps between them


def main() -> None:
    before = read_clip(ROOT / "example_workflows" / "demo_flicker.mp4").frames
    after = read_clip(ROOT / "out" / "demo" / "demo_deflickered.mp4").frames
    figures = ROOT / "bench" / "figures"
    plot = metrics_plot(measure(after, before), width=720, height=400, names=("after", "before"))
    print("wrote", write_clip(figures / "demo_metrics.png", plot))
    import torch

    pairs = compare_frames(before[list(FRAMES)], after[list(FRAMES)], layout="side_by_side")
    gap = torch.ones(6, pairs.shape[2], 3)
    sheet = torch.cat([pairs[0], gap, pairs[1]], dim=0)[None]
    print("wrote", write_clip(figures / "demo_compare.jpg", sheet))


if __name__ == "__main__":
    main()
