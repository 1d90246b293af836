"""Metrics report, its plot, and before/after comparison frames (the Metrics/Compare nodes' core)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.compare import compare_frames
from deflicker_impl.evaluation.metrics import compute_warp_reference, flicker_index, warping_error
from deflicker_impl.evaluation.plots import COMPARE_COLOUR, IMAGES_COLOUR, metrics_plot
from deflicker_impl.evaluation.report import measure


@pytest.fixture(scope="module")
def clips():
    clean = panning_clip(frames=12, h=48, w=64, speed=1.0)
    return clean, global_gain_flicker(clean, strength=0.3)


def test_report_scores_both_clips_with_the_flow_of_compare_to(clips):
    clean, flickering = clips

    report = measure(clean, compare_to=flickering)

    reference = compute_warp_reference(flickering)
    assert report.flow_from == "compare_to"
    assert report.images.flicker_index == pytest.approx(flicker_index(clean))
    assert report.compare_to.flicker_index == pytest.approx(flicker_index(flickering))
    assert report.images.warping_error == pytest.approx(255 * warping_error(clean, reference),
                                                        rel=1e-5)
    assert report.compare_to.warping_error == pytest.approx(
        255 * warping_error(flickering, reference), rel=1e-5)
    # The steady clip is clearly steadier by both measures.
    assert report.images.flicker_index < 0.1 * report.compare_to.flicker_index
    assert report.images.warping_error < 0.6 * report.compare_to.warping_error
    assert report.images.luma.shape == (12,) and report.images.warp.shape == (11,)
    assert "ratio" in report.summary() and "flicker index" in report.summary()


def test_report_without_compare_to_uses_the_clips_own_flow(clips):
    clean, _ = clips
    report = measure(clean, flow_from="compare_to")

    assert report.compare_to is None and report.flow_from == "images"
    assert report.images.warping_error == pytest.approx(
        255 * warping_error(clean, compute_warp_reference(clean)), rel=1e-5)


def test_report_downscales_when_asked_and_reports_progress(clips):
    clean, flickering = clips
    calls = []

    report = measure(clean, flickering, long_side=32, on_progress=lambda d, t: calls.append(d / t))

    assert report.measured_size == (24, 32)
    assert calls[-1] == 1.0 and calls == sorted(calls)


def test_report_refuses_clips_of_different_length(clips):
    clean, flickering = clips
    with pytest.raises(DeflickerInputError, match="12 frames"):
        measure(clean[:5], flickering)


def test_plot_is_an_image_with_both_curves(clips):
    clean, flickering = clips
    plot = metrics_plot(measure(clean, flickering), width=640, height=360)

    assert plot.shape == (1, 360, 640, 3) and plot.dtype == torch.float32
    pixels = (plot[0] * 255).round().to(torch.uint8).numpy().reshape(-1, 3)
    for colour in (IMAGES_COLOUR, COMPARE_COLOUR):
        assert (np.abs(pixels.astype(int) - colour).sum(1) < 6).sum() > 200, colour


@pytest.mark.parametrize("layout, shape", [
    ("side_by_side", (3, 20, 30 * 2 + 4, 3)),
    ("stacked", (3, 20 * 2 + 4, 30, 3)),
    ("split", (3, 20, 30, 3)),
])
def test_comparison_layouts_have_the_promised_size(layout, shape):
    before, after = torch.zeros(3, 20, 30, 3), torch.ones(3, 20, 30, 3) * 0.5
    assert compare_frames(before, after, layout=layout).shape == shape


def test_split_view_shows_before_left_and_after_right_of_the_divider():
    before, after = torch.full((2, 16, 40, 3), 0.2), torch.full((2, 16, 40, 3), 0.7)

    out = compare_frames(before, after, layout="split", split=0.25, labels=False)

    assert torch.all(out[:, :, :9] == 0.2) and torch.all(out[:, :, 11:] == 0.7)
    assert torch.all(out[:, :, 9:11] == 1.0)  # the divider


def test_side_by_side_keeps_the_frames_and_resizes_after_to_before():
    before = torch.rand(2, 10, 12, 3)
    after = torch.rand(2, 20, 24, 3)

    out = compare_frames(before, after, labels=False)

    assert out.shape == (2, 10, 28, 3)
    assert torch.equal(out[:, :, :12], before)


def test_comparison_refuses_different_frame_counts():
    with pytest.raises(DeflickerInputError, match="same clip"):
        compare_frames(torch.rand(2, 8, 8, 3), torch.rand(3, 8, 8, 3))


def test_cli_compare_writes_the_comparison_and_plot_and_prints_both_scores(tmp_path, capsys,
                                                                          clips):
    from deflicker_impl.cli import main
    from deflicker_impl.video_io import write_clip

    clean, flickering = clips
    write_clip(tmp_path / "before", flickering, 10)
    write_clip(tmp_path / "after", clean, 10)

    status = main(["compare", str(tmp_path / "before"), str(tmp_path / "after"),
                   str(tmp_path / "sbs"), "--plot", str(tmp_path / "plot.png")])

    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flicker_index"]["after"] < 0.1 * report["flicker_index"]["before"]
    assert len(list((tmp_path / "sbs").glob("*.png"))) == 12
    assert (tmp_path / "plot.png").is_file()


def test_a_single_frame_scores_zero_and_still_plots():
    report = measure(torch.rand(1, 16, 20, 3), torch.rand(1, 16, 20, 3))

    assert report.images.flicker_index == 0.0 and report.images.warping_error == 0.0
    assert metrics_plot(report).shape == (1, 432, 768, 3)
