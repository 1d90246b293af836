"""README figure: frames of the bundled demo clip before and after deflickering, side by side.

    .venv/bin/python -m scripts.make_readme_figures   # writes bench/figures/demo_before_after.png

Rows: input, atlas reconstruction (steady colour, flawed structure), final output. Columns:
frames 0, 8, 16, 24 (flicker changes every frame, so neighbouring columns show it).
"""

from __future__ import annotations

from pathlib import Path

import torch

from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.video_io import read_clip, write_clip

ROOT = Path(__file__).resolve().parent.parent

FRAMES = (0, 8, 16, 24)


def main() -> None:
    clip = read_clip(ROOT / "example_workflows" / "demo_flicker.mp4").frames
    result = run_pipeline(clip, PipelineConfig())
    rows = [clip, result.atlas_frames, result.frames]
    gap = torch.ones(clip.shape[1], 4, 3)
    sheet = torch.cat([
        torch.cat([torch.cat((row[i], gap), 1) for i in FRAMES], 1) for row in rows
    ], 0)
    out = write_clip(ROOT / "bench" / "figures" / "demo_before_after.png", sheet[None])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
