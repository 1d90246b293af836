"""The atlas fit's fast paths give the same numbers as the plain ones, and stop when converged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from synthetic_clips import moving_object_clip, panning_clip

from deflicker_impl.atlas import AtlasConfig, fit_atlas, texture_atlas
from deflicker_impl.atlas.optim import Adam
from deflicker_impl.atlas.pixel_table import PixelTable
from deflicker_impl.atlas.stopping import LossStall
from deflicker_impl.atlas.texture_atlas import (
    AtlasTexture,
    splat_taps,
    splat_to_texture,
    splat_weight,
    splat_with_taps,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_adam_is_torch_adam_step_for_step():
    torch.manual_seed(0)
    start = [torch.randn(5, 4), torch.randn(3)]
    ours = [torch.nn.Parameter(p.clone()) for p in start]
    theirs = [torch.nn.Parameter(p.clone()) for p in start]
    mine = Adam([{"params": [ours[0]], "lr": 0.03}, {"params": [ours[1]], "lr": 2e-3}])
    ref = torch.optim.Adam([{"params": [theirs[0]], "lr": 0.03},
                            {"params": [theirs[1]], "lr": 2e-3}])
    target = torch.randn(5, 4)
    for _ in range(50):
        for params, opt in ((ours, mine), (theirs, ref)):
            opt.zero_grad()
            loss = (params[0] - target).abs().sum() + params[1].square().sum() * params[0].mean()
            loss.backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_a_fit_does_not_import_torch_dynamo():
    # torch.optim imports torch._dynamo on first use: seconds of start-up in every process.
    code = ("import sys, torch\n"
            "from deflicker_impl.atlas import AtlasConfig, fit_atlas\n"
            "fit_atlas(torch.rand(3, 24, 32, 3), AtlasConfig(iterations=3))\n"
            "print('torch._dynamo' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"


def test_pixel_table_takes_exactly_what_indexing_takes():
    values = torch.randn(4, 3, 50)
    pix = torch.randperm(50)[:17]
    taken = PixelTable(values).take(pix)
    assert torch.equal(taken, values[..., pix]) and taken.is_contiguous()
    rows = torch.randn(4, 50, 2)
    assert torch.equal(PixelTable(rows, dim=1).take(pix), rows[:, pix])


def test_loss_stall_stops_only_after_min_steps_and_a_flat_window():
    stall = LossStall(tolerance=0.01, min_steps=50, window=10)
    decisions = [stall.update(torch.tensor(1.0)) for _ in range(60)]
    assert not any(decisions[:49]) and decisions[49]  # flat from the start: stops at 50
    falling = LossStall(tolerance=0.01, min_steps=10, window=10)
    assert not any(falling.update(torch.tensor(1.0 / (1 + i))) for i in range(100))
    assert not any(LossStall(0.0, 0, window=5).update(torch.tensor(1.0)) for _ in range(40))


def test_the_default_fit_stops_when_converged_and_a_given_count_runs_them_all():
    clip = panning_clip(frames=6, h=32, w=48)
    auto = fit_atlas(clip, AtlasConfig())  # a static pan converges well before 300 steps
    assert 150 <= auto.stats["iterations"] < 300 and auto.stats["max_iterations"] == 300
    windows = auto.stats["loss_windows"]
    assert windows[-2] - windows[-1] < 0.002 * windows[-2]  # it stopped on a flat window
    fixed = fit_atlas(clip, AtlasConfig(iterations=80, stall_tolerance=0.5))
    assert fixed.stats["iterations"] == 80 and len(fixed.stats["loss_windows"]) == 3
    everything = fit_atlas(clip, AtlasConfig(stall_tolerance=0.0))
    assert everything.stats["iterations"] == 300


def test_the_splat_is_the_adjoint_of_bilinear_sampling_with_zero_padding():
    # <splat(c), T> = <c, sample(T)>: what a least-squares texture update needs. 150k points
    # span several tap blocks; some land outside the texture and must add nothing.
    torch.manual_seed(0)
    texture = AtlasTexture(torch.zeros(1, 3, 23, 31), (-1.0, -0.7, 1.0, 0.7))
    a = torch.rand(2, 250, 300, 2) * torch.tensor([2.4, 1.7]) - torch.tensor([1.2, 0.85])
    colours = torch.rand(2, 3, 250, 300)
    probe = torch.rand(1, 3, 23, 31)
    accum, weight = splat_to_texture(a, colours, texture, (23, 31))
    grid = texture.normalised(a).reshape(1, -1, 300, 2)
    sampled = F.grid_sample(probe, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    lhs = (accum.double() * probe.reshape(3, -1).double()).sum()
    rhs = (colours.permute(1, 0, 2, 3).reshape(1, 3, -1, 300).double() * sampled.double()).sum()
    assert abs(float(lhs - rhs)) < 1e-5 * float(rhs)
    ones = F.grid_sample(torch.ones(1, 1, 23, 31), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)
    assert torch.allclose(weight.sum().double(), ones.sum().double(), rtol=1e-6)
    taps = splat_taps(a, texture, (23, 31))  # the cached route: same numbers exactly
    assert torch.equal(splat_with_taps(taps, colours, (23, 31)), accum)
    assert torch.equal(splat_weight(taps, (23, 31)), weight)


def test_the_texture_passes_give_the_same_texture_with_and_without_their_cache(monkeypatch):
    clip = panning_clip(frames=6, h=32, w=48)
    config = AtlasConfig(iterations=20)
    cached = fit_atlas(clip, config).texture_preview()
    monkeypatch.setattr(texture_atlas, "TEXTURE_CACHE_BYTES", 0)
    assert torch.equal(fit_atlas(clip, config).texture_preview(), cached)


def test_the_two_layer_texture_passes_give_the_same_textures_with_and_without_their_cache(
        monkeypatch):
    clip, masks = moving_object_clip(frames=6, h=32, w=48, speed=2.0)
    config = AtlasConfig(iterations=20)
    cached = fit_atlas(clip, config, masks=masks)
    monkeypatch.setattr(texture_atlas, "TEXTURE_CACHE_BYTES", 0)
    again = fit_atlas(clip, config, masks=masks)
    assert torch.equal(again.texture_preview(), cached.texture_preview())
    assert torch.equal(again.render(0, 6), cached.render(0, 6))


def test_the_chunk_cache_keeps_the_first_chunks_that_fit_and_rebuilds_the_rest():
    built = []

    def build(start, stop):
        built.append(start)
        return torch.arange(start, stop), torch.zeros(stop - start, 4)  # 8 + 16 bytes per frame

    chunks = texture_atlas.ChunkCache(10, 3, build, budget=2 * (3 * 8 + 3 * 16))
    first = [item[0].tolist() for item in chunks]
    second = [item[0].tolist() for item in chunks]
    assert first == second == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert built == [0, 3, 6, 9, 6, 9]  # two chunks kept; the others built on every pass
    assert chunks.kept_bytes == 2 * (3 * 8 + 3 * 16)
