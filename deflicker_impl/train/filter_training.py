"""Training of the neural filter on synthetic pairs made from still images.

    python -m deflicker_impl.train filter --images DIR [--images DIR2] [--video-frames DIR]
        [--cache FILE] --out runs/filter --steps N --batch 8 --crop 128 --lr 1e-3 --seed 0
        [--device auto] [--threads N] [--max-minutes M] [--resume] [--export FILE]

Each step draws random crops of the training images, makes (frame, atlas, target) pairs with
deflicker_impl.distortions and minimises the L1 error of the filtered frame. A fixed validation
set (from images held out by name hash, same for every seed) reports the PSNR of the output and,
for comparison, of the atlas input and of the frame input; `val_psnr_identity` is the PSNR when the
frame input is already clean (the "do no harm" case).

Output folder: log.jsonl (one JSON object per logged step), checkpoint.safetensors (model) +
checkpoint_state.pt (optimizer, step, RNG states; loaded with weights_only=True), both written
atomically. `--resume` continues from them and gives the same result as an uninterrupted run
(same device type). `--export FILE` writes the final weights with their provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..device import resolve_device
from ..distortions import ColourDistortionConfig, make_training_pair
from ..errors import DeflickerInputError
from ..filter_net import FilterNetConfig, NeuralFilterNet, count_parameters
from ..metrics import psnr
from ..neural_filter import WEIGHTS_KIND
from ..threads import choose_threads, set_threads
from ..weights import save_weights
from .image_bank import ImageBank, read_cache_sources
from .run_folder import (
    LOG,
    append_log,
    device_name,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .schedule import warmup_cosine_lr

VAL_SEED = 20230316  # the validation set does not depend on the training seed


@dataclass
class FilterTrainOptions:
    out: str = "runs/filter"
    images: list[str] = field(default_factory=list)
    video_frames: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    procedural: int = 0  # number of procedural scenes to add (smoke runs, tests)
    steps: int = 20000
    batch: int = 8
    crop: int = 128
    min_scale: float = 0.35  # smallest crop/region ratio: crops cover up to 1/0.35 of their size
    lr: float = 1e-3
    final_lr_fraction: float = 0.05  # cosine decay from lr to lr * this
    warmup: int = 200
    clip_grad: float = 1.0  # max gradient norm (a safety net: no normalisation layers)
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool = False  # bfloat16 autocast on CUDA
    val_fraction: float = 0.1
    val_samples: int = 64
    val_crop: int = 128  # fixed, not --crop, so runs with other crops compare on the same pairs
    val_every: int = 500
    log_every: int = 50
    checkpoint_every: int = 500
    max_minutes: float | None = None  # stop (checkpoint, export) after this wall time
    session_steps: int | None = None  # stop after this many steps now; --resume continues
    resume: bool = False
    export: str | None = None
    max_side: int = 1024  # images are downscaled to this on load
    widths: tuple[int, ...] = FilterNetConfig().widths
    head_width: int = FilterNetConfig().head_width
    command: str = ""  # the command line, recorded in the exported weights


@dataclass
class ValidationSet:
    frame: torch.Tensor
    atlas: torch.Tensor
    target: torch.Tensor


def train_filter(opts: FilterTrainOptions) -> dict:
    """Run (or continue) a training; returns the final summary (also the last log line)."""
    set_threads(choose_threads(opts.threads).count)  # None: the pack's choice (threads.py)
    device = resolve_device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convs
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    bank = load_image_bank(opts)
    train_bank, val_bank = bank.split(opts.val_fraction)
    if len(train_bank) == 0:
        raise DeflickerInputError("No training images left after the validation split.")
    val_set = build_validation_set(val_bank, opts.val_samples, opts.val_crop, opts.min_scale)

    torch.manual_seed(opts.seed)  # network initialisation
    net = NeuralFilterNet(FilterNetConfig(widths=opts.widths, head_width=opts.head_width))
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=opts.lr)
    sample_gen = torch.Generator().manual_seed(opts.seed)
    distort_gen = torch.Generator(device=device).manual_seed(opts.seed + 1)
    generators = {"sample": sample_gen, "distort": distort_gen}

    step, elapsed_before = 0, 0.0
    if opts.resume and has_checkpoint(out):
        step, elapsed_before = load_checkpoint(out, net, optimizer, generators, distort_gen.device.type, WEIGHTS_KIND)
        append_log(out, {"event": "resumed", "step": step})
    elif not opts.resume and (out / LOG).exists():
        (out / LOG).unlink()  # a fresh run starts a fresh log

    data_info = {"sources": _sources(opts), **bank.describe(),
                 "train_images": len(train_bank), "val_images": len(val_bank)}
    stop_step = opts.steps
    if opts.session_steps is not None:
        stop_step = min(opts.steps, step + opts.session_steps)
    if step == 0:
        append_log(out, {"event": "start", "parameters": count_parameters(net), "device": str(device),
                   "options": _jsonable(asdict(opts)), "data": data_info})

    train_bank = train_bank.to(device)
    val_set = ValidationSet(*(t.to(device) for t in (val_set.frame, val_set.atlas,
                                                      val_set.target)))
    started = time.perf_counter()
    budget_s = opts.max_minutes * 60 if opts.max_minutes else None
    loss_sum = torch.zeros((), device=device)
    grad_sum = torch.zeros((), device=device)
    loss_count = skipped = 0
    last_val: dict = {}

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    while step < stop_step:
        if budget_s is not None and elapsed() >= budget_s:
            break
        progress = step / opts.steps
        if budget_s is not None:
            progress = max(progress, elapsed() / budget_s)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(opts.lr, opts.warmup, opts.final_lr_fraction,
                                               step, progress)

        clean = train_bank.sample_crops(opts.batch, opts.crop, sample_gen, opts.min_scale)
        pair = make_training_pair(clean, distort_gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.amp):
            output = net(pair.frame, pair.atlas, clamp=False)
        loss = (output.float() - pair.target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), opts.clip_grad)
        if not bool(torch.isfinite(grad_norm)):
            append_log(out, {"event": "skipped_step", "step": step, "reason": "non-finite gradient"})
            skipped += 1
            if skipped > 100:
                raise RuntimeError("Training diverged: over 100 steps with non-finite gradients.")
            continue
        optimizer.step()
        step += 1
        loss_sum += loss.detach()
        grad_sum += grad_norm.detach()
        loss_count += 1

        if step % opts.log_every == 0 or step == opts.steps:
            record = {"step": step, "loss": round(float(loss_sum) / loss_count, 6),
                      "grad_norm": round(float(grad_sum) / loss_count, 4),
                      "lr": optimizer.param_groups[0]["lr"], "elapsed_s": round(elapsed(), 1)}
            loss_sum.zero_()
            grad_sum.zero_()
            loss_count = 0
            if opts.val_every and step % opts.val_every == 0:
                last_val = evaluate(net, val_set)
                record.update(last_val)
            append_log(out, record)
        if opts.checkpoint_every and step % opts.checkpoint_every == 0:
            save_checkpoint(out, net, optimizer, step, elapsed(), generators,
                            distort_gen.device.type, WEIGHTS_KIND, opts.seed)

    save_checkpoint(out, net, optimizer, step, elapsed(), generators,
                            distort_gen.device.type, WEIGHTS_KIND, opts.seed)
    last_val = evaluate(net, val_set)
    event = "finished" if step >= opts.steps else "stopped"
    summary = {"event": event, "step": step, "elapsed_s": round(elapsed(), 1), **last_val}
    if opts.export:
        metadata = {
            "steps": step, "seed": opts.seed, "batch": opts.batch, "crop": opts.crop,
            "lr": opts.lr, "device": device_name(device), "wall_time_s": round(elapsed(), 1),
            "data": data_info, "validation": last_val,
            "validation_set": {"samples": len(val_set.target), "crop": opts.val_crop,
                               "seed": VAL_SEED, "val_fraction": opts.val_fraction},
            "parameters": count_parameters(net), "command": opts.command,
        }
        save_weights(opts.export, net, WEIGHTS_KIND, metadata)
        summary["exported"] = str(opts.export)
    append_log(out, summary)
    return summary


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


def build_validation_set(
    bank: ImageBank, samples: int, crop: int, min_scale: float
) -> ValidationSet:
    """Fixed validation pairs, made on the CPU so they are the same on every device."""
    if len(bank) == 0 or samples <= 0:
        empty = torch.zeros(0, 3, crop, crop)
        return ValidationSet(empty, empty, empty)
    gen = torch.Generator().manual_seed(VAL_SEED)
    clean = bank.sample_crops(samples, crop, gen, min_scale)
    # No identity samples: every validation frame is distorted (identity is measured apart).
    pair = make_training_pair(clean, gen, colour=ColourDistortionConfig(identity_prob=0.0))
    return ValidationSet(pair.frame, pair.atlas, pair.target)


@torch.no_grad()
def evaluate(net: NeuralFilterNet, val: ValidationSet, batch: int = 16) -> dict:
    """Mean per-sample PSNR (dB) of the output, the atlas input, the frame input, and of the
    output when the frame input is the clean image itself."""
    if len(val.target) == 0:
        return {}
    was_training = net.training
    net.eval()
    outputs, identities = [], []
    for i in range(0, len(val.target), batch):
        sl = slice(i, i + batch)
        outputs.append(net(val.frame[sl], val.atlas[sl]).float())
        identities.append(net(val.target[sl], val.atlas[sl]).float())
    net.train(was_training)
    return {
        "val_psnr_output": _rounded_psnr(torch.cat(outputs), val.target),
        "val_psnr_atlas": _rounded_psnr(val.atlas, val.target),
        "val_psnr_frame": _rounded_psnr(val.frame, val.target),
        "val_psnr_identity": _rounded_psnr(torch.cat(identities), val.target),
    }


def _sources(opts: FilterTrainOptions) -> dict:
    return {"images": list(opts.images), "video_frames": list(opts.video_frames),
            "cache": {os.path.basename(c): read_cache_sources(c) for c in opts.cache},
            "procedural": opts.procedural}


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


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
    p.add_argument("--out", default=d.out, help="run folder (log, checkpoints)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--min-scale", type=float, default=d.min_scale)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--final-lr-fraction", type=float, default=d.final_lr_fraction)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--clip-grad", type=float, default=d.clip_grad)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenCV threads (default: DEFLICKER_THREADS, else the CPUs not "
                        "busy with other work)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--val-samples", type=int, default=d.val_samples)
    p.add_argument("--val-crop", type=int, default=d.val_crop)
    p.add_argument("--val-every", type=int, default=d.val_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument("--max-side", type=int, default=d.max_side)
    p.add_argument("--session-steps", type=int, default=None, metavar="N",
                   help="stop after N steps of this session (continue later with --resume)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder")
    p.add_argument("--export", default=None, metavar="FILE", help="write final weights here")
    p.add_argument("--widths", default=",".join(map(str, d.widths)),
                   help="U-Net widths, comma-separated")
    p.add_argument("--head-width", type=int, default=d.head_width)
    p.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in fields(FilterTrainOptions)
              if hasattr(args, f.name)}
    values["widths"] = tuple(int(w) for w in args.widths.split(","))
    values["command"] = "python -m deflicker_impl.train " + " ".join(sys.argv[1:])
    opts = FilterTrainOptions(**values)
    try:
        train_filter(opts)
    except DeflickerInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _rounded_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(psnr(a, b), 3)
