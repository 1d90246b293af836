"""Specification of the one training loop (train/loop.py) every trainer runs: steps with
non-finite gradients are skipped without counting, and a run that keeps producing them is
aborted instead of running on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from deflicker_impl.train.loop import MAX_SKIPPED_STEPS, TrainOptions, run_training
from deflicker_impl.weights import read_weights_metadata


class _Arch:
    def to_json(self) -> str:
        return json.dumps({"line": 1})


class _Line(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = _Arch()
        self.weight = nn.Parameter(torch.zeros(()))


class LineFit:
    """A stage fitting y = w * x; its loss is non-finite on the steps listed in `bad_calls`."""

    kind = "line"
    device_stream = "noise"

    def __init__(self, bad_calls):
        self.bad_calls, self.calls = set(bad_calls), 0

    def prepare(self):
        pass

    def build_net(self):
        return _Line()

    def data_info(self):
        return {}

    def to_device(self, device):
        pass

    def losses(self, net, sample_gen, device_gen, device):
        x = torch.rand(8, generator=sample_gen)
        loss = ((net.weight * x - 2 * x) ** 2).mean()
        if self.calls in self.bad_calls:
            loss = loss * float("nan")
        self.calls += 1
        return {"loss": loss}

    def evaluate(self, net):
        return {"w": round(float(net.weight.detach()), 4)}

    def export_metadata(self):
        return {}


def _options(tmp_path: Path, steps: int) -> TrainOptions:
    return TrainOptions(out=str(tmp_path / "run"), steps=steps, lr=0.3, warmup=1, device="cpu",
                        threads=1, val_every=0, log_every=5, checkpoint_every=0)


def _events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]


def test_steps_with_non_finite_gradients_are_skipped_and_do_not_count(tmp_path):
    summary = run_training(_options(tmp_path, 10), LineFit(bad_calls={0, 3, 4}))
    assert summary["event"] == "finished" and summary["step"] == 10
    skipped = [r for r in _events(tmp_path) if r.get("event") == "skipped_step"]
    assert [r["step"] for r in skipped] == [0, 2, 2]
    assert all(r["reason"] == "non-finite gradient" for r in skipped)
    assert 0.5 < summary["w"] < 2.5  # the finite steps still fit the line (w -> 2)


def test_a_run_that_keeps_producing_non_finite_gradients_is_aborted(tmp_path):
    stage = LineFit(bad_calls=range(1000))
    with pytest.raises(RuntimeError, match="diverged"):
        run_training(_options(tmp_path, 10), stage)
    assert stage.calls == MAX_SKIPPED_STEPS + 1
    assert not any("loss" in r for r in _events(tmp_path))



def test_a_fine_tuning_starts_from_the_given_weights_and_records_them(tmp_path):
    first = _options(tmp_path / "a", 30)
    first.export = str(tmp_path / "line.safetensors")
    fitted = run_training(first, LineFit(bad_calls=()))["w"]
    assert abs(fitted - 2.0) < 0.5
    tuned = _options(tmp_path / "b", 0)  # no step: the start is what the net holds
    tuned.init_weights, tuned.export = first.export, str(tmp_path / "tuned.safetensors")
    assert run_training(tuned, LineFit(bad_calls=()))["w"] == fitted
    scratch = run_training(_options(tmp_path / "c", 0), LineFit(bad_calls=()))["w"]
    assert scratch == 0.0
    source = json.loads(read_weights_metadata(tuned.export, "line")["fine_tuned_from"])
    assert source == {"file": "line.safetensors", "steps": 30, "device": "cpu",
                      "wall_time_s": source["wall_time_s"], "command": ""}
