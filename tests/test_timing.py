"""Profiling marks (deflicker_impl/timing.py): nothing is measured unless a caller records; a
recording names every stage and atlas phase, nested, and does not change the result."""

from __future__ import annotations

import pytest
import torch
from synthetic_clips import panning_clip

from deflicker_impl.atlas import AtlasConfig
from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.timing import phase, recording


def test_phases_nest_and_add_up():
    with recording() as times:
        for _ in range(2):
            with phase("outer"), phase("inner"):
                pass
        with phase("other"):
            pass
    assert list(times.seconds) == ["outer/inner", "outer", "other"]
    assert times.calls == {"outer/inner": 2, "outer": 2, "other": 1}
    assert times.seconds["outer"] >= times.seconds["outer/inner"] >= 0.0
    with phase("unrecorded"):  # after the recording: a no-op, nothing kept anywhere
        pass
    assert "unrecorded" not in times.seconds


def test_a_recording_names_the_stages_and_atlas_phases_and_keeps_the_result():
    clip = panning_clip(frames=6, h=24, w=32, speed=1.0, detail=4)
    config = PipelineConfig(stop_after="atlas", atlas=AtlasConfig(iterations=10))
    plain = run_pipeline(clip, config, threads=1).frames
    with recording() as times:
        recorded = run_pipeline(clip, config, threads=1).frames
    assert torch.equal(plain, recorded)
    fit = "atlas fit"
    for name in ("weights", fit, f"{fit}/scene cuts", f"{fit}/flow", f"{fit}/similarity chain",
                 f"{fit}/initial texture", f"{fit}/optimisation", f"{fit}/texture splat",
                 f"{fit}/back-projection", f"{fit}/segment colours", "render"):
        assert name in times.seconds, name
    inner = sum(v for k, v in times.seconds.items() if k.count("/") == 1)
    assert inner <= times.seconds[fit] + 1e-6  # the phases are parts of the fit, not extra
    assert inner >= 0.5 * times.seconds[fit]  # and account for most of it
    assert times.seconds[f"{fit}/optimisation"] > 0 and times.calls[f"{fit}/flow"] == 1


@pytest.mark.parametrize("stage", ["filter", "refine"])
def test_later_stages_are_recorded_when_they_run(stage):
    clip = panning_clip(frames=4, h=24, w=32, speed=1.0, detail=4)
    with recording() as times:
        run_pipeline(clip, PipelineConfig(stop_after=stage, atlas=AtlasConfig(iterations=5)),
                     threads=1)
    assert stage in times.seconds and "render" in times.seconds
