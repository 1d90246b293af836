"""Specification of chunk-seam removal (deflicker_impl/seams.py, `PipelineConfig.seams`): the
persistent colour step that sliding-window generators leave between chunks is found at its
frame, measured to a fraction of a level and taken out of every later frame; clean clips,
fast flicker and cuts are left alone.

The clips are small panning textures; the seam is +15 red, -13 blue levels (the generative
benchmark's). Measured once: the step comes out within 0.03 levels of the truth, and so do
the halves' colours after removal; through the whole pipeline 0.04 levels remain (12.3 without
the removal). On the benchmark's development clips 0.2-1.0 levels remain (bench/
generative_bench.py, the `seams` method).
"""

from __future__ import annotations

import pytest
import torch
from synthetic_clips import panning_clip

from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.synthetic import add_chunk_seam, add_synthetic_flicker
from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.seams import SeamConfig, describe_seams, find_chunk_seams, remove_chunk_seams

T, H, W = 24, 64, 96
SEAM = (15.0, 0.0, -13.0)

pytestmark = pytest.mark.usefixtures("one_thread")


def halves_step(x: torch.Tensor, at: int = T // 2) -> torch.Tensor:
    """Mean colour of frames at.. minus that of frames ..at, 8-bit levels [3]."""
    return (x[at:].mean(dim=(0, 1, 2)) - x[:at].mean(dim=(0, 1, 2))) * 255


def test_a_chunk_seam_is_found_at_its_frame_and_measured():
    clean = panning_clip(T, H, W, 0.5, seed=4)
    seams = find_chunk_seams(add_chunk_seam(clean, SEAM))
    assert [s.frame for s in seams] == [T // 2]
    assert torch.allclose(torch.tensor(seams[0].step) * 255, torch.tensor(SEAM), atol=0.5)


def test_removing_it_puts_every_frame_on_the_first_chunks_colour():
    clean = panning_clip(T, H, W, 0.5, seed=4)
    out, seams = remove_chunk_seams(add_chunk_seam(clean, SEAM))
    assert len(seams) == 1
    assert float((halves_step(out) - halves_step(clean)).abs().max()) < 0.5
    assert float((out[:T // 2] - clean[:T // 2]).abs().max()) == 0.0  # the first chunk stays


def test_three_chunks_end_on_one_colour():
    clean = panning_clip(T, H, W, 0.5, seed=5)
    seamed = add_chunk_seam(add_chunk_seam(clean, (10.0, -8.0, 0.0), at=1 / 3),
                            (0.0, 9.0, 12.0), at=2 / 3)
    out, seams = remove_chunk_seams(seamed)
    assert [s.frame for s in seams] == [8, 16]
    assert float((out - clean).mean(dim=(1, 2)).abs().max()) * 255 < 0.5


def test_a_clean_clip_comes_back_unchanged():
    clean = panning_clip(T, H, W, 0.5, seed=4)
    out, seams = remove_chunk_seams(clean)
    assert seams == []
    assert torch.equal(out, clean)
    assert describe_seams(seams) == "chunk seams: none found"


def test_fast_flicker_is_not_taken_for_seams():
    """A new level every frame is not held on either side of any step."""
    clean = panning_clip(T, H, W, 0.5, seed=4)
    assert find_chunk_seams(add_synthetic_flicker(clean, window=1, seed=2)) == []


def test_a_cut_is_not_a_seam():
    one, other = panning_clip(T // 2, H, W, 0.5, seed=4), panning_clip(T // 2, H, W, 0.5, seed=9)
    clip = torch.cat([one, (other * 0.7 + 0.2).clamp(0, 1)])
    assert find_chunk_seams(clip) == []
    assert find_chunk_seams(clip, shot_starts=[0, T // 2]) == []


def test_the_pipeline_removes_seams_before_the_atlas_when_asked():
    clean = panning_clip(T, H, W, 0.5, seed=4)
    seamed = add_chunk_seam(clean, SEAM)
    fast = {"atlas": PipelineConfig().atlas.__class__(iterations=60)}
    on = run_pipeline(seamed.clone(), PipelineConfig(seams=SeamConfig(enabled=True), **fast))
    off = run_pipeline(seamed.clone(), PipelineConfig(**fast))
    assert [s.frame for s in on.seams] == [T // 2] and off.seams == []
    left_on = float((halves_step(on.frames) - halves_step(clean)).abs().max())
    left_off = float((halves_step(off.frames) - halves_step(clean)).abs().max())
    assert left_on < 2.0 < left_off


def test_bad_settings_get_one_clear_error():
    with pytest.raises(DeflickerInputError, match="hold"):
        SeamConfig(hold=0)
    with pytest.raises(DeflickerInputError, match="must be positive"):
        SeamConfig(min_levels=0)


def test_short_and_malformed_clips():
    """One or two frames have no held step: they come back as they are. A clip in 0..255 is
    refused with the expected range, before any work."""
    one = panning_clip(1, H, W, 0.5, seed=4)
    two = add_chunk_seam(panning_clip(2, H, W, 0.5, seed=4), SEAM)
    for clip in (one, two):
        out, seams = remove_chunk_seams(clip)
        assert seams == [] and torch.equal(out, clip)
    with pytest.raises(DeflickerInputError, match="0..1"):
        remove_chunk_seams(panning_clip(4, H, W, 0.5, seed=4) * 255)


def test_a_step_into_the_first_or_last_frame_is_not_a_seam():
    """Nothing before (or after) it shows that the level is held: an old film's odd first
    frame, the last frame of a fade."""
    clean = panning_clip(T, H, W, 0.5, seed=4)
    assert find_chunk_seams(add_chunk_seam(clean, SEAM, at=1 / T)) == []
    assert find_chunk_seams(add_chunk_seam(clean, SEAM, at=(T - 1) / T)) == []
    assert [s.frame for s in find_chunk_seams(add_chunk_seam(clean, SEAM, at=2 / T))] == [2]
