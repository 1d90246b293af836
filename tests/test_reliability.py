"""Reliability: a user's files are never overwritten or mixed, everything checkable fails before the
work, reading is honest, networks' output is checked, Ctrl-C always exits 130 with one line.

The README's table "What happens when ..." lists these cases; each is specified here.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_clips import global_gain_flicker, panning_clip

from deflicker_impl import output_safety
from deflicker_impl.clip import prepare_clip
from deflicker_impl.device import resolve_device
from deflicker_impl.errors import DeflickerInputError, WeightsError
from deflicker_impl.filter.apply import FilterConfig, apply_neural_filter, load_neural_filter
from deflicker_impl.filter.net import FilterNetConfig, build_neural_filter
from deflicker_impl.output_safety import OutputTransaction, interrupt_message, plan_outputs
from deflicker_impl.preflight import GIB, WORKING_BYTES, check_memory, estimate_peak_bytes
from deflicker_impl.video_io import ClipInfo, ClipWriter, probe_clip, read_clip, write_clip
from deflicker_impl.weights import save_weights

ROOT = Path(__file__).resolve().parent.parent
SMALL_FILTER = FilterNetConfig(widths=(8, 12, 16), head_width=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "deflicker_impl", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def digest(path: Path) -> str:
    """Content of a file, or of a folder (names and bytes of everything in it)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def tree(folder: Path) -> list[str]:
    """Every name under `folder`, hidden temporaries included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory):
    clip = global_gain_flicker(panning_clip(frames=8, h=32, w=48, speed=1.0, detail=4), 0.3)
    return write_clip(tmp_path_factory.mktemp("rel") / "in.mp4", clip, 12)


@pytest.fixture(scope="module")
def truncated_mkv(tmp_path_factory):
    """An mkv whose header declares 48 frames but whose data stop after a few: any option
    error reported for it proves the check ran before decoding (decoding would fail)."""
    folder = tmp_path_factory.mktemp("trunc")
    whole = write_clip(folder / "whole.mkv", panning_clip(frames=48, h=32, w=48, detail=4), 24)
    data = whole.read_bytes()
    cut = folder / "cut.mkv"
    cut.write_bytes(data[: len(data) * 4 // 10])
    return cut


# 1. No user file is ever overwritten or mixed ---------------------------------------------

def test_an_output_that_resolves_to_an_input_is_refused(tmp_path, clip_mp4):
    src = tmp_path / "in.mp4"
    src.write_bytes(clip_mp4.read_bytes())
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    (tmp_path / "sub").mkdir()
    relative = os.path.relpath(tmp_path / "sub" / ".." / "in.mp4")
    for out in (src, link, hard, relative):
        with pytest.raises(DeflickerInputError, match="must differ from every input"):
            plan_outputs({"OUTPUT": (out, 8)}, {"INPUT": src})


def test_outputs_that_collide_or_contain_an_input_are_refused(tmp_path):
    frames_in = tmp_path / "frames_in"
    frames_in.mkdir()
    (frames_in / "f1.png").write_bytes(b"")
    cases = [
        ({"OUTPUT": (tmp_path / "a.mp4", 8), "--save-atlas-frames": (tmp_path / "a.mp4", 8)},
         "collide"),
        ({"OUTPUT": (tmp_path / "out", 8), "--save-texture": (tmp_path / "out" / "t.png", 1)},
         "collide"),
        ({"OUTPUT": (tmp_path, 8)}, "contains INPUT"),
        ({"OUTPUT": (frames_in / "x.png", 1)}, "would become one of its frames"),
    ]
    for outputs, words in cases:
        with pytest.raises(DeflickerInputError, match=words):
            plan_outputs(outputs, {"INPUT": frames_in})


def test_a_frame_folder_that_holds_frames_is_refused_or_replaced_whole(tmp_path):
    old = tmp_path / "out"
    write_clip(old, torch.rand(12, 8, 8, 3))
    before = digest(old)
    with pytest.raises(DeflickerInputError, match="already holds 12 frame"):
        plan_outputs({"OUTPUT": (old, 4)}, {})
    target = plan_outputs({"OUTPUT": (old, 4)}, {}, overwrite=True)["OUTPUT"]
    assert digest(old) == before  # planning touches nothing
    with OutputTransaction() as outputs:
        outputs.write(target, torch.rand(4, 8, 8, 3), 24)
        assert digest(old) == before  # not in place before the commit
        outputs.commit()
    assert len(read_clip(old).frames) == 4 and len(list(old.iterdir())) == 4
    assert tree(tmp_path) == ["out"] + [f"out/frame_{i:05d}.png" for i in range(4)]
    # A folder with anything besides frames is never deleted, even with --overwrite.
    (old / "notes.txt").write_text("mine")
    with pytest.raises(DeflickerInputError, match="other things besides frames"):
        plan_outputs({"OUTPUT": (old, 4)}, {}, overwrite=True)


def test_an_interrupt_while_writing_leaves_the_previous_state_exactly(tmp_path, monkeypatch):
    write_clip(tmp_path / "out", torch.rand(3, 8, 8, 3))
    (tmp_path / "side.mp4").write_bytes(b"previous side output")
    before = {name: digest(tmp_path / name) for name in ("out", "side.mp4")}
    names_before = tree(tmp_path)
    targets = plan_outputs({"OUTPUT": (tmp_path / "out", 5),
                            "--save-atlas-frames": (tmp_path / "side.mp4", 5),
                            "--save-texture": (tmp_path / "new" / "deeper" / "t.png", 1)},
                           {}, overwrite=True)
    real_write = ClipWriter.write

    def write_two_frames_then_ctrl_c(writer, frames):
        real_write(writer, frames[:2])  # two PNGs of a folder are already on disk
        raise KeyboardInterrupt

    outputs = OutputTransaction()
    with pytest.raises(KeyboardInterrupt), outputs:
        outputs.write(targets["--save-texture"], torch.rand(1, 8, 8, 3), 24)
        outputs.write(targets["--save-atlas-frames"], torch.rand(5, 8, 8, 3), 24)
        monkeypatch.setattr(ClipWriter, "write", write_two_frames_then_ctrl_c)
        outputs.write(targets["OUTPUT"], torch.rand(5, 8, 8, 3), 24)
    assert tree(tmp_path) == names_before  # no temporaries, no created folders
    assert {name: digest(tmp_path / name) for name in before} == before
    assert interrupt_message(outputs) == (
        "interrupted: no output was written (existing files are unchanged)")


def test_ctrl_c_and_sigterm_are_held_back_while_a_folder_is_replaced(tmp_path, monkeypatch):
    """The batch turns SIGTERM into an interruption: neither it nor Ctrl-C may fall between the
    two renames that replace a frame folder (the old one set aside, the new one not yet in)."""
    write_clip(tmp_path / "out", torch.rand(3, 8, 8, 3))
    target = plan_outputs({"OUTPUT": (tmp_path / "out", 2)}, {}, overwrite=True)["OUTPUT"]
    masks_during_renames = []
    real_rename = os.rename

    def rename(src, dst):
        masks_during_renames.append(signal.pthread_sigmask(signal.SIG_BLOCK, set()))
        real_rename(src, dst)

    monkeypatch.setattr(output_safety.os, "rename", rename)
    with OutputTransaction() as outputs:
        outputs.write(target, torch.rand(2, 8, 8, 3), 24)
        outputs.commit()
    monkeypatch.undo()

    assert len(masks_during_renames) == 2  # the old folder aside, the new one in
    assert all({signal.SIGINT, signal.SIGTERM} <= mask for mask in masks_during_renames)
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert tree(tmp_path) == ["out", "out/frame_00000.png", "out/frame_00001.png"]


def test_write_errors_name_the_users_path_not_the_temporary(tmp_path):
    target = plan_outputs({"OUTPUT": (tmp_path / "o.png", None)}, {})["OUTPUT"]  # count unknown
    with OutputTransaction() as outputs, pytest.raises(DeflickerInputError) as caught:
        outputs.write(target, torch.rand(2, 8, 8, 3), 24)  # two frames for one image
    assert str(caught.value).startswith(f"{tmp_path / 'o.png'} is a single-image file")
    assert ".partial" not in str(caught.value) and tree(tmp_path) == []


def test_the_interrupt_message_after_the_commit_names_what_was_written(tmp_path):
    targets = plan_outputs({"OUTPUT": (tmp_path / "o.gif", 2), "--plot": (tmp_path / "p.png", 1)},
                           {})
    with OutputTransaction() as outputs:
        outputs.write(targets["OUTPUT"], torch.rand(2, 8, 8, 3), 24)
        outputs.write(targets["--plot"], torch.rand(1, 8, 8, 3), 24)
        assert outputs.commit() == [tmp_path / "o.gif", tmp_path / "p.png"]
    assert interrupt_message(outputs) == (
        f"interrupted after the outputs were written: {tmp_path / 'o.gif'}, {tmp_path / 'p.png'}")
    assert tree(tmp_path) == ["o.gif", "p.png"] and read_clip(tmp_path / "o.gif").num_frames == 2


def test_a_texture_image_of_several_segments_is_written_after_the_fit(tmp_path):
    clip = panning_clip(frames=10, h=24, w=32, detail=4)
    src = write_clip(tmp_path / "in.mp4", clip, 12)
    res = run_cli("deflicker", str(src), str(tmp_path / "o.mp4"), "--stop-after", "atlas",
                  "--iterations", "5", "--quiet", "--max-segment-frames", "6",
                  "--segment-overlap", "1", "--no-scene-cuts",
                  "--save-texture", str(tmp_path / "t.png"))
    assert res.returncode == 0, res.stderr
    segments = json.loads(res.stdout.strip().splitlines()[-1])["segments"]
    assert len(segments) == 2
    texture = read_clip(tmp_path / "t.png").frames  # one image: the textures one above another
    assert texture.shape[0] == 1 and texture.shape[1] % 2 == 0
    top, bottom = texture[0].chunk(2, dim=0)
    assert float((top - bottom).abs().mean()) > 0  # two different segment textures


def test_cli_commands_never_overwrite_their_inputs(tmp_path, clip_mp4):
    a = tmp_path / "a.mp4"
    a.write_bytes(clip_mp4.read_bytes())
    before = digest(a)
    for args in (["compare", str(a), str(clip_mp4), str(a)],
                 ["flicker", str(a), str(a)],
                 ["flicker", str(a), str(tmp_path / "." / "a.mp4")],
                 ["deflicker", str(a), str(tmp_path / "o.mp4"), "--save-atlas-frames", str(a)],
                 ["deflicker", str(a), str(tmp_path / "o.mp4"),
                  "--save-atlas-frames", str(tmp_path / "o.mp4")]):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert digest(a) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_cli_frame_folder_output_with_old_frames_is_refused_then_replaced(tmp_path, clip_mp4):
    out = tmp_path / "frames"
    write_clip(out, torch.rand(12, 32, 48, 3))
    before = digest(out)
    args = ["deflicker", str(clip_mp4), str(out), "--stop-after", "atlas", "--iterations", "5",
            "--quiet"]
    res = run_cli(*args)
    assert res.returncode == 2 and "already holds 12 frame" in res.stderr
    assert "--overwrite" in res.stderr and digest(out) == before
    res = run_cli(*args, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert read_clip(out).num_frames == 8  # 8 new frames, none of the 12 old ones
    assert tree(tmp_path) == ["frames"] + [f"frames/frame_{i:05d}.png" for i in range(8)]


def test_ctrl_c_during_the_run_exits_130_and_leaves_the_old_output(tmp_path, clip_mp4):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"the previous output")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deflicker_impl", "deflicker", str(clip_mp4), str(out),
         "--iterations", "100000", "--quiet", "--save-atlas-frames", str(tmp_path / "atlas")],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines = [proc.stderr.readline()]  # "read ...": the fit has started
    assert lines[0].startswith("read "), lines
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert [line for line in rest.splitlines() if line] == [
        "interrupted: no output was written (existing files are unchanged)"]
    assert out.read_bytes() == b"the previous output"
    assert tree(tmp_path) == ["o.mp4"]


def _wait_until_torch_is_loading(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the child process maps PyTorch's libraries: it is inside `import torch`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if "torch" in Path(f"/proc/{proc.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.005)
    pytest.fail("the CLI never started importing torch")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_ctrl_c_during_start_up_exits_130_with_one_line(clip_mp4, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deflicker_impl", "deflicker", str(clip_mp4),
         str(tmp_path / "o.mp4"), "--quiet"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _wait_until_torch_is_loading(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "interrupted during start-up: nothing was read or written\n"
    assert not (tmp_path / "o.mp4").exists()


# 2. Fail before the work ------------------------------------------------------------------

@pytest.mark.parametrize("extra,words", [
    (["--atlas-resolution", "0"], "--atlas-resolution is 0; it must be between 32 and 16384"),
    (["--atlas-resolution", "-5"], "--atlas-resolution is -5"),
    (["--iterations", "-1"], "--iterations is -1"),
    (["--cut-sensitivity", "2"], "--cut-sensitivity is 2.0; it must be between 0.0 and 1.0"),
    (["--fit-long-side", "4"], "--fit-long-side is 4"),
    (["--max-segment-frames", "10", "--segment-overlap", "8"], "segment_overlap (8)"),
    (["--device", "mps"], "MPS is not available"),
    (["--device", "meta"], "'meta' cannot run the deflicker"),
    (["--device", "cuda:7"], "Device 'cuda:7'"),
    (["--device", "tpu"], "Unknown device 'tpu'"),
    (["--sam-checkpoint", "nowhere/sam.pth", "--sam-box", "1,1,5,5"], "nowhere/sam.pth"),
    (["--sam-points", "5,5"], "need --sam-checkpoint"),
])
def test_bad_options_fail_before_decoding(truncated_mkv, tmp_path, extra, words):
    res = run_cli("deflicker", str(truncated_mkv), str(tmp_path / "o.mp4"), "--quiet", *extra)
    assert res.returncode == 2
    assert words in res.stderr and "declares" not in res.stderr  # INPUT was never decoded
    assert res.stderr.count("\n") == 1 and tree(tmp_path) == []


def test_bad_outputs_fail_before_decoding_naming_the_users_path(truncated_mkv, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        ("o.xyz", [], "Unknown output type '.xyz' for OUTPUT o.xyz"),
        ("o.png", [], "OUTPUT o.png is a single-image file but there are 48 frames"),
        (str(blocker / "o.mp4"), [], f"{blocker} is a file"),
        ("o.mp4", ["--save-texture", "t.doc"], "for --save-texture t.doc"),
    ]
    for output, extra, words in cases:
        res = subprocess.run(
            [sys.executable, "-m", "deflicker_impl", "deflicker", str(truncated_mkv), output,
             "--quiet", *extra], cwd=tmp_path, capture_output=True, text=True, check=False,
            env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
        assert res.returncode == 2 and words in res.stderr, (output, res.stderr)
        assert ".partial" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_output_folder_fails_before_decoding(truncated_mkv, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        res = run_cli("deflicker", str(truncated_mkv), str(locked / "o.mp4"), "--quiet")
    finally:
        locked.chmod(0o700)
    assert res.returncode == 2 and f"folder {locked} is not writable" in res.stderr


def test_bad_weights_of_every_stage_that_runs_fail_before_decoding(truncated_mkv, tmp_path):
    net = build_neural_filter(SMALL_FILTER)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    nan_file = save_weights(tmp_path / "nan_filter.safetensors", net, "neural_filter")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    out = tmp_path / "o.mp4"
    cases = [
        (["--filter-weights", str(nan_file)], f"{nan_file} is damaged", "NaN or infinite"),
        (["--filter-weights", str(garbage)], str(garbage), "cannot be read"),
        (["--refine-weights", str(tmp_path / "none.safetensors")], "none.safetensors",
         "not found"),
    ]
    for extra, path_words, what in cases:
        res = run_cli("deflicker", str(truncated_mkv), str(out), "--quiet", *extra)
        assert res.returncode == 2 and path_words in res.stderr and what in res.stderr
        assert "declares" not in res.stderr
    # The refinement's weights are not needed when it does not run.
    res = run_cli("deflicker", str(truncated_mkv), str(out), "--quiet", "--stop-after",
                  "filter", "--refine-weights", str(tmp_path / "none.safetensors"))
    assert res.returncode == 2 and "declares 48 frames" in res.stderr


def test_a_run_too_large_for_the_memory_is_refused_before_decoding(truncated_mkv, tmp_path):
    res = run_cli("deflicker", str(truncated_mkv), str(tmp_path / "o.mp4"), "--quiet",
                  "--memory-limit", "0.5")
    assert res.returncode == 2
    # The run streams: its memory is that of one segment (here the whole 48 frames).
    assert "one segment of 48 frames of 48x32 needs about 1.5 GB" in res.stderr
    assert "0.5 GB are --memory-limit 0.5 GB" in res.stderr and "declares" not in res.stderr
    assert "Even the shortest segments would not fit" in res.stderr
    res = run_cli("deflicker", str(truncated_mkv), str(tmp_path / "o.mp4"), "--quiet",
                  "--memory-limit", "0.5", "--faithful")  # not streamed: the whole clip
    assert res.returncode == 2 and "48 frames of 48x32 need about 1.5 GB" in res.stderr
    assert "holds the whole clip because it uses faithful colour" in res.stderr


def test_memory_estimate_from_the_header_of_a_long_1080p_clip():
    info = ClipInfo(frames=10000, height=1080, width=1920, fps=24)
    clip = 10000 * 1080 * 1920 * 3 * 4
    assert info.float32_bytes() == clip  # 232 GiB as float32 (62 GB as 8-bit frames)
    assert estimate_peak_bytes(info) == int(clip * 1.5) + WORKING_BYTES
    assert estimate_peak_bytes(info, "float32") == int(clip * 2.25) + WORKING_BYTES
    with pytest.raises(DeflickerInputError,
                       match=r"10000 frames of 1920x1080 need about 349\.1 GB .* 231\.7 GB"):
        check_memory(info, "INPUT", "long.mp4", limit_gb=24)
    assert check_memory(info, "INPUT", "long.mp4", limit_gb=0) > 80 * GIB  # 0: no check


def test_flicker_window_and_strength_are_checked(clip_mp4, tmp_path):
    res = run_cli("flicker", str(clip_mp4), str(tmp_path / "f.mp4"), "--window", "0")
    assert res.returncode == 2 and "--window is 0; it must be at least 1" in res.stderr
    res = run_cli("flicker", str(clip_mp4), str(tmp_path / "f.mp4"), "--strength", "-1")
    assert res.returncode == 2 and "--strength is -1.0" in res.stderr
    assert tree(tmp_path) == []


# 3. Honest reading ------------------------------------------------------------------------

def _truncate(path: Path, fraction: float = 0.4) -> Path:
    cut = path.with_name("cut_" + path.name)
    data = path.read_bytes()
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def _faststart_mp4(path: Path, frames: torch.Tensor) -> Path:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in (frames * 255).round().byte().numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_a_truncated_video_is_an_error_unless_allowed_with_the_count(tmp_path, suffix):
    clean = panning_clip(frames=48, h=32, w=48, detail=4)
    if suffix == ".mp4":  # index at the front: the container still declares all 48 frames
        whole = _faststart_mp4(tmp_path / "whole.mp4", clean)
    else:
        whole = write_clip(tmp_path / f"whole{suffix}", clean, 24)
    assert read_clip(whole).num_frames == 48 and probe_clip(whole).frames == 48
    cut = _truncate(whole, 0.7 if suffix == ".mp4" else 0.4)  # mp4: its first frames intact
    with pytest.raises(DeflickerInputError, match="truncated or damaged.*--allow-truncated"):
        read_clip(cut)
    kept = read_clip(cut, allow_truncated=True)
    assert 0 < kept.num_frames < 48 and kept.declared_frames >= kept.num_frames + 1
    res = run_cli("metrics", str(cut))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    res = run_cli("metrics", str(cut), "--allow-truncated")
    assert res.returncode == 0, res.stderr
    assert f"read {kept.num_frames} of the {kept.declared_frames} frames" in res.stderr
    assert f'"frames": {kept.num_frames}' in res.stdout


def test_sixteen_bit_png_and_float_tiff_frames_keep_their_range(tmp_path):
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    gray16 = (rng.random((2, 12, 16)) * 65535).astype(np.uint16)
    rgb16 = (rng.random((2, 12, 16, 3)) * 65535).astype(np.uint16)
    gray_f = rng.random((2, 12, 16)).astype(np.float32)
    rgb_f = rng.random((2, 12, 16, 3)).astype(np.float32)
    folders = {name: tmp_path / name for name in ("gray16", "rgb16", "grayf", "rgbf")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(2):
        Image.fromarray(gray16[i]).save(folders["gray16"] / f"{i}.png")
        cv2.imwrite(str(folders["rgb16"] / f"{i}.png"), rgb16[i][..., ::-1])
        Image.fromarray(gray_f[i]).save(folders["grayf"] / f"{i}.tif")
        cv2.imwrite(str(folders["rgbf"] / f"{i}.tif"), rgb_f[i][..., ::-1])
    expected = {
        "gray16": np.repeat(gray16[..., None], 3, -1) / 65535.0,
        "rgb16": rgb16 / 65535.0,
        "grayf": np.repeat(gray_f[..., None], 3, -1),
        "rgbf": rgb_f,
    }
    for name, folder in folders.items():
        frames = read_clip(folder).frames.double().numpy()
        assert np.abs(frames - expected[name]).max() < 1e-6, name  # the real values, not 8 bits
    hdr = tmp_path / "hdr"
    hdr.mkdir()
    Image.fromarray(gray_f[0] * 4).save(hdr / "0.tif")
    with pytest.raises(DeflickerInputError, match=r"float frames\) has values .*must be float in 0..1"):
        read_clip(hdr)


@pytest.mark.parametrize("frames,words", [
    (torch.rand(2, 8, 8, 3) * 255, "0..1 .*It looks like 0..255: divide by 255"),
    (torch.rand(2, 8, 8, 3) * 2 - 1, "It looks like -1..1: use \\(x \\+ 1\\) / 2"),
    (torch.rand(2, 8, 8, 3) > 0.5, "dtype torch.bool"),
    (torch.rand(2, 8, 8, 3, dtype=torch.complex64), "dtype torch.complex64"),
    (torch.full((2, 8, 8, 3), 300, dtype=torch.int32), "values 300..300.*0..255"),
    (torch.empty(2, 8, 8, 3, device="meta"), "meta tensor"),
])
def test_library_input_out_of_range_or_of_a_wrong_type_is_refused(frames, words):
    with pytest.raises(DeflickerInputError, match=words):
        prepare_clip(frames)


def test_resampling_overshoot_within_the_tolerance_is_clamped():
    frames = torch.rand(2, 8, 8, 3)
    frames[0, 0, 0] = torch.tensor([-0.03, 1.04, 0.5])
    out = prepare_clip(frames)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert out[0, 0, 0].tolist() == pytest.approx([0.0, 1.0, 0.5])


# 5. Networks' output checked; devices -----------------------------------------------------

def test_non_finite_network_output_stops_the_run_naming_the_weights_file(tmp_path):
    net = build_neural_filter(SMALL_FILTER)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim > 1:
                p.fill_(1e12)  # finite weights whose activations overflow to inf
    path = save_weights(tmp_path / "overflowing.safetensors", net, "neural_filter")
    config = FilterConfig(weights_path=path, device="cpu")
    load_neural_filter(config)  # loads: the weights themselves are finite
    frames = torch.rand(2, 16, 16, 3)
    with pytest.raises(WeightsError, match=f"NaN or infinite values; weights file .*{path.name}"):
        apply_neural_filter(frames, frames, config)


@pytest.mark.parametrize("name,words", [
    ("mps", "MPS is not available"), ("meta", "'meta' cannot run"),
    ("cuda:3", "'cuda:3'"), ("nonsense", "Unknown device"),
])
def test_unknown_or_unavailable_devices_are_refused(name, words):
    if name.startswith("cuda") and torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    if name == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(DeflickerInputError, match=words):
        resolve_device(name)
    with pytest.raises(DeflickerInputError, match=words):
        resolve_device(torch.device(name) if name != "nonsense" else name)


def test_the_readme_table_lists_what_happens_when():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## What happens when ..."):]
    table = table[: table.index("\n## ")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 15
    for words in ("compare A B A", "--overwrite", "Ctrl-C", "--allow-truncated", "16-bit",
                  "--memory-limit", "--device meta", "NaN or infinite", "0..255"):
        assert words in table, words


def test_every_subcommand_documents_its_safety_options():
    for command, options in (("deflicker", ("--overwrite", "--allow-truncated", "--memory-limit")),
                             ("compare", ("--overwrite", "--allow-truncated")),
                             ("flicker", ("--overwrite", "--allow-truncated")),
                             ("metrics", ("--allow-truncated",)),
                             ("batch", ("--overwrite", "--allow-truncated", "--max-clip-gb"))):
        res = run_cli(command, "--help")
        assert res.returncode == 0
        for option in options:
            assert option in res.stdout, (command, option)
    assert "--overwrite" not in run_cli("metrics", "--help").stdout  # it writes nothing
