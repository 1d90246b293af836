"""Real-footage inputs through the whole pipeline: montages, stills, fades, odd and huge sizes."""

from __future__ import annotations

import pytest
import torch
from synthetic_clips import panning_clip

from deflicker_impl.atlas import AtlasConfig
from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.metrics import psnr
from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.shots import ShotConfig

QUICK = AtlasConfig(iterations=30, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py


def run(frames, stop_after="filter", **kwargs):
    return run_pipeline(frames, PipelineConfig(stop_after=stop_after, atlas=QUICK, **kwargs))


def test_a_clip_of_cuts_only_keeps_every_frame():
    """Every frame its own shot: each is processed exactly as if it were alone (no frame borrows
    another's look), and stays close to itself."""
    clip = torch.cat([panning_clip(1, 96, 128, seed=30 + i, detail=16) for i in range(6)])
    result = run(clip)
    assert result.atlas.shot_starts == list(range(6))
    assert result.frames.shape == clip.shape
    assert torch.allclose(result.frames[3:4], run(clip[3:4]).frames, atol=1e-5)
    assert psnr(result.frames, clip) > 35.0


def test_identical_frames_come_back_unchanged():
    # (96x128: the filter is a U-Net and needs some context; at 32x40 it alters any frame)
    still = panning_clip(1, 96, 128, seed=3).expand(8, -1, -1, -1).contiguous()
    result = run(still)  # (not the refinement: its shipped weights alter clean frames, README)
    assert result.atlas.shot_starts == [0]
    assert psnr(result.frames, still) > 45.0
    assert float((result.frames[1:] - result.frames[:-1]).abs().max()) < 0.02


def test_a_fade_to_black_stays_one_shot_and_ends_black():
    clip = panning_clip(16, 96, 128, seed=5)
    fade = torch.linspace(1.0, 0.0, 16)[:, None, None, None]
    faded = (clip * fade * 255).round() / 255
    result = run(faded)
    assert result.atlas.shot_starts == [0]
    assert float(result.frames[-1].mean()) < 0.01
    assert psnr(result.frames, faded) > 30.0
    brightness = result.frames.mean((1, 2, 3))
    assert bool((brightness[1:] <= brightness[:-1] + 0.01).all())  # still fading, monotonically


@pytest.mark.parametrize("shape", [(4, 1, 1, 3), (3, 1, 4096, 3), (2, 4096, 1, 3), (5, 2, 2, 3)])
def test_degenerate_frame_sizes_give_output_of_exactly_the_input_size(shape):
    frames = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    out = run(frames, stop_after="refine").frames
    assert out.shape == shape and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all()) and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


def test_4k_frames_are_accepted_at_their_own_size():
    frame = torch.nn.functional.interpolate(
        panning_clip(2, 54, 96, seed=9).permute(0, 3, 1, 2), size=(2160, 3840), mode="bilinear",
        align_corners=False).permute(0, 2, 3, 1).contiguous()
    result = run(frame, stop_after="atlas")
    assert result.frames.shape == (2, 2160, 3840, 3)


@pytest.mark.parametrize("size", [(37, 53), (64, 30)])
def test_montage_output_has_exactly_the_input_size(size):
    h, w = size
    clip = torch.cat([panning_clip(5, h, w, seed=40, detail=16), panning_clip(4, h, w, seed=41,
                                                                             detail=16)])
    result = run(clip, stop_after="refine", shots=ShotConfig(max_segment_frames=4,
                                                              segment_overlap=1))
    assert result.atlas.shot_starts == [0, 5]
    assert result.frames.shape == clip.shape


def test_in_place_writes_the_output_into_the_input():
    clip = panning_clip(6, 24, 32, seed=2)
    expected = run(clip.clone()).frames
    owned = clip.clone()
    result = run(owned, in_place=True)
    assert result.frames.data_ptr() == owned.data_ptr()
    assert torch.equal(result.frames, expected)
    with pytest.raises(DeflickerInputError, match="in_place"):
        run((clip * 255).to(torch.uint8), in_place=True)


def test_uint8_atlas_frames_cost_almost_nothing():
    clip = panning_clip(8, 32, 40, seed=6)
    full = run(clip, intermediate_dtype="float32").frames
    small = run(clip, intermediate_dtype="uint8").frames
    assert psnr(small, full) > 45.0


def test_bad_segment_settings_are_refused():
    with pytest.raises(DeflickerInputError, match="max_segment_frames"):
        run(torch.rand(4, 8, 8, 3), shots=ShotConfig(max_segment_frames=10, segment_overlap=8))
    with pytest.raises(DeflickerInputError, match="intermediate_dtype"):
        run(torch.rand(4, 8, 8, 3), intermediate_dtype="int4")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_pipeline_matches_the_cpu_one():
    from deflicker_impl.filter.apply import FilterConfig
    from deflicker_impl.refine.apply import RefineConfig

    clip = torch.cat([panning_clip(6, 64, 80, seed=50, detail=16),
                      panning_clip(5, 64, 80, seed=51, detail=16)])

    def on(device):
        return run_pipeline(clip, PipelineConfig(
            stop_after="refine", atlas=AtlasConfig(iterations=30, device=device),
            filter=FilterConfig(device=device), refine=RefineConfig(device=device),
            shots=ShotConfig(max_segment_frames=4, segment_overlap=1)))

    gpu, cpu = on("cuda"), on("cpu")
    assert gpu.frames.device.type == "cpu" and gpu.frames.shape == clip.shape
    assert gpu.atlas.shot_starts == cpu.atlas.shot_starts == [0, 6]
    assert psnr(gpu.frames, cpu.frames) > 30.0  # same method; the fit's float order differs
