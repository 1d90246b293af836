"""Training of the neural filter on synthetic pairs made from still images.

    python -m deflicker_impl.train filter --images DIR [--images DIR2] [--video-frames DIR]
        [--cache FILE] --out runs/filter --steps N --batch 8 --crop 128 --lr 1e-3 --seed 0
        [--device auto] [--threads N] [--max-minutes M] [--resume] [--export FILE]

Each step draws random crops of the training images, makes (frame, atlas, target) pairs with
train/pairs.py and minimises the L1 error of the filtered frame. A fixed validation
set (from images held out by name hash, same for every seed) reports the PSNR of the output and,
for comparison, of the atlas input and of the frame input; `val_psnr_identity` is the PSNR when the
frame input is already clean (the "do no harm" case).

The loop is train/loop.py's. Output folder: log.jsonl (one JSON object per logged step),
checkpoint.safetensors (model) + checkpoint_state.pt (optimizer, step, RNG states; loaded with
weights_only=True), both written atomically. `--resume` continues from them and gives the same result as an uninterrupted run
(same device type). `--export FILE` writes the final weights with their provenance.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

import torch

from ..errors import DeflickerInputError
from ..evaluation.metrics import psnr
from ..filter.apply import WEIGHTS_KIND
from ..filter.net import FilterNetConfig, NeuralFilterNet
from .image_bank import ImageBank, read_cache_sources
from .loop import TrainOptions, add_common_options, options_from_args, run_command, run_training
from .pairs import ColourDistortionConfig, StructureDistortionConfig, make_training_pair

VAL_SEED = 20230316  # the validation set does not depend on the training seed


@dataclass
class FilterTrainOptions(TrainOptions):
    out: str = "runs/filter"
    images: list[str] = field(default_factory=list)
    video_frames: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    procedural: int = 0  # number of procedural scenes to add (smoke runs, tests)
    min_scale: float = 0.35  # smallest crop/region ratio: crops cover up to 1/0.35 of their size
    amp: bool = False  # bfloat16 autocast on CUDA
    val_fraction: float = 0.1
    val_samples: int = 64
    val_crop: int = 128  # fixed, not --crop, so runs with other crops compare on the same pairs
    max_side: int = 1024  # images are downscaled to this on load
    widths: tuple[int, ...] = FilterNetConfig().widths
    head_width: int = FilterNetConfig().head_width


@dataclass
class ValidationSet:
    frame: torch.Tensor
    atlas: torch.Tensor
    target: torch.Tensor


@dataclass
class ValidationSets:
    """The mixed validation pairs, and pairs whose atlas shows wrong content in every sample
    (what the filter must learn to ignore: train/pairs.py WRONG_CONTENT_KINDS)."""

    mixed: ValidationSet
    wrong_content: ValidationSet

    def to(self, device: torch.device) -> ValidationSets:
        def move(v: ValidationSet) -> ValidationSet:
            return ValidationSet(v.frame.to(device), v.atlas.to(device), v.target.to(device))

        return ValidationSets(move(self.mixed), move(self.wrong_content))


class FilterTraining:
    """The filter's hooks of the training loop: random crops of the image bank made into
    (frame, atlas, target) pairs, the L1 error of the filtered frame."""

    kind = WEIGHTS_KIND
    device_stream = "distort"

    def __init__(self, opts: FilterTrainOptions):
        self.opts = opts

    def prepare(self) -> None:
        opts = self.opts
        self.bank = load_image_bank(opts)
        self.train_bank, self.val_bank = self.bank.split(opts.val_fraction)
        if len(self.train_bank) == 0:
            raise DeflickerInputError("No training images left after the validation split.")
        self.val_set = build_validation_sets(self.val_bank, opts.val_samples, opts.val_crop,
                                             opts.min_scale)

    def build_net(self) -> NeuralFilterNet:
        return NeuralFilterNet(FilterNetConfig(widths=self.opts.widths,
                                               head_width=self.opts.head_width))

    def data_info(self) -> dict:
        return {"sources": _sources(self.opts), **self.bank.describe(),
                "train_images": len(self.train_bank), "val_images": len(self.val_bank)}

    def to_device(self, device: torch.device) -> None:
        self.train_bank = self.train_bank.to(device)
        self.val_set = self.val_set.to(device)

    def losses(self, net, sample_gen, device_gen, device) -> dict[str, torch.Tensor]:
        opts = self.opts
        clean = self.train_bank.sample_crops(opts.batch, opts.crop, sample_gen, opts.min_scale)
        pair = make_training_pair(clean, device_gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.amp):
            output = net(pair.frame, pair.atlas, clamp=False)
        return {"loss": (output.float() - pair.target).abs().mean()}

    def evaluate(self, net) -> dict:
        return evaluate(net, self.val_set)

    def export_metadata(self) -> dict:
        opts = self.opts
        return {"validation_set": {"samples": len(self.val_set.mixed.target),
                                   "crop": opts.val_crop, "seed": VAL_SEED,
                                   "val_fraction": opts.val_fraction,
                                   "wrong_content_samples":
                                       len(self.val_set.wrong_content.target)}}


def train_filter(opts: FilterTrainOptions) -> dict:
    """Run (or continue) a training; returns the final summary (also the last log line)."""
    return run_training(opts, FilterTraining(opts))


def load_image_bank(opts: FilterTrainOptions) -> ImageBank:
    banks = []
    if opts.images:
        banks.append(ImageBank.from_folders(opts.images, max_side=opts.max_side))
    if opts.video_frames:
        banks.append(ImageBank.from_folders(opts.video_frames, clips=True,
                                            max_side=opts.max_side))
    banks.extend(ImageBank.from_cache(path) for path in opts.cache)
    if opts.procedural:
        banks.append(ImageBank.procedural(opts.procedural, 160, 192, seed=opts.seed))
    if not banks:
        raise DeflickerInputError(
            "No training data: give --images DIR, --video-frames DIR, --cache FILE or "
            "--procedural N."
        )
    return ImageBank([im for b in banks for im in b.images], [n for b in banks for n in b.names])


def build_validation_sets(
    bank: ImageBank, samples: int, crop: int, min_scale: float
) -> ValidationSets:
    """Fixed validation pairs, made on the CPU so they are the same on every device: the mixed
    pairs of training, and as many pairs with wrong content in every atlas input."""
    if len(bank) == 0 or samples <= 0:
        empty = torch.zeros(0, 3, crop, crop)
        return ValidationSets(ValidationSet(empty, empty, empty),
                              ValidationSet(empty, empty, empty))
    gen = torch.Generator().manual_seed(VAL_SEED)
    clean = bank.sample_crops(samples, crop, gen, min_scale)
    # No identity samples: every validation frame is distorted (identity is measured apart).
    colour = ColourDistortionConfig(identity_prob=0.0)
    mixed = make_training_pair(clean, gen, colour=colour)
    wrong = make_training_pair(clean, gen, colour=colour,
                               structure=StructureDistortionConfig(wrong_content_prob=1.0))
    return ValidationSets(ValidationSet(mixed.frame, mixed.atlas, mixed.target),
                          ValidationSet(wrong.frame, wrong.atlas, wrong.target))


@torch.no_grad()
def evaluate(net: NeuralFilterNet, sets: ValidationSets, batch: int = 16) -> dict:
    """Mean per-sample PSNR (dB) of the output, the atlas input, the frame input, and of the
    output when the frame input is the clean image itself; and of the output and the atlas
    input on the pairs whose atlas shows wrong content."""
    val, wrong = sets.mixed, sets.wrong_content
    if len(val.target) == 0:
        return {}
    was_training = net.training
    net.eval()

    def run(frame, atlas):
        return torch.cat([net(frame[i:i + batch], atlas[i:i + batch]).float()
                          for i in range(0, len(frame), batch)])

    outputs, identities = run(val.frame, val.atlas), run(val.target, val.atlas)
    wrong_outputs = run(wrong.frame, wrong.atlas)
    net.train(was_training)
    return {
        "val_psnr_output": _rounded_psnr(outputs, val.target),
        "val_psnr_atlas": _rounded_psnr(val.atlas, val.target),
        "val_psnr_frame": _rounded_psnr(val.frame, val.target),
        "val_psnr_identity": _rounded_psnr(identities, val.target),
        "val_psnr_wrong_content_output": _rounded_psnr(wrong_outputs, wrong.target),
        "val_psnr_wrong_content_atlas": _rounded_psnr(wrong.atlas, wrong.target),
    }


def _sources(opts: FilterTrainOptions) -> dict:
    return {"images": list(opts.images), "video_frames": list(opts.video_frames),
            "cache": {os.path.basename(c): read_cache_sources(c) for c in opts.cache},
            "procedural": opts.procedural}


def _rounded_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(psnr(a, b), 3)


# --- command line -------------------------------------------------------------------------------


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register the `filter` subcommand."""
    d = FilterTrainOptions()
    p = subparsers.add_parser("filter", help="train the neural filter on still images",
                              description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", action="append", default=[], metavar="DIR",
                   help="folder of images (recursive); repeatable")
    p.add_argument("--video-frames", action="append", default=[], metavar="DIR",
                   help="folder of clip frames, one sub-folder per clip; repeatable")
    p.add_argument("--cache", action="append", default=[], metavar="FILE",
                   help="image cache from scripts/build_train_cache.py; repeatable")
    p.add_argument("--procedural", type=int, default=0, metavar="N",
                   help="add N procedural scenes (smoke runs)")
    add_common_options(p, d)
    p.add_argument("--min-scale", type=float, default=d.min_scale)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--val-samples", type=int, default=d.val_samples)
    p.add_argument("--val-crop", type=int, default=d.val_crop)
    p.add_argument("--max-side", type=int, default=d.max_side)
    p.add_argument("--widths", default=",".join(map(str, d.widths)),
                   help="U-Net widths, comma-separated")
    p.add_argument("--head-width", type=int, default=d.head_width)
    p.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    widths = tuple(int(w) for w in args.widths.split(","))
    return run_command(train_filter, options_from_args(args, FilterTrainOptions, widths=widths))
