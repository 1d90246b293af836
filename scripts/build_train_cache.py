"""Decode the filter's training images (and frames of clean clips) once into one cache file.

    .venv/bin/python -m scripts.build_train_cache \
        --images ../shared/data/coco128/images \
        --videos ../shared/clips/sam2/*.mp4 ../shared/clips/blindconsistency/old_man.mp4 \
        --out .traincache/filter_data.safetensors

The cache (deflicker_impl.train.image_bank format) is what `python -m deflicker_impl.train filter
--cache FILE` reads; it is small enough to carry to a GPU machine that has no copy of the data.
Images are downscaled to --max-side; from every clip --frames-per-clip frames are taken evenly
spaced (named "clip__fNNNNN", so a clip stays on one side of the train/validation split).
--encoding jpeg (quality 92, no chroma subsampling) keeps the detail at ~1/7 of the raw size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from deflicker_impl.train.image_bank import ImageBank, resize_max_side


def clip_frames(path: Path, count: int, max_side: int) -> ImageBank:
    """`count` frames spread evenly over a video file, decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for _ in container.decode(video=0))
    wanted = set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist())
    images, names = [], []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                array = frame.to_ndarray(format="rgb24")
                images.append(resize_max_side(torch.from_numpy(array), max_side))
                names.append(f"{path.stem}__f{index:05d}")
    return ImageBank(images, names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", nargs="*", default=[], help="image folders (recursive)")
    parser.add_argument("--videos", nargs="*", default=[], help="clean video files")
    parser.add_argument("--frames-per-clip", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--encoding", choices=["jpeg", "raw"], default="jpeg")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality")
    parser.add_argument("--max-mb", type=float, default=60.0, help="refuse to write more")
    parser.add_argument("--out", default=".traincache/filter_data.safetensors")
    args = parser.parse_args(argv)

    banks = []
    if args.images:
        banks.append(ImageBank.from_folders(args.images, max_side=args.max_side))
    for video in args.videos:
        banks.append(clip_frames(Path(video), args.frames_per_clip, args.max_side))
    bank = ImageBank([i for b in banks for i in b.images], [n for b in banks for n in b.names])
    if len(bank) == 0:
        parser.error("no images: give --images and/or --videos")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.parent.name == ".traincache":
        # Keep the cache out of git without touching the project's .gitignore.
        (out.parent / ".gitignore").write_text("*\n")
    sources = ["/".join(Path(p).resolve().parts[-2:]) for p in args.images + args.videos]
    size = bank.save_cache(out, encoding=args.encoding, quality=args.quality, sources=sources)
    if size > args.max_mb * 1e6:
        Path(args.out).unlink()
        print(f"error: cache would be {size / 1e6:.1f} MB > --max-mb {args.max_mb}; lower "
              "--max-side or --frames-per-clip, or use --encoding jpeg", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(bank)} images ({bank.describe()}), {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
