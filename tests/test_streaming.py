"""Any length in bounded memory: the streamed pipeline is the whole-clip pipeline, frame by frame.

The stream (deflicker_impl/streaming.py) decodes, processes and writes a clip segment by
segment. These tests pin down that it changes nothing (bit for bit the output of
`run_pipeline` on a clip with a scene cut and several overlapping segments per shot), that
the frames it holds at once do not grow with the clip's length, that the CLI streams and
leaves nothing behind when interrupted, and that a segment too large for the memory is refused
before decoding.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.filter.apply import FilterConfig
from deflicker_impl.pipeline import PipelineConfig, run_pipeline
from deflicker_impl.preflight import GIB, check_stream_memory, estimate_stream_peak_bytes
from deflicker_impl.shots import ShotConfig, detect_scene_cuts
from deflicker_impl.streaming import (
    TensorFrames,
    analyse_clip,
    stream_frames_held,
    stream_pipeline,
    streaming_unsupported,
)
from deflicker_impl.video_io import ClipInfo, read_clip, write_clip

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def two_shot_clip(first: int = 30, second: int = 26, h: int = 40, w: int = 56) -> torch.Tensor:
    """Two flickering pans over different scenes: a scene cut at frame `first`."""
    a = global_gain_flicker(panning_clip(first, h, w, speed=1.0, seed=0, detail=5), 0.3, seed=1)
    b = global_gain_flicker(panning_clip(second, h, w, speed=-0.7, seed=5, detail=7), 0.3, seed=2)
    return torch.cat([a, b])


def small_config(**changes) -> PipelineConfig:
    """Few fit iterations, short segments, small render and filter chunks: every boundary of
    the stream (segments, overlaps, render chunks, filter chunks, the temporal windows) falls
    inside the clip, several times."""
    config = PipelineConfig(
        shots=ShotConfig(max_segment_frames=12, segment_overlap=3),
        filter=FilterConfig(chunk_size=5), render_chunk=4)
    config.atlas = replace(config.atlas, iterations=25)
    return replace(config, **changes)


def streamed(clip: torch.Tensor, config: PipelineConfig, **kwargs):
    frames, atlas = [], []
    result = stream_pipeline(TensorFrames(clip), config, frames.append,
                             write_atlas_frames=atlas.append, **kwargs)
    return torch.cat(frames), torch.cat(atlas), result


@pytest.mark.parametrize("stop_after", ["refine", "filter", "atlas"])
def test_the_stream_gives_the_whole_clip_output_bit_for_bit(stop_after):
    clip = two_shot_clip()
    config = small_config(stop_after=stop_after)
    whole = run_pipeline(clip.clone(), config)
    assert whole.atlas.shot_starts == [0, 30]
    assert len(whole.atlas.segments) >= 6  # three or more overlapping segments per shot
    frames, atlas, result = streamed(clip, config)
    assert result.shot_starts == whole.atlas.shot_starts
    assert result.segments == whole.atlas.segment_ranges()
    assert frames.shape == clip.shape and frames.dtype == torch.float32
    assert torch.equal(frames, whole.frames)  # identical, not merely close
    assert atlas.dtype == whole.atlas_frames.dtype and torch.equal(atlas, whole.atlas_frames)


def test_strength_and_window_options_stream_identically_too():
    clip = two_shot_clip(first=14, second=20)
    config = small_config()
    config.filter = replace(config.filter, global_window=3,
                            flicker=replace(config.filter.flicker, strength=0.6))
    config.refine = replace(config.refine, global_window=7, strength=0.5, smooth_nodes=4)
    whole = run_pipeline(clip.clone(), config)
    assert torch.equal(streamed(clip, config)[0], whole.frames)


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_clips_of_one_to_three_frames_stream_identically(frames):
    # Below three frames the global colour pass is off, below two the refinement's bound.
    clip = global_gain_flicker(panning_clip(frames, 16, 24, detail=4), 0.3)
    config = small_config()
    assert torch.equal(streamed(clip, config)[0], run_pipeline(clip.clone(), config).frames)


def test_the_first_pass_finds_the_whole_clip_cuts_on_a_clip_of_many_cuts():
    # Shots of 5..12 frames: cut decisions near the ends of the 32-pair blocks the stream
    # compares at a time.
    parts = [panning_clip(n, 32, 48, speed=1.0, seed=s, detail=4 + s % 5)
             for s, n in enumerate([7, 12, 5, 9, 11, 6, 10, 8])]
    clip = torch.cat(parts)
    expected = detect_scene_cuts(clip)
    assert len(expected) == 8
    analysis = analyse_clip(TensorFrames(clip), ShotConfig())
    assert analysis.shot_starts == expected
    assert analysis.num_frames == clip.shape[0] and analysis.frame_hw == (32, 48)


def test_frames_held_do_not_grow_with_the_clip_length():
    config = small_config(stop_after="refine")
    config.atlas = replace(config.atlas, iterations=5)
    peaks = []
    for length in (40, 120):
        clip = global_gain_flicker(panning_clip(length, 24, 32, speed=0.3, detail=4), 0.3)
        result = stream_pipeline(TensorFrames(clip), config, lambda frames: None)
        assert result.shot_starts == [0]
        peaks.append(result.peak_frames_held)
    # The bound: a segment plus a render chunk and a filter chunk of input frames, and a few
    # frames in each later buffer; the clip's length does not enter.
    bound = stream_frames_held(config, (24, 32), max_segment=12)
    assert bound == {"input": 12 + 4 + 5, "atlas": 4 + 5, "filtered": 5 + 4 + 1,
                     "refined": 2 + 2}
    for peak in peaks:  # 40 frames, and three times as many
        for buffer, held in peak.items():
            assert held <= bound[buffer], (buffer, peak)
    assert peaks[1]["input"] <= 21 and sum(peaks[1].values()) <= 40  # of 120 frames


def test_what_cannot_stream_is_named():
    assert streaming_unsupported(small_config()) is None
    assert "faithful" in streaming_unsupported(PipelineConfig.faithful())
    assert "confidence" in streaming_unsupported(small_config(confidence=True))
    assert "masks" in streaming_unsupported(small_config(), masks=torch.ones(4, 4))
    with pytest.raises(DeflickerInputError, match="Streaming does not support faithful"):
        stream_pipeline(TensorFrames(two_shot_clip(6, 6)), PipelineConfig.faithful())


def test_stream_memory_estimate_and_refusal_of_a_segment_that_cannot_fit():
    info = ClipInfo(frames=100_000, height=1080, width=1920, fps=24)
    config = PipelineConfig()
    frame = 1080 * 1920 * 3 * 4
    need = estimate_stream_peak_bytes(info, config)
    held = stream_frames_held(config, (1080, 1920), 150)
    assert held["input"] == 150 + 2 + 1
    # The clip's length does not enter: 100,000 frames need what 1000 need.
    assert need == estimate_stream_peak_bytes(replace(info, frames=1000), config)
    # Measured: 5.77 GiB (bench/stream_memory.py, 600 frames of 1080p, a first segment).
    assert 5.8 * GIB < need < 7 * GIB and need > 153 * frame
    with pytest.raises(DeflickerInputError) as caught:
        check_stream_memory(info, config, "INPUT", "long.mp4", limit_gb=4)
    message = str(caught.value)
    assert "one segment of 150 frames of 1920x1080 needs about" in message
    assert "--max-segment-frames" in message and "4.0 GB are --memory-limit 4 GB" in message
    # The suggested segment length fits the limit.
    suggested = int(message.split("--max-segment-frames to ")[1].split()[0])
    assert suggested == 62
    small = replace(config, shots=replace(config.shots, max_segment_frames=suggested))
    assert estimate_stream_peak_bytes(info, small) <= 4 * GIB
    assert check_stream_memory(info, config, "INPUT", "long.mp4", limit_gb=0) == need


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "deflicker_impl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cut_folder(tmp_path_factory):
    """A two-shot clip as a folder of PNG frames (lossless: the CLI reads exactly these)."""
    return write_clip(tmp_path_factory.mktemp("stream") / "in", two_shot_clip(16, 14), 12)


def test_the_cli_streams_and_writes_what_the_whole_clip_path_gives(cut_folder, tmp_path):
    out = tmp_path / "out"
    res = run_cli("deflicker", str(cut_folder), str(out), "--quiet", "--iterations", "20",
                  "--max-segment-frames", "10", "--segment-overlap", "2",
                  "--save-atlas-frames", str(tmp_path / "atlas"),
                  "--save-texture", str(tmp_path / "texture.png"))
    assert res.returncode == 0, res.stderr
    assert "streaming: at most" in res.stderr
    config = PipelineConfig(shots=ShotConfig(max_segment_frames=10, segment_overlap=2))
    config.atlas = replace(config.atlas, iterations=20)
    whole = run_pipeline(read_clip(cut_folder).frames, config)
    written = read_clip(out).frames
    expected = (whole.frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).float() / 255
    assert torch.equal(written, expected)  # the same 8-bit frames
    atlas = read_clip(tmp_path / "atlas").frames
    assert torch.equal(atlas, whole.atlas_frames.float() / 255)
    texture = read_clip(tmp_path / "texture.png").frames
    assert texture.shape[1] == whole.atlas.texture_preview().shape[1] * len(whole.atlas.segments)


def test_ctrl_c_in_mid_stream_leaves_no_output(tmp_path):
    clip = global_gain_flicker(panning_clip(60, 32, 48, speed=0.5, detail=4), 0.3)
    source = write_clip(tmp_path / "long.mp4", clip, 12)
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deflicker_impl", "deflicker", str(source), str(out),
         "--iterations", "60", "--max-segment-frames", "12", "--segment-overlap", "2",
         "--save-atlas-frames", str(tmp_path / "atlas")],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE)
    # Wait until the encoder has written frames into the hidden temporary output.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in tmp_path.iterdir() if p.name.startswith(".o.partial-")]
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1] == (
        "interrupted: no output was written (existing files are unchanged)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]
