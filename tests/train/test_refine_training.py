"""Specification of the refinement's training: seeded, resumable to the same weights, and
validated with the paper's warping error."""

from __future__ import annotations

import json

import pytest
import torch
from stage_nets import local_flicker
from synthetic_clips import panning_clip

from deflicker_impl.evaluation.metrics import compute_warp_reference
from deflicker_impl.train.refine import RefineTrainOptions, train_refine

pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py


def tiny_cache(path, clips=("trainclip", "valclip"), frames: int = 4, h: int = 24, w: int = 32):
    """A refinement cache in scripts/build_refine_cache.py's format, from panning clips."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, clip_name in enumerate(clips):
        clean = panning_clip(frames, h, w, speed=1.0, seed=k)
        ref = compute_warp_reference(clean)
        name = f"{clip_name}__s0"
        tensors[f"{name}__frames"] = (clean * 255).round().to(torch.uint8).contiguous()
        tensors[f"{name}__flow_prev"] = ref.flow_prev.half().contiguous()
        tensors[f"{name}__mask_prev"] = ref.mask_prev.to(torch.uint8).contiguous()
        tensors[f"{name}__flow_first"] = ref.flow_first.half().contiguous()
        tensors[f"{name}__mask_first"] = ref.mask_first.to(torch.uint8).contiguous()
        # Stand-ins for stored atlas + filter outputs: two flickered copies.
        filtered = torch.stack([local_flicker(clean, seed=s) for s in (1, 2)])
        tensors[f"{name}__filtered"] = (filtered * 255).round().to(torch.uint8).contiguous()
    save_file(tensors, str(path))
    return path


def small_options(tmp_path, **overrides) -> RefineTrainOptions:
    values = {"out": str(tmp_path / "run"),
              "cache": [str(tiny_cache(tmp_path / "c.safetensors"))],
              "val_clips": ("valclip",), "steps": 4, "batch": 2, "crop": 16, "device": "cpu",
              "val_every": 2, "log_every": 2, "checkpoint_every": 2, "half_width": 4,
              "quarter_width": 4, "hidden_width": 4, "residual_blocks": 1, "pipeline_prob": 0.5}
    values.update(overrides)
    return RefineTrainOptions(**values)


def test_training_is_seeded_and_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    full = train_refine(small_options(tmp_path / "a", export=str(tmp_path / "a.safetensors")))
    assert full["event"] == "finished" and full["step"] == 4
    train_refine(small_options(tmp_path / "b", session_steps=2))
    resumed = train_refine(small_options(tmp_path / "b", resume=True,
                                         export=str(tmp_path / "b.safetensors")))
    assert resumed["step"] == 4
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "a" / "run" / "log.jsonl").open()]
    assert any("val_warp_out" in r for r in log)
