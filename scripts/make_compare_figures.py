"""README figures of the demo run (the metrics plot, two neighbouring frames before/after) and
the template browser's thumbnails of the example workflows (example_workflows/<name>.jpg).

    bash scripts/demo.sh                                  # writes out/demo/demo_deflickered.mp4
    .venv/bin/python -m scripts.make_compare_figures
    # -> bench/figures/demo_metrics.png and bench/figures/demo_compare.jpg
"""

from __future__ import annotations

from pathlib import Path

from deflicker_impl.evaluation.compare import compare_frames
from deflicker_impl.evaluation.plots import metrics_plot
from deflicker_impl.evaluation.report import measure
from deflicker_impl.video_io import read_clip, write_clip

ROOT = Path(__file__).resolve().parent.parent

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
    write_thumbnails(pairs[0], plot[0])


def write_thumbnails(pair, plot) -> None:
    """Small JPEGs that ComfyUI's template browser shows next to each example workflow."""
    import torch.nn.functional as F

    def small(image, width=400):
        h = round(image.shape[0] * width / image.shape[1])
        chw = image.permute(2, 0, 1)[None]
        return F.interpolate(chw, size=(h, width), mode="area")[0].permute(1, 2, 0)[None]

    folder = ROOT / "example_workflows"
    for name, image in (("deflicker_video", pair), ("deflicker_after_generation", pair),
                        ("deflicker_compare_metrics", plot)):
        print("wrote", write_clip(folder / f"{name}.jpg", small(image)))


if __name__ == "__main__":
    main()
