"""Saving and loading network weights (safetensors only, never pickle).

A weights file carries its own description in the safetensors metadata (string -> string):
`kind` (which network it is for, e.g. "neural_filter"), `arch` (the network config as JSON),
and whatever the trainer adds (steps, seed, data, validation figures). Loading checks all of it
and turns every failure into a WeightsError that names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .device import preferred_memory_format
from .errors import WeightsError

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_weights_path(name: str) -> Path:
    """The shipped weights file `name` in the pack's weights/ folder."""
    return REPO_ROOT / "weights" / name


def resolve_weights_path(weights_path: str | os.PathLike | None, shipped_name: str) -> Path:
    """The weights file a stage's config names: `weights_path`, or the shipped file
    `shipped_name` when it is None or empty."""
    if weights_path is None or str(weights_path) == "":
        return default_weights_path(shipped_name)
    return Path(weights_path)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of a network (model cards, training logs)."""
    return sum(p.numel() for p in model.parameters())


def save_weights(
    path: str | os.PathLike,
    model: nn.Module,
    kind: str,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model's state dict as safetensors with {"kind", "arch", **metadata}.

    Non-string metadata values are stored as JSON. The file is written to a temporary name and
    renamed, so a crash never leaves a half-written file under the real name.
    """
    path = Path(path)
    meta = {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in (metadata or {}).items()}
    meta["kind"] = kind
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json"):
        meta["arch"] = config.to_json()
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; weights are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_weights_metadata(path: str | os.PathLike, kind: str | None = None) -> dict[str, str]:
    """The metadata of a weights file, after checking that it exists, is a readable safetensors
    file and (when `kind` is given) was made for that kind of network."""
    path = Path(path)
    with _open(path) as handle:
        meta = dict(handle.metadata() or {})
    _check_kind(path, meta, kind)
    return meta


def load_weights(path: str | os.PathLike, model: nn.Module, kind: str) -> dict[str, str]:
    """Load a safetensors file into `model` (in place) and return its metadata.

    Raises WeightsError naming the file when it is missing, unreadable (truncated, corrupt, not
    safetensors), made for another kind of network, or has missing/unexpected/mis-shaped tensors.
    """
    path = Path(path)
    expected = model.state_dict()
    with _open(path) as handle:
        meta = dict(handle.metadata() or {})
        _check_kind(path, meta, kind)
        names = set(handle.keys())
        missing = sorted(set(expected) - names)
        unexpected = sorted(names - set(expected))
        if missing or unexpected:
            raise WeightsError(
                f"Weights file {path} does not fit this {kind} network: "
                f"{len(missing)} tensor(s) missing (e.g. {missing[:3]}), {len(unexpected)} "
                f"unexpected (e.g. {unexpected[:3]}). It was made for another network or "
                "version; use the file shipped with this pack or retrain."
            )
        tensors = {}
        for name in expected:
            try:
                tensor = handle.get_tensor(name)
            except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
                raise WeightsError(
                    f"Weights file {path} is damaged (tensor {name!r} cannot be read: {exc}). "
                    "Re-download or re-export it."
                ) from exc
            if tuple(tensor.shape) != tuple(expected[name].shape):
                raise WeightsError(
                    f"Weights file {path} has tensor {name!r} of shape {tuple(tensor.shape)}, "
                    f"but this network needs {tuple(expected[name].shape)}. The file was made "
                    "for a network of another size; use a matching file or retrain."
                )
            if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
                raise WeightsError(
                    f"Weights file {path} is damaged: tensor {name!r} holds NaN or infinite "
                    "values (a diverged training run or a corrupt copy). Use the file shipped "
                    "with this pack or retrain.")
            tensors[name] = tensor
    model.load_state_dict(tensors, strict=True)
    return meta


def check_network_output(output: torch.Tensor, net: nn.Module, label: str) -> torch.Tensor:
    """`output` if all its values are finite; else a WeightsError naming the weights file the
    network came from (set by `load_network`): NaN or inf from a net would otherwise become a
    black or white video written with success."""
    if not bool(torch.isfinite(output).all()):
        source = getattr(net, "weights_path", None)
        where = f"weights file {source}" if source else "the network given to it"
        raise WeightsError(
            f"{label} produced NaN or infinite values; {where} is probably damaged or "
            "incompatible (or the device's precision overflowed). Use the shipped weights, or "
            "dtype float32.")
    return output


@contextmanager
def _open(path: Path) -> Iterator:
    """safe_open, with WeightsError for a missing or unreadable file."""
    if not path.is_file():
        raise WeightsError(
            f"Weights file {path} not found. Put the file there, or choose another file "
            "(shipped weights live in the pack's weights/ folder)."
        )
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"Weights file {path} cannot be read as safetensors ({exc}). It is probably "
            "truncated or corrupt (an interrupted download or copy); replace it."
        ) from exc
    with handle as opened:
        yield opened


def _check_kind(path: Path, meta: Mapping[str, str], kind: str | None) -> None:
    if kind is None:
        return
    found = meta.get("kind")
    if found != kind:
        raise WeightsError(
            f"Weights file {path} is for {found or 'an unknown network'!s}, not for {kind}. "
            f"Pick a {kind} weights file."
        )


def load_network(
    path: str | os.PathLike,
    kind: str,
    network_class: type[nn.Module],
    config_from_json,
    device: str,
    dtype=None,
    *,
    label: str = "Network",
    shipped_name: str | None = None,
    train_stage: str | None = None,
) -> nn.Module:
    """The network a weights file describes: built from its 'arch' metadata with
    `network_class(config_from_json(arch))`, loaded, frozen, in eval mode on `device`.

    Cached per (file, its modification time and size, device, dtype): nodes call this on every
    run, and a re-exported file is picked up. A missing file raises WeightsError naming it, the
    file the pack ships (`shipped_name`) and the training command (`train_stage`).
    """
    if not Path(path).is_file():
        fixes = [f"put back weights/{shipped_name} (the pack ships it)"] if shipped_name else []
        fixes.append("pick another file")
        if train_stage:
            fixes.append(f"train one with `python -m deflicker_impl.train {train_stage} ... "
                         "--export FILE`")
        raise WeightsError(f"{label} weights {path} not found: {', '.join(fixes)}.")
    stat = os.stat(path)
    return _load_network_cached(str(path), stat.st_mtime_ns, stat.st_size, kind, network_class,
                                config_from_json, device, dtype)


@lru_cache(maxsize=8)
def _load_network_cached(path, mtime_ns, size, kind, network_class, config_from_json, device,
                         dtype) -> nn.Module:
    meta = read_weights_metadata(path, kind=kind)
    try:
        arch = config_from_json(meta["arch"])
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(
            f"Weights file {path} has no valid network description ('arch' metadata): {exc}. "
            "Export it with the training command of this pack."
        ) from exc
    net = network_class(arch)
    load_weights(path, net, kind=kind)
    net = net.to(device=torch.device(device), dtype=dtype,
                 memory_format=preferred_memory_format(torch.device(device))).eval()
    net.requires_grad_(False)
    net.weights_path = str(path)  # named by check_network_output
    return net


def networks_loaded() -> int:
    """How many networks this process has read from weights files so far (cache misses of
    `load_network`): the batch reports it to show that a worker loads each network once."""
    return _load_network_cached.cache_info().misses
