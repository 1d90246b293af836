"""Specification of the filter's training: it lowers the loss, exports loadable weights, and a
resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from deflicker_impl.filter.apply import FilterConfig, load_neural_filter
from deflicker_impl.filter.net import FilterNetConfig
from deflicker_impl.train.filter import FilterTrainOptions, train_filter
from deflicker_impl.train.image_bank import ImageBank

pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py
SMALL = FilterNetConfig(widths=(8, 12, 16), head_width=8)


def _smoke_options(tmp_path: Path, out: str, **overrides) -> FilterTrainOptions:
    images = tmp_path / "images"
    if not images.exists():
        from PIL import Image

        images.mkdir()
        for i, im in enumerate(ImageBank.procedural(10, 64, 80, seed=3).images):
            Image.fromarray(im.numpy()).save(images / f"scene_{i}.png")
    base = FilterTrainOptions(
        out=str(tmp_path / out), images=[str(images)], steps=40, batch=4, crop=32, lr=3e-3,
        warmup=5, seed=0, device="cpu", val_fraction=0.2, val_samples=8, val_every=20,
        log_every=10, checkpoint_every=20, val_crop=32, widths=SMALL.widths,
        head_width=SMALL.head_width)
    return dataclasses.replace(base, **overrides)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_exports_loadable_weights(tmp_path):
    opts = _smoke_options(tmp_path, "run", steps=60, batch=8, lr=1e-2, log_every=15,
                          export=str(tmp_path / "w.safetensors"))
    summary = train_filter(opts)
    losses = [r["loss"] for r in _log(tmp_path / "run") if "loss" in r]
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    # The net starts as the identity, i.e. at the frame input's PSNR on the fixed validation set.
    assert summary["val_psnr_output"] > summary["val_psnr_frame"] + 1.0
    net = load_neural_filter(FilterConfig(weights_path=tmp_path / "w.safetensors", device="cpu"))
    assert net.config == SMALL


def test_resumed_training_equals_an_uninterrupted_run(tmp_path):
    train_filter(_smoke_options(tmp_path, "whole", steps=12, export=str(tmp_path / "a.st")))
    train_filter(_smoke_options(tmp_path, "parts", steps=12, session_steps=5))
    train_filter(_smoke_options(tmp_path, "parts", steps=12, resume=True,
                                export=str(tmp_path / "b.st")))
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a.st"), load_file(tmp_path / "b.st")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    events = [r.get("event") for r in _log(tmp_path / "parts")]
    assert "stopped" in events and "resumed" in events and events[-1] == "finished"
