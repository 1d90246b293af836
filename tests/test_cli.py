"""`python -m deflicker_impl`: same frame count, size and rate out; clear errors, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_clips import global_gain_flicker, moving_object_clip, panning_clip

from deflicker_impl.evaluation.metrics import flicker_index
from deflicker_impl.video_io import read_clip, write_clip

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deflicker_impl", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def flickering_mp4(tmp_path_factory):
    clip = global_gain_flicker(panning_clip(frames=10, h=38, w=54, speed=1.0, detail=5), 0.3)
    return write_clip(tmp_path_factory.mktemp("cli") / "in.mp4", clip, 15)


def test_deflicker_video_to_video_keeps_count_size_and_fps(flickering_mp4, tmp_path):
    out = tmp_path / "out.mp4"
    res = run_cli("deflicker", str(flickering_mp4), str(out), "--stop-after", "atlas",
                  "--iterations", "80", "--quiet")
    assert res.returncode == 0, res.stderr
    src, dst = read_clip(flickering_mp4), read_clip(out)
    assert dst.frames.shape == src.frames.shape  # odd size 54x38 kept exactly
    assert dst.fps == src.fps
    assert flicker_index(dst.frames) < 0.5 * flicker_index(src.frames)
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 10 and summary["width"] == 54 and summary["height"] == 38


def test_folder_in_folder_out_and_side_outputs(flickering_mp4, tmp_path):
    frames_in = tmp_path / "frames_in"
    write_clip(frames_in, read_clip(flickering_mp4).frames)
    res = run_cli("deflicker", str(frames_in), str(tmp_path / "frames_out"), "--stop-after",
                  "atlas", "--iterations", "20", "--quiet", "--save-texture",
                  str(tmp_path / "atlas.png"), "--save-atlas-frames", str(tmp_path / "atlas.mp4"))
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "frames_out").glob("*.png"))) == 10
    assert (tmp_path / "atlas.png").is_file() and (tmp_path / "atlas.mp4").is_file()


def test_help_documents_every_option():
    res = run_cli("deflicker", "--help")
    for option in ("--stop-after", "--preset", "--iterations", "--fit-long-side",
                   "--atlas-resolution", "--seed", "--device", "--filter-weights",
                   "--save-atlas-frames", "--save-texture", "--quiet", "--refine-weights",
                   "--masks", "--sam-checkpoint", "--sam-points", "--sam-box", "--remove-seams"):
        assert option in res.stdout
    assert "refine" in res.stdout


def test_full_pipeline_with_refinement_keeps_count_size_and_reports_every_stage(
        flickering_mp4, tmp_path):
    out = tmp_path / "refined.mp4"
    res = run_cli("deflicker", str(flickering_mp4), str(out), "--stop-after", "refine",
                  "--iterations", "40", "--quiet")
    assert res.returncode == 0, res.stderr
    assert read_clip(out).frames.shape == read_clip(flickering_mp4).frames.shape
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(summary["seconds"]) == {"atlas", "filter", "refine"}


def test_remove_seams_takes_a_chunk_seam_out_before_the_atlas(tmp_path):
    """--remove-seams (the whole-clip path: seams are measured over the clip): the seam's frame
    is in the summary and in the log, and the saved frames' halves have one colour."""
    from deflicker_impl.evaluation.synthetic import add_chunk_seam

    clean = panning_clip(frames=16, h=48, w=64, speed=0.5, detail=5)
    frames_in = tmp_path / "seam_in"
    write_clip(frames_in, add_chunk_seam(clean))
    res = run_cli("deflicker", str(frames_in), str(tmp_path / "out"), "--remove-seams",
                  "--stop-after", "filter", "--iterations", "40", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["chunk_seams"] == [8]
    assert set(summary["seconds"]) == {"seams", "atlas", "filter"}
    assert "chunk seams removed at frame 8 (R +15, G +0, B -13)" in res.stderr
    out = read_clip(tmp_path / "out").frames

    def halves(x):
        return x[8:].mean(dim=(0, 1, 2)) - x[:8].mean(dim=(0, 1, 2))

    assert float((halves(out) - halves(clean)).abs().max()) * 255 < 2.0


def test_missing_refine_weights_are_named(flickering_mp4, tmp_path):
    res = run_cli("deflicker", str(flickering_mp4), str(tmp_path / "o.mp4"), "--stop-after",
                  "refine", "--iterations", "5", "--quiet", "--refine-weights",
                  str(tmp_path / "no_such_refine.safetensors"))
    assert res.returncode == 2
    assert "no_such_refine.safetensors" in res.stderr


def test_masks_from_files_or_segment_anything_fit_two_layers(tmp_path):
    from sam_checkpoints import tiny_sam_checkpoint

    clip, masks = moving_object_clip(frames=6, h=32, w=48)
    src = write_clip(tmp_path / "obj.mp4", global_gain_flicker(clip, 0.3), 10)
    # Masks as a folder of images at half the size (resized to the frames on the way in).
    mask_dir = write_clip(tmp_path / "masks", masks[:, ::2, ::2, None].expand(-1, -1, -1, 3))
    res = run_cli("deflicker", str(src), str(tmp_path / "o.mp4"), "--stop-after", "atlas",
                  "--iterations", "30", "--quiet", "--masks", str(mask_dir))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["layers"] == 2

    sam = tiny_sam_checkpoint(tmp_path / "tiny_sam.pth")
    res = run_cli("deflicker", str(src), str(tmp_path / "o2.mp4"), "--stop-after", "atlas",
                  "--iterations", "30", "--quiet", "--sam-checkpoint", str(sam),
                  "--sam-box", "10,6,30,26")
    assert res.returncode == 0, res.stderr
    assert read_clip(tmp_path / "o2.mp4").frames.shape == read_clip(src).frames.shape

    res = run_cli("deflicker", str(src), str(tmp_path / "o3.mp4"), "--sam-points", "5,5")
    assert res.returncode == 2 and "--sam-checkpoint" in res.stderr


@pytest.mark.parametrize("make_args,message", [
    (lambda d, src: ["deflicker", str(d / "missing.mp4"), str(d / "o.mp4")], "does not exist"),
    (lambda d, src: ["deflicker", str(src), str(src)], "must differ"),
    (lambda d, src: ["deflicker", str(src), str(d / "o.xyz"), "--stop-after", "atlas",
                     "--iterations", "5"], "Unknown output type"),
])
def test_bad_invocations_exit_2_with_a_message(flickering_mp4, tmp_path, make_args, message):
    res = run_cli(*make_args(tmp_path, flickering_mp4))
    assert res.returncode == 2
    assert message in res.stderr


def test_failed_write_leaves_no_partial_output(flickering_mp4, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("deflicker", str(flickering_mp4), str(blocker / "o.mp4"), "--stop-after",
                  "atlas", "--iterations", "5", "--quiet")
    assert res.returncode == 2 and "Cannot" in res.stderr
    assert not list(tmp_path.glob("**/*.partial*"))


def test_metrics_and_flicker_commands(flickering_mp4, tmp_path):
    res = run_cli("metrics", str(flickering_mp4))
    report = json.loads(res.stdout)
    assert report["frames"] == 10 and report["flicker_index"] > 1.0 and report["warping_error"] > 0
    clean = write_clip(tmp_path / "clean.mp4", panning_clip(frames=6, h=32, w=32, detail=4), 10)
    assert run_cli("flicker", str(clean), str(tmp_path / "fl.mp4"), "--window", "2").returncode == 0
    res = run_cli("metrics", str(tmp_path / "fl.mp4"), "--reference", str(clean))
    assert json.loads(res.stdout)["psnr_to_reference"] < 40
    flow_from = json.loads(run_cli("metrics", str(clean), "--flow-from",
                                   str(tmp_path / "fl.mp4")).stdout)
    assert "psnr_to_reference" not in flow_from and flow_from["warping_error"] >= 0
