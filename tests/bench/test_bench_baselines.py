"""Benchmark baselines and runner: the yardsticks must themselves measure right."""

from __future__ import annotations

import argparse
import json

import torch
from synthetic_clips import panning_clip, smooth_texture

from bench import baselines
from bench.datasets import BenchInput, resize_long_side, synthetic_inputs
from bench.deflicker_bench import (
    METHODS,
    check_targets,
    markdown_report,
    run_benchmark,
    summarize,
)
from deflicker_impl.evaluation.metrics import flicker_index, psnr


def static_clip_with_gain_offset_flicker(frames=9, h=40, w=56):
    """A static textured scene and a copy with per-frame per-channel gain + offset flicker,
    mean-preserving over the clip and kept inside 0..1 (no clipping)."""
    scene = 0.2 + 0.6 * smooth_texture(h, w, seed=3).permute(1, 2, 0).clamp(0, 1)
    clean = scene.expand(frames, -1, -1, -1).contiguous()
    gen = torch.Generator().manual_seed(7)
    gain = 1 + 0.15 * (torch.rand(frames, 3, generator=gen) * 2 - 1)
    offset = 0.05 * (torch.rand(frames, 3, generator=gen) * 2 - 1)
    gain, offset = gain / gain.mean(0), offset - offset.mean(0)
    flickered = clean * gain[:, None, None] + offset[:, None, None]
    assert 0 < float(flickered.min()) and float(flickered.max()) < 1
    return clean, flickered


def test_clip_median_matching_removes_a_pure_gain_and_offset_flicker_exactly():
    clean, flickered = static_clip_with_gain_offset_flicker()
    out = baselines.match_to_clip_median(flickered)
    # Every frame becomes the same frame: the flicker is gone, not just reduced...
    assert float((out - out[:1]).abs().max()) < 1e-5
    # ...and that frame is the clean scene up to the median's own small bias.
    assert psnr(flickered, clean) < 30
    assert psnr(out, clean) > max(37.0, psnr(flickered, clean) + 8)


def test_mean_std_matching_to_a_frame_reproduces_that_frames_statistics():
    clean, flickered = static_clip_with_gain_offset_flicker()
    out = baselines.match_mean_std(flickered, clean[:1])
    assert torch.allclose(out.mean((1, 2)), clean[:1].mean((1, 2)).expand(9, -1), atol=1e-5)
    assert torch.allclose(out.std((1, 2)), clean[:1].std((1, 2)).expand(9, -1), atol=1e-5)


def test_sliding_median_matching_cuts_flicker_tenfold_and_keeps_slow_changes():
    clean, flickered = static_clip_with_gain_offset_flicker(frames=15)
    out = baselines.match_to_sliding_median(flickered, window=7)
    assert flicker_index(out) < flicker_index(flickered) / 10
    assert out.shape == flickered.shape
    # A slow fade is content, not flicker: the sliding target follows it.
    fade = clean * torch.linspace(0.6, 1.0, 15)[:, None, None, None]
    kept = baselines.match_to_sliding_median(fade, window=7)
    assert psnr(kept, fade) > 35


def test_sliding_median_window_keeps_its_length_at_the_clip_ends():
    ramp = torch.arange(10.0)[:, None, None, None].expand(10, 2, 2, 3) / 10
    med = baselines.sliding_median_frames(ramp, window=5)
    assert float(med[0, 0, 0, 0]) == float(ramp[2, 0, 0, 0])  # median of frames 0..4
    assert float(med[9, 0, 0, 0]) == float(ramp[7, 0, 0, 0])  # median of frames 5..9


def test_ffmpeg_deflicker_keeps_frame_count_and_odd_size_and_evens_out_luma():
    clip = panning_clip(frames=11, h=37, w=50, speed=1.0)
    gains = torch.tensor([1.0, 1.3, 0.75] * 4)[:11]
    flickered = (clip * gains[:, None, None, None]).clamp(0, 1)
    out = baselines.ffmpeg_deflicker(flickered)
    assert out.shape == flickered.shape and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert flicker_index(out) < flicker_index(flickered) / 2
    # Without flicker it changes almost nothing (YUV 4:4:4 round trip only)...
    assert psnr(baselines.ffmpeg_deflicker(clip), clip) > 38
    # ...also on clips shorter than the filter's 5-frame window, and a single frame passes.
    for frames in (1, 2, 4):
        short = clip[:frames]
        out = baselines.ffmpeg_deflicker(short)
        assert out.shape == short.shape and psnr(out, short) > 38


def test_resize_long_side_keeps_aspect_ratio_both_ways():
    clip = torch.rand(2, 90, 160, 3)
    assert resize_long_side(clip, 64).shape == (2, 36, 64, 3)
    assert resize_long_side(clip, 320).shape == (2, 180, 320, 3)


def test_runner_scores_baselines_on_a_generated_clip(tmp_path):
    clean = panning_clip(frames=10, h=36, w=48, speed=1.0)
    inputs = synthetic_inputs("pan", clean, windows=(1, 3), seed_base=5)
    inputs.append(BenchInput("pan_real", "real", None, None, inputs[1].frames, None))
    methods = [METHODS[k] for k in ("input", "ffmpeg", "clipmedian")]
    args = argparse.Namespace(paper_iterations=2)
    rows, sheets = run_benchmark(inputs, methods, args, log=lambda *_: None)

    assert len(rows) == len(inputs) * len(methods)
    by = {(r["clip"], r["kind"], r["window"], r["method"]): r for r in rows}
    assert by[("pan", "clean", None, "input")]["psnr"] == 100.0  # identical frames
    for row in rows:
        if row["method"] == "input":
            assert row["ewarp_ratio"] == 1.0
    # The synthetic input really flickers, and clip-median matching removes much of it.
    w1 = by[("pan", "synthetic", 1, "clipmedian")]
    assert by[("pan", "synthetic", 1, "input")]["psnr"] < w1["psnr"]
    assert w1["ewarp_ratio"] < 0.8
    assert by[("pan_real", "real", None, "clipmedian")]["psnr"] is None
    assert all(r["peak_mb"] >= 0 and r["seconds_per_frame"] >= 0 for r in rows)
    assert set(sheets) == {("pan", "W=1"), ("pan_real", "real")}

    summary = summarize(rows, methods)
    assert list(summary) == ["input", "ffmpeg", "clipmedian"]
    assert summary["input"]["synthetic_ewarp_ratio"] == 1.0
    assert check_targets(rows, summary) == []  # no atlas row, nothing to judge
    result = {
        "name": "t", "command": "x", "started": "now", "wall_seconds": 1.0,
        "machine": {"cpu": "c", "cores": 2, "ram_gb": 1, "torch": "t", "torch_threads": 2,
                    "loadavg_start": [0, 0, 0]},
        "settings": {"frames": 10, "long_side": 48, "windows": [1, 3], "clips": ["pan"],
                     "real": ["pan_real"]},
        "rows": rows, "summary": summary, "paper_speed_ratio": None, "targets": [], "notes": [],
    }
    report = markdown_report(result)
    assert "| match clip median |" in report and "| pan | W=3 | ffmpeg deflicker |" in report
    json.dumps(result)  # every number is serialisable


def test_previous_release_row_is_the_full_pipeline_with_the_given_filter_weights(tmp_path):
    """With the shipped weights as the 'previous' ones the row equals the refine row exactly:
    same atlas, filter and refinement."""
    from deflicker_impl.filter.apply import FilterConfig

    clean = panning_clip(frames=8, h=32, w=40, speed=1.0)
    inputs = synthetic_inputs("pan", clean, windows=(3,), seed_base=5)[1:]  # the W=3 input
    shipped = str(FilterConfig().resolved_weights_path())
    args = argparse.Namespace(paper_iterations=2, filter_weights=None, refine_weights=None,
                              previous_filter_weights=shipped, refine_smooth_nodes=0)
    methods = [METHODS[k] for k in ("atlas", "filter", "refine", "previous")]
    rows, _ = run_benchmark(inputs, methods, args, log=lambda *_: None)
    by = {r["method"]: r for r in rows}
    assert by["previous"]["psnr"] == by["refine"]["psnr"]
    assert by["previous"]["ewarp_ratio"] == by["refine"]["ewarp_ratio"]
    assert by["previous"]["psnr"] != by["filter"]["psnr"]  # the refinement is part of it


def test_refine_smooth_nodes_reach_the_atlas_colour_rows_only():
    """`--refine-smooth-nodes N` sets the refinement of the refine and previous rows; the
    default is the shipped per-pixel change, and the faithful row keeps its own."""
    from bench.deflicker_bench import atlas_colour_refine_config, parse_args
    from deflicker_impl.refine.apply import RefineConfig

    assert atlas_colour_refine_config(parse_args([])) == RefineConfig()
    assert atlas_colour_refine_config(parse_args(["--refine-smooth-nodes", "6"])).smooth_nodes == 6


def test_previous_row_runs_by_default_only_when_its_weights_are_given():
    from bench.deflicker_bench import parse_args
    from bench.generative_bench import parse_args as parse_generative_args

    assert "previous" not in parse_args([]).methods
    assert "previous" in parse_args(["--previous-filter-weights", "old.safetensors"]).methods
    assert "previous" not in parse_generative_args([]).methods
    assert "previous" in parse_generative_args(["--previous-filter-weights", "x"]).methods
