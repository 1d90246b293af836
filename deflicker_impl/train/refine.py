"""Training of the local refinement net on short clean video sequences with synthetic flicker.

    python -m deflicker_impl.train refine --cache .traincache/refine_data.safetensors \
        --out runs/refine --steps N --batch 8 --crop 96 --lr 1e-3 --seed 0
        [--device auto] [--threads N] [--max-minutes M] [--resume] [--export FILE]
        [--init WEIGHTS] [--pingpong] [--clean-prob P]

`--init` fine-tunes existing weights; `--pingpong` also runs the net back over the reversed
frames (fidelity only), so the recurrence is trained on twice the sequence length (without it,
an 8-frame training let the output drift on 48-frame clips).

Data: the cache of scripts/build_refine_cache.py (clean frames of short sequences plus DIS flow
and occlusion masks computed on the CLEAN frames, t -> t-1 and t -> 0). Each step takes random
crops of random training sequences and makes the refinement's input O^f by adding synthetic
LOCAL flicker of the kind the neural filter leaves behind (smooth low-amplitude gain/offset
fields per channel that change every frame, plus a little global jitter), generated on the
training device from a seeded generator; some sequences stay clean ("do no harm").

The net is unrolled over the sequence (O_0 from the first frame with itself as "previous").
Loss per frame t >= 1, with W(x, flow) the backward warp and M the occlusion mask:

    |O_t - G_t|                                                  fidelity (every frame, t >= 0)
  + w_short * M_prev  |(O_t - W(O_{t-1})) - (G_t - W(G_{t-1}))|   short-term warping
  + w_long  * M_first |(O_t - W(O_0))     - (G_t - W(G_0))|       long-term warping

The warping terms compare the output's change along the motion with the clean clip's change, so
they push towards the clean clip's own temporal behaviour (real lighting changes, flow errors)
instead of towards a frozen picture, and never fight the fidelity term.

Validation: held-out clips (--val-clips, by name), every sequence with a fixed flicker (seed
VAL_SEED, the same for every training seed), mean PSNR and paper-style warping error (L1 over
non-occluded pixels, short + long term) of the input and of the output.

The loop is train/loop.py's. Output folder: log.jsonl, checkpoint.safetensors + checkpoint_state.pt (atomic, `--resume`
continues), and `--export FILE` writes the final weights with their provenance.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DeflickerInputError
from ..flow import warp_with_flow
from ..refine.apply import WEIGHTS_KIND
from ..refine.net import MOTION_MODES, OUTPUT_MODES, LocalRefineNet, RefineNetConfig
from ..weights import load_weights
from .loop import TrainOptions, add_common_options, options_from_args, run_command, run_training

VAL_SEED = 20180908
PARTS = ("frames", "flow_prev", "mask_prev", "flow_first", "mask_first")


@dataclass
class RefineTrainOptions(TrainOptions):
    out: str = "runs/refine"
    cache: list[str] = field(default_factory=list)
    val_clips: tuple[str, ...] = ("bedroom", "carphone_pristine")
    crop: int = 96
    warmup: int = 100
    w_short: float = 2.0
    w_long: float = 1.0
    clean_prob: float = 0.15  # sequences without flicker: the net must leave them alone
    local_sigma: float = 0.06  # std of the local log-gain field (per channel, per frame)
    offset_sigma: float = 0.02  # std of the local offset field
    global_sigma: float = 0.01  # std of the global per-channel gain/offset jitter
    val_every: int = 200
    pingpong: bool = False  # also unroll back over the reversed frames (fidelity only)
    init: str | None = None  # start from these weights (fine-tuning) instead of the identity
    half_width: int = RefineNetConfig().half_width
    quarter_width: int = RefineNetConfig().quarter_width
    hidden_width: int = RefineNetConfig().hidden_width
    residual_blocks: int = RefineNetConfig().residual_blocks
    output: str = RefineNetConfig().output
    motion: str = RefineNetConfig().motion
    # Share of the batch whose input is a stored atlas + filter output (caches built with
    # --pipeline-variants) instead of the clean crop with synthetic local flicker.
    pipeline_prob: float = 0.5


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Sequence:
    """One clean sequence: frames [T,3,H,W] float, flows [T-1,H,W,2], masks [T-1,H,W], and
    optionally `filtered` [K,T,3,H,W] float: our atlas + filter outputs of K flickered copies."""

    name: str
    frames: torch.Tensor
    flow_prev: torch.Tensor
    mask_prev: torch.Tensor
    flow_first: torch.Tensor
    mask_first: torch.Tensor
    filtered: torch.Tensor | None = None

    @property
    def clip(self) -> str:
        return self.name.split("__")[0]

    def to(self, device) -> Sequence:
        filtered = None if self.filtered is None else self.filtered.to(device)
        return Sequence(self.name, *(getattr(self, p).to(device) for p in PARTS), filtered)


def load_sequences(paths: list[str]) -> list[Sequence]:
    """All sequences of the given caches (scripts/build_refine_cache.py format)."""
    from safetensors import safe_open

    sequences = []
    for path in paths:
        if not Path(path).is_file():
            raise DeflickerInputError(
                f"Refinement cache {path} not found; build it with "
                "`python -m scripts.build_refine_cache`."
            )
        with safe_open(path, framework="pt") as handle:
            keys = set(handle.keys())
            names = sorted({k.rsplit("__", 1)[0] for k in keys})
            for name in names:
                t = {p: handle.get_tensor(f"{name}__{p}") for p in PARTS}
                filtered = None
                if f"{name}__filtered" in keys:
                    filtered = handle.get_tensor(f"{name}__filtered").permute(0, 1, 4, 2, 3)
                    filtered = filtered.float() / 255.0
                sequences.append(Sequence(
                    name, t["frames"].permute(0, 3, 1, 2).float() / 255.0,
                    t["flow_prev"].float(), t["mask_prev"].float(),
                    t["flow_first"].float(), t["mask_first"].float(), filtered))
    if not sequences:
        raise DeflickerInputError(f"No sequences in {paths}.")
    return sequences


def crop_batch(sequences: list[Sequence], batch: int, crop: int, gen: torch.Generator,
               pipeline_prob: float = 0.0) -> dict:
    """Random crops of random sequences -> dict of batched tensors (on the sequences' device):
    clean [B,T,3,c,c], flow_prev/flow_first [B,T-1,c,c,2], mask_prev/mask_first [B,T-1,c,c],
    filtered [B,T,3,c,c] and use_filtered [B] (1 where a stored pipeline output was drawn, with
    probability `pipeline_prob` for sequences that have one; else `filtered` is the clean crop).
    Masks are also cleared where the flow leaves the crop."""
    picks = torch.randint(len(sequences), (batch,), generator=gen).tolist()
    parts: dict[str, list] = {p: [] for p in (*PARTS, "filtered")}
    use_filtered = []
    for index in picks:
        seq = sequences[index]
        h, w = seq.frames.shape[-2:]
        c = min(crop, h, w)
        y0 = int(torch.randint(h - c + 1, (1,), generator=gen))
        x0 = int(torch.randint(w - c + 1, (1,), generator=gen))
        drawn = seq.filtered is not None and float(torch.rand(1, generator=gen)) < pipeline_prob
        variant = int(torch.randint(seq.filtered.shape[0], (1,), generator=gen)) if drawn else 0
        use_filtered.append(float(drawn))
        for p in (*PARTS, "filtered"):
            part = seq.filtered[variant] if (p == "filtered" and drawn) else getattr(
                seq, "frames" if p == "filtered" else p)
            if p in ("frames", "filtered"):
                part = part[..., y0:y0 + c, x0:x0 + c]
            else:
                part = part[:, y0:y0 + c, x0:x0 + c]
            if c < crop:  # a short clip: stretch (rare; keeps the batch rectangular)
                part = _resize_part(part, p, crop, c)
            parts[p].append(part)
    out = {p: torch.stack(v) for p, v in parts.items()}
    out["use_filtered"] = torch.tensor(use_filtered, device=out["frames"].device)
    for kind in ("prev", "first"):
        out[f"mask_{kind}"] = out[f"mask_{kind}"] * _inside(out[f"flow_{kind}"])
    out["clean"] = out.pop("frames")
    return out


def _resize_part(part: torch.Tensor, name: str, size: int, c: int) -> torch.Tensor:
    if name in ("frames", "filtered"):
        return F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False)
    if name.startswith("flow"):
        x = F.interpolate(part.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                          align_corners=False) * (size / c)
        return x.permute(0, 2, 3, 1)
    return F.interpolate(part[:, None], size=(size, size), mode="nearest")[:, 0]


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """[...,H,W,2] -> [...,H,W] 1 where x + flow lands inside the frame."""
    h, w = flow.shape[-3:-1]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device),
                            torch.arange(w, device=flow.device), indexing="ij")
    x = xs + flow[..., 0]
    y = ys + flow[..., 1]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).float()


def add_local_flicker(
    clean: torch.Tensor, gen: torch.Generator, opts: RefineTrainOptions, strength=None
) -> torch.Tensor:
    """clean [B,T,3,H,W] -> flickered [B,T,3,H,W] in 0..1 (on clean's device, from `gen`, which
    must live on that device). `strength` [B] scales each sequence's flicker (default: random
    in 0..1, zero with probability opts.clean_prob)."""
    b, t, _, h, w = clean.shape
    dev = clean.device

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=dev)

    if strength is None:
        strength = torch.rand(b, generator=gen, device=dev)
        strength = strength * (torch.rand(b, generator=gen, device=dev) >= opts.clean_prob)
    s = strength.view(b, 1, 1, 1, 1)
    cells = int(torch.randint(2, 6, (1,), generator=gen, device=dev))
    coarse = randn(b * t, 6, cells, cells)
    fields = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    fields = fields.view(b, t, 6, h, w)
    log_gain = fields[:, :, :3] * opts.local_sigma + randn(b, t, 3, 1, 1) * opts.global_sigma
    offset = fields[:, :, 3:] * opts.offset_sigma + randn(b, t, 3, 1, 1) * opts.global_sigma
    out = clean * torch.exp(log_gain * s) + offset * s
    return out.clamp(0.0, 1.0)


# --- losses and metrics ------------------------------------------------------------------------


def unroll(net: LocalRefineNet, flickered: torch.Tensor, clamp: bool,
           flows: torch.Tensor | None = None,
           valid: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Run the net over [B,T,3,H,W] -> list of T outputs [B,3,H,W]. `flows` [B,T-1,H,W,2]
    (frame t -> t-1, index t-1) and their validity `valid` [B,T-1,H,W] feed nets that align
    with motion."""
    first = flickered[:, 0]
    out, state = net(first, first, first, None, clamp=clamp)
    outputs = [out]
    for t in range(1, flickered.shape[1]):
        flow = None if flows is None else flows[:, t - 1]
        ok = None if valid is None else valid[:, t - 1]
        out, state = net(flickered[:, t], flickered[:, t - 1], outputs[-1], state, clamp=clamp,
                         flow=flow, valid=ok)
        outputs.append(out)
    return outputs


def _masked_l1(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """diff [B,3,H,W], mask [B,H,W] -> scalar mean |diff| over valid pixels."""
    err = diff.abs().mean(1) * mask
    return err.sum() / mask.sum().clamp_min(1.0)


def refine_loss(outputs: list[torch.Tensor], batch: dict, opts: RefineTrainOptions) -> dict:
    clean = batch["clean"]
    fidelity = sum((o - clean[:, t]).abs().mean() for t, o in enumerate(outputs)) / len(outputs)
    short = long = torch.zeros((), device=clean.device)
    for t in range(1, len(outputs)):
        fp, fl = batch["flow_prev"][:, t - 1], batch["flow_first"][:, t - 1]
        change = outputs[t] - warp_with_flow(outputs[t - 1], fp)
        change_clean = clean[:, t] - warp_with_flow(clean[:, t - 1], fp)
        short = short + _masked_l1(change - change_clean, batch["mask_prev"][:, t - 1])
        drift = outputs[t] - warp_with_flow(outputs[0], fl)
        drift_clean = clean[:, t] - warp_with_flow(clean[:, 0], fl)
        long = long + _masked_l1(drift - drift_clean, batch["mask_first"][:, t - 1])
    steps = max(1, len(outputs) - 1)
    short, long = short / steps, long / steps
    total = fidelity + opts.w_short * short + opts.w_long * long
    return {"loss": total, "fidelity": fidelity, "short": short, "long": long}


def pingpong_loss(net: LocalRefineNet, flickered: torch.Tensor, batch: dict,
                  opts: RefineTrainOptions) -> dict:
    """refine_loss over the sequence; with opts.pingpong the net then runs on back over the
    reversed frames (t = T-2 .. 0) and those outputs add a fidelity term: the recurrence must
    stay faithful for twice the sequence length (no flow needed, so none is used there)."""
    t = flickered.shape[1]
    if not opts.pingpong or t < 2:
        return refine_loss(unroll(net, flickered, clamp=False, flows=batch["flow_prev"],
                                  valid=batch["mask_prev"]), batch, opts)
    back = flickered[:, :-1].flip(1)
    outputs = unroll(net, torch.cat([flickered, back], dim=1), clamp=False)
    losses = refine_loss(outputs[:t], batch, opts)
    clean_back = batch["clean"][:, :-1].flip(1)
    extra = sum((o - clean_back[:, i]).abs().mean() for i, o in enumerate(outputs[t:]))
    extra = extra / (t - 1)
    losses["fidelity"] = (losses["fidelity"] + extra) / 2
    losses["loss"] = losses["loss"] + extra
    return losses


def warping_error(clip: list[torch.Tensor], seq: Sequence) -> float:
    """Paper-style warping error of a sequence's outputs (list of [1,3,H,W]) with its clean flows."""
    total = 0.0
    for t in range(1, len(clip)):
        fp, fl = seq.flow_prev[t - 1][None], seq.flow_first[t - 1][None]
        total += float(_masked_l1(clip[t] - warp_with_flow(clip[t - 1], fp),
                                  seq.mask_prev[t - 1][None]))
        total += float(_masked_l1(clip[t] - warp_with_flow(clip[0], fl),
                                  seq.mask_first[t - 1][None]))
    return total / max(1, len(clip) - 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean().clamp_min(1e-10))
    return -10 * math.log10(mse)


def build_validation(sequences: list[Sequence], opts: RefineTrainOptions) -> list[tuple]:
    """(sequence, flickered [1,T,3,H,W]) for every held-out sequence; made on the CPU with
    VAL_SEED at full flicker strength, so it is the same on every device and for every seed.
    Sequences with stored pipeline outputs also give one pair per output (our atlas + filter
    output as the input), named "<sequence>@pipeline<k>"."""
    gen = torch.Generator().manual_seed(VAL_SEED)
    val = []
    for seq in sequences:
        val.append((seq, add_local_flicker(seq.frames[None], gen, opts, strength=torch.ones(1))))
        if seq.filtered is not None:
            val += [(seq, seq.filtered[k][None]) for k in range(seq.filtered.shape[0])]
    return val


@torch.no_grad()
def evaluate(net: LocalRefineNet, val: list[tuple], device: torch.device) -> dict:
    """Mean PSNR and warping error of input and output on the validation sequences, plus the
    PSNR of the output when the input is already clean (do no harm)."""
    if not val:
        return {}
    was_training = net.training
    net.eval()
    sums = {k: 0.0 for k in ("psnr_in", "psnr_out", "warp_in", "warp_out", "warp_clean",
                             "psnr_identity")}
    for seq, flickered in val:
        seq_d = seq.to(device)
        flickered = flickered.to(device)
        flows, valid = seq_d.flow_prev[None], seq_d.mask_prev[None]
        outs = unroll(net, flickered, clamp=True, flows=flows, valid=valid)
        frames_in = [flickered[:, t] for t in range(flickered.shape[1])]
        clean = [seq_d.frames[t][None] for t in range(seq_d.frames.shape[0])]
        identity = unroll(net, seq_d.frames[None], clamp=True, flows=flows, valid=valid)
        sums["psnr_in"] += sum(_psnr(a, b) for a, b in zip(frames_in, clean)) / len(clean)
        sums["psnr_out"] += sum(_psnr(a, b) for a, b in zip(outs, clean)) / len(clean)
        sums["psnr_identity"] += sum(_psnr(a, b) for a, b in zip(identity, clean)) / len(clean)
        sums["warp_in"] += warping_error(frames_in, seq_d)
        sums["warp_out"] += warping_error(outs, seq_d)
        sums["warp_clean"] += warping_error(clean, seq_d)
    net.train(was_training)
    n = len(val)
    return {f"val_{k}": round(v / n, 5 if k.startswith("warp") else 3) for k, v in sums.items()}


# --- the stage's hooks ---------------------------------------------------------------------


class RefineTraining:
    """The refinement's hooks of the training loop: random crops of the training sequences
    with synthetic local flicker (or stored pipeline outputs), the net unrolled over them,
    fidelity + warping losses."""

    kind = WEIGHTS_KIND
    device_stream = "flicker"

    def __init__(self, opts: RefineTrainOptions):
        self.opts = opts

    def prepare(self) -> None:
        opts = self.opts
        self.sequences = load_sequences(opts.cache)
        val_names = set(opts.val_clips)
        self.train_seqs = [s for s in self.sequences if s.clip not in val_names]
        self.val_seqs = [s for s in self.sequences if s.clip in val_names]
        if not self.train_seqs:
            raise DeflickerInputError("No training sequences left after holding out "
                                      "--val-clips.")
        self.val = build_validation(self.val_seqs, opts)

    def build_net(self) -> LocalRefineNet:
        opts = self.opts
        if opts.pingpong and opts.motion == "flow":
            raise DeflickerInputError("--pingpong needs backward flows the cache does not hold; "
                                      "use it only with --motion none.")
        net = LocalRefineNet(RefineNetConfig(opts.half_width, opts.quarter_width,
                                             opts.hidden_width, opts.residual_blocks,
                                             opts.output, opts.motion))
        if opts.init:
            load_weights(opts.init, net, WEIGHTS_KIND)
        return net

    def data_info(self) -> dict:
        return {"caches": [os.path.basename(c) for c in self.opts.cache],
                "train_sequences": len(self.train_seqs), "val_sequences": len(self.val_seqs),
                "train_clips": sorted({s.clip for s in self.train_seqs}),
                "val_clips": sorted({s.clip for s in self.val_seqs}),
                "frames_per_sequence": int(self.sequences[0].frames.shape[0])}

    def to_device(self, device: torch.device) -> None:
        self.device = device
        self.train_seqs = [s.to(device) for s in self.train_seqs]

    def losses(self, net, sample_gen, device_gen, device) -> dict[str, torch.Tensor]:
        opts = self.opts
        batch = crop_batch(self.train_seqs, opts.batch, opts.crop, sample_gen,
                           opts.pipeline_prob)
        flickered = add_local_flicker(batch["clean"], device_gen, opts)
        use = batch["use_filtered"].view(-1, 1, 1, 1, 1)
        flickered = use * batch["filtered"] + (1 - use) * flickered
        return pingpong_loss(net, flickered, batch, opts)

    def evaluate(self, net) -> dict:
        return evaluate(net, self.val, self.device)

    def export_metadata(self) -> dict:
        opts = self.opts
        return {
            "losses": {"w_short": opts.w_short, "w_long": opts.w_long},
            "flicker": {"local_sigma": opts.local_sigma, "offset_sigma": opts.offset_sigma,
                        "global_sigma": opts.global_sigma, "clean_prob": opts.clean_prob,
                        "pipeline_prob": opts.pipeline_prob},
            "validation_set": {"sequences": len(self.val), "seed": VAL_SEED},
            "init": os.path.basename(opts.init) if opts.init else None,
        }


def train_refine(opts: RefineTrainOptions) -> dict:
    """Run (or continue) a training; returns the final summary (also the last log line)."""
    return run_training(opts, RefineTraining(opts))


# --- command line -------------------------------------------------------------------------------


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register the `refine` subcommand."""
    d = RefineTrainOptions()
    p = subparsers.add_parser("refine", help="train the local refinement net on video sequences",
                              description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cache", action="append", default=[], metavar="FILE", required=True,
                   help="sequence cache from scripts/build_refine_cache.py; repeatable")
    p.add_argument("--val-clips", default=",".join(d.val_clips),
                   help="clip names held out for validation, comma-separated")
    add_common_options(p, d)
    for name in ("half_width", "quarter_width", "hidden_width", "residual_blocks"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("w_short", "w_long", "clean_prob", "local_sigma", "offset_sigma",
                 "global_sigma", "pipeline_prob"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--output", default=d.output, choices=OUTPUT_MODES,
                   help="what the net predicts (see deflicker_impl/refine/net.py)")
    p.add_argument("--motion", default=d.motion, choices=MOTION_MODES,
                   help="align the previous frames and the state with optical flow")
    p.add_argument("--pingpong", action="store_true",
                   help="unroll on over the reversed frames (fidelity only): longer recurrence")
    p.add_argument("--init", default=None, metavar="FILE",
                   help="start from these local_refine weights (fine-tuning)")
    p.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    val_clips = tuple(c for c in args.val_clips.split(",") if c)
    return run_command(train_refine,
                       options_from_args(args, RefineTrainOptions, val_clips=val_clips))
