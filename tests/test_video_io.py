"""Reading and writing clips keeps frame count, size and frame rate; bad paths fail clearly."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from synthetic_clips import panning_clip

from deflicker_impl import DeflickerInputError
from deflicker_impl.video_io import read_clip, write_clip


@pytest.mark.parametrize("name,fps,tol", [
    # 4:2:0 H.264 (the playable default for even sizes) costs a few levels even at high quality.
    ("clip.mp4", Fraction(30000, 1001), 5.0 / 255),
    ("odd.mp4", Fraction(12), 2.5 / 255),  # odd size: written 4:4:4, not resized
    ("clip.webm", Fraction(25), 3.5 / 255),
    ("clip.mov", Fraction(24), 5.0 / 255),
    ("clip.gif", Fraction(10), 0.2),  # 256-colour palette
    ("clip.webp", Fraction(10), 1.0 / 255),  # lossless
    ("frames", Fraction(24), 0.6 / 255),  # folder of PNGs (plays at the default 24 fps)
])
def test_round_trip_keeps_count_size_and_rate(tmp_path, name, fps, tol):
    h, w = (37, 51) if name.startswith("odd") else (48, 64)
    # Smooth colours: H.264 stores colour at half resolution (4:2:0) for even sizes.
    clip = panning_clip(frames=7, h=h, w=w, detail=4)
    write_clip(tmp_path / name, clip, fps)
    back = read_clip(tmp_path / name)
    assert back.frames.shape == clip.shape
    assert back.fps == fps
    assert (back.frames - clip).abs().mean() < tol


@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif", "frames"])
def test_max_frames_stops_decoding_early(tmp_path, name):
    write_clip(tmp_path / name, panning_clip(frames=9, h=16, w=16, detail=4), 10)
    assert read_clip(tmp_path / name, max_frames=4).frames.shape[0] == 4
    assert read_clip(tmp_path / name, max_frames=100).frames.shape[0] == 9


def test_folder_frames_are_read_in_natural_order(tmp_path):
    from PIL import Image

    for i in (10, 2, 1):  # 'frame_10' sorts after 'frame_2'
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / f"frame_{i}.png")
    reds = read_clip(tmp_path).frames[:, 0, 0, 0] * 255
    assert reds.round().tolist() == [20.0, 40.0, 200.0]


def test_missing_input_is_named(tmp_path):
    with pytest.raises(DeflickerInputError, match="does not exist"):
        read_clip(tmp_path / "nope.mp4")


def test_corrupt_video_is_reported(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(DeflickerInputError, match="corrupt"):
        read_clip(bad)


def test_truncated_video_still_reads_what_is_there_or_fails_clearly(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", panning_clip(frames=20, h=48, w=64), 24)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        clip = read_clip(path)
    except DeflickerInputError as exc:
        assert str(path) in str(exc)
    else:
        assert 0 < clip.num_frames <= 20


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(DeflickerInputError, match="no image files"):
        read_clip(tmp_path)


def test_unwritable_output_is_reported(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(DeflickerInputError, match="Cannot"):
        write_clip(blocker / "out.mp4", torch.rand(2, 8, 8, 3), 24)


def test_unknown_output_type_is_refused(tmp_path):
    with pytest.raises(DeflickerInputError, match="Unknown output type"):
        write_clip(tmp_path / "out.xyz", torch.rand(2, 8, 8, 3), 24)
