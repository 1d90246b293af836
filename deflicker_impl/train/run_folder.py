"""A training run's folder, shared by every trainer: a JSON-lines log and resumable checkpoints.

Files: log.jsonl (one JSON object per record, also printed), checkpoint.safetensors (the model)
and checkpoint_state.pt (optimizer, step, elapsed time, random streams; read back with
weights_only=True). Both checkpoint files are replaced atomically and carry the step, so a run
killed while saving is detected instead of resumed from a mismatched pair.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import DeflickerInputError
from ..weights import load_weights, save_weights

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint_state.pt"
LOG = "log.jsonl"


def append_log(out: Path, record: dict) -> None:
    """Print `record` as one JSON line and append it to out/log.jsonl."""
    line = json.dumps(record)
    print(line, flush=True)
    with open(out / LOG, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def device_name(device: torch.device) -> str:
    """What the model card records as hardware."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def has_checkpoint(out: Path) -> bool:
    return (out / CHECKPOINT_STATE).exists()


def save_checkpoint(out: Path, net, optimizer, step: int, elapsed_s: float,
                    generators: dict[str, torch.Generator], device_type: str, kind: str,
                    seed: int) -> None:
    """Write model + training state for `--resume`. `net.config.to_json()` identifies the arch."""
    state = {"step": step, "elapsed_s": elapsed_s, "optimizer": optimizer.state_dict(),
             "device_type": device_type, "arch": net.config.to_json()}
    state.update({f"{name}_rng": gen.get_state() for name, gen in generators.items()})
    tmp = out / (CHECKPOINT_STATE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / CHECKPOINT_STATE)
    save_weights(out / CHECKPOINT, net, kind, {"step": step, "seed": seed})


def load_checkpoint(out: Path, net, optimizer, generators: dict[str, torch.Generator],
                    device_type: str, kind: str) -> tuple[int, float]:
    """Restore what `save_checkpoint` wrote; returns (step, elapsed seconds)."""
    state = torch.load(out / CHECKPOINT_STATE, map_location="cpu", weights_only=True)
    if state["arch"] != net.config.to_json():
        raise DeflickerInputError(
            f"The checkpoint in {out} is for network {state['arch']}, not "
            f"{net.config.to_json()}; use the same network options or another --out."
        )
    if state["device_type"] != device_type:
        raise DeflickerInputError(
            f"The checkpoint in {out} was trained on {state['device_type']}; resume it on the "
            "same kind of device (random streams differ between devices)."
        )
    meta = load_weights(out / CHECKPOINT, net, kind)
    if int(meta.get("step", -1)) != int(state["step"]):
        raise DeflickerInputError(
            f"{out / CHECKPOINT} (step {meta.get('step')}) and {out / CHECKPOINT_STATE} "
            f"(step {state['step']}) do not belong together (interrupted while saving?)."
        )
    optimizer.load_state_dict(state["optimizer"])
    for name, gen in generators.items():
        gen.set_state(state[f"{name}_rng"])
    return int(state["step"]), float(state["elapsed_s"])
