"""The one training loop of every network, with per-stage hooks.

A stage (`TrainingStage`: the filter in train/filter.py, the refinement in train/refine.py)
says what its data, network, losses, validation and model-card metadata are; the loop does
the rest the same way for both: the thread choice, the seeded network initialisation and
random streams, the warm-up + cosine learning rate, gradient clipping, skipping steps with
non-finite gradients (and aborting when a run keeps producing them), the JSON-lines log,
atomic checkpoints that `--resume` continues to the same weights as an uninterrupted run, the
wall-clock budget and the export of the final weights with their provenance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..device import resolve_device
from ..errors import DeflickerInputError
from ..threads import choose_threads, set_threads
from ..weights import count_parameters, load_weights, read_weights_metadata, save_weights
from .run_folder import (
    LOG,
    append_log,
    device_name,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .schedule import warmup_cosine_lr

MAX_SKIPPED_STEPS = 100  # steps with non-finite gradients tolerated before a run is aborted


@dataclass
class TrainOptions:
    """Options every trainer has (each stage's options add their own and their defaults)."""

    out: str = "runs/train"
    steps: int = 20000
    batch: int = 8
    crop: int = 128
    lr: float = 1e-3
    final_lr_fraction: float = 0.05  # cosine decay from lr to lr * this
    warmup: int = 200
    clip_grad: float = 1.0  # max gradient norm (a safety net: no normalisation layers)
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    val_every: int = 500
    log_every: int = 50
    checkpoint_every: int = 500
    max_minutes: float | None = None  # stop (checkpoint, export) after this wall time
    session_steps: int | None = None  # stop after this many steps now; --resume continues
    resume: bool = False
    export: str | None = None
    init_weights: str | None = None  # fine-tune: start from these weights, not from the seed
    command: str = ""  # the command line, recorded in the exported weights


class TrainingStage(Protocol):
    """What a trainer adds to the loop. Hooks are called in this order: `prepare` (data, on
    the CPU), `build_net` (after the seed is set), `data_info`, `to_device`, then per step
    `losses`, and `evaluate` / `export_metadata` at validation and export time."""

    kind: str  # the weights kind (weights.py), e.g. "neural_filter"
    device_stream: str  # name of the random stream on the training device, e.g. "distort"

    def prepare(self) -> None: ...

    def build_net(self) -> nn.Module: ...

    def data_info(self) -> dict: ...

    def to_device(self, device: torch.device) -> None: ...

    def losses(self, net: nn.Module, sample_gen: torch.Generator,
               device_gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """The losses of one step from the next random batch; "loss" (first) is minimised,
        every entry is averaged into the log."""

    def evaluate(self, net: nn.Module) -> dict: ...

    def export_metadata(self) -> dict: ...


def run_training(opts: TrainOptions, stage: TrainingStage) -> dict:
    """Run (or continue) a training; returns the final summary (also the last log line)."""
    set_threads(choose_threads(opts.threads).count)  # None: the pack's choice (threads.py)
    device = resolve_device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convs
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    stage.prepare()
    torch.manual_seed(opts.seed)  # network initialisation
    net = stage.build_net()
    if opts.init_weights and not (opts.resume and has_checkpoint(out)):
        load_weights(opts.init_weights, net, stage.kind)
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=opts.lr)
    sample_gen = torch.Generator().manual_seed(opts.seed)
    device_gen = torch.Generator(device=device).manual_seed(opts.seed + 1)
    generators = {"sample": sample_gen, stage.device_stream: device_gen}

    step, elapsed_before = 0, 0.0
    if opts.resume and has_checkpoint(out):
        step, elapsed_before = load_checkpoint(out, net, optimizer, generators,
                                               device_gen.device.type, stage.kind)
        append_log(out, {"event": "resumed", "step": step})
    elif not opts.resume and (out / LOG).exists():
        (out / LOG).unlink()  # a fresh run starts a fresh log

    data_info = stage.data_info()
    stop_step = opts.steps
    if opts.session_steps is not None:
        stop_step = min(opts.steps, step + opts.session_steps)
    if step == 0:
        append_log(out, {"event": "start", "parameters": count_parameters(net),
                         "device": str(device), "options": _jsonable(asdict(opts)),
                         "data": data_info})

    stage.to_device(device)
    started = time.perf_counter()
    budget_s = opts.max_minutes * 60 if opts.max_minutes else None
    sums: dict[str, torch.Tensor] = {}
    grad_sum = torch.zeros((), device=device)
    count = skipped = 0

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    def checkpoint() -> None:
        save_checkpoint(out, net, optimizer, step, elapsed(), generators,
                        device_gen.device.type, stage.kind, opts.seed)

    while step < stop_step:
        if budget_s is not None and elapsed() >= budget_s:
            break
        progress = step / opts.steps
        if budget_s is not None:
            progress = max(progress, elapsed() / budget_s)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(opts.lr, opts.warmup, opts.final_lr_fraction,
                                           step, progress)

        losses = stage.losses(net, sample_gen, device_gen, device)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), opts.clip_grad)
        if not bool(torch.isfinite(grad_norm)):  # also what a non-finite loss leads to
            append_log(out, {"event": "skipped_step", "step": step,
                             "reason": "non-finite gradient"})
            skipped += 1
            if skipped > MAX_SKIPPED_STEPS:
                raise RuntimeError(f"Training diverged: over {MAX_SKIPPED_STEPS} steps with "
                                   "non-finite gradients.")
            continue
        optimizer.step()
        step += 1
        for name, value in losses.items():
            sums[name] = sums.get(name, torch.zeros((), device=device)) + value.detach()
        grad_sum += grad_norm.detach()
        count += 1

        if step % opts.log_every == 0 or step == opts.steps:
            record = {"step": step, **{k: round(float(v) / count, 6) for k, v in sums.items()},
                      "grad_norm": round(float(grad_sum) / count, 4),
                      "lr": optimizer.param_groups[0]["lr"], "elapsed_s": round(elapsed(), 1)}
            sums.clear()
            grad_sum.zero_()
            count = 0
            if opts.val_every and step % opts.val_every == 0:
                record.update(stage.evaluate(net))
            append_log(out, record)
        if opts.checkpoint_every and step % opts.checkpoint_every == 0:
            checkpoint()

    checkpoint()
    last_val = stage.evaluate(net)
    event = "finished" if step >= opts.steps else "stopped"
    summary = {"event": event, "step": step, "elapsed_s": round(elapsed(), 1), **last_val}
    if opts.export:
        metadata = {
            "steps": step, "seed": opts.seed, "batch": opts.batch, "crop": opts.crop,
            "lr": opts.lr, "device": device_name(device), "wall_time_s": round(elapsed(), 1),
            "data": data_info, "validation": last_val, **stage.export_metadata(),
            "parameters": count_parameters(net), "command": opts.command,
        }
        if opts.init_weights:
            metadata["fine_tuned_from"] = _fine_tuned_from(opts.init_weights, stage.kind)
        save_weights(opts.export, net, stage.kind, metadata)
        summary["exported"] = str(opts.export)
    append_log(out, summary)
    return summary


def _fine_tuned_from(path: str, kind: str) -> dict:
    """What the starting weights of a fine-tuning were: their file and their own training."""
    meta = read_weights_metadata(path, kind)
    keep = ("steps", "device", "wall_time_s", "command", "fine_tuned_from")
    return {"file": Path(path).name, **{k: _json_or_text(meta[k]) for k in keep if k in meta}}


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


# --- command line -------------------------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser, defaults: TrainOptions) -> None:
    """The command-line options of TrainOptions, with the stage's defaults."""
    d = defaults
    parser.add_argument("--out", default=d.out, help="run folder (log, checkpoints)")
    for name in ("steps", "batch", "crop", "warmup", "seed", "val_every", "log_every",
                 "checkpoint_every"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "final_lr_fraction", "clip_grad"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/OpenCV threads (default: DEFLICKER_THREADS, else the CPUs "
                             "not busy with other work)")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    parser.add_argument("--session-steps", type=int, default=None, metavar="N",
                        help="stop after N steps of this session (continue later with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder")
    parser.add_argument("--export", default=None, metavar="FILE",
                        help="write final weights here")
    parser.add_argument("--init-weights", default=None, metavar="FILE",
                        help="fine-tune: start from these weights (e.g. the shipped ones)")


def options_from_args(args: argparse.Namespace, options_type: type, **overrides):
    """The stage's options from parsed arguments (`overrides` for values parsed by hand),
    recording the command line."""
    values = {f.name: getattr(args, f.name) for f in fields(options_type)
              if hasattr(args, f.name)}
    values.update(overrides)
    values["command"] = "python -m deflicker_impl.train " + " ".join(sys.argv[1:])
    return options_type(**values)


def run_command(train, opts: TrainOptions) -> int:
    """Exit code of a trainer's command: 0, or 2 with the one-line error on bad input."""
    try:
        train(opts)
    except DeflickerInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
