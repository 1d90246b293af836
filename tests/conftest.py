"""Shared fixtures: the real ComfyUI host (in-process and HTTP server) and synthetic clips.

ComfyUI is imported only when a test asks for `comfy` or `comfy_server`, never at collection.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# One thread for the pack in every test (run_pipeline, the nodes and the CLI subprocesses apply
# the pack's thread choice, see deflicker_impl/threads.py): CI and dev machines are shared, and
# suites must not depend on the load. Tests of the choice itself clear it.
os.environ.setdefault("DEFLICKER_THREADS", "1")


class _ProjectRootIsNotATestPackage:
    """Collect the project root as a plain directory, not as a Python package.

    The root's __init__.py is the pack's entry point for ComfyUI. As a package, pytest would
    import it (as a module named after the folder, e.g. `main`, a name ComfyUI's own main.py
    also answers to) before every session; the pack must only ever be imported by the host.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if path == PROJECT_ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    # A registered plugin (unlike this conftest's own hooks) also sees the root directory.
    config.pluginmanager.register(_ProjectRootIsNotATestPackage(), "project-root-dir")


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """ComfyUI imported into this process with the pack loaded (one per test session)."""
    from tools.comfy_host import ComfyInProcess

    return ComfyInProcess.shared(tmp_path_factory.mktemp("comfy_inprocess"))


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """ComfyUI's main.py serving on a free loopback port; killed at the end of the session."""
    from tools.comfy_host import ComfyServer

    with ComfyServer(tmp_path_factory.mktemp("comfy_server")) as server:
        yield server


def flicker_frames(frames: int = 12, width: int = 64, height: int = 48,
                   seed: int = 0) -> np.ndarray:
    """A moving scene with strong per-frame brightness flicker, uint8 [T,H,W,3].

    Content: a colour gradient background and a bright disc that moves right; each frame gets a
    random global gain in [0.7, 1.3] (zero-mean over the clip), so consecutive frames jump.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([0.30 + 0.25 * x / width, 0.35 + 0.2 * y / height,
                           np.full_like(x, 0.45)], axis=-1)
    gains = rng.uniform(0.7, 1.3, size=frames)
    gains = gains / gains.mean()
    clip = []
    for t in range(frames):
        cx = width * (0.2 + 0.6 * t / max(frames - 1, 1))
        disc = ((x - cx) ** 2 + (y - height / 2) ** 2) < (min(width, height) / 5) ** 2
        frame = background.copy()
        frame[disc] = (0.75, 0.6, 0.35)
        clip.append(np.clip(frame * gains[t], 0.0, 1.0))
    return np.round(np.stack(clip) * 255).astype(np.uint8)


def write_clip(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Encode uint8 [T,H,W,3] as near-lossless H.264 mp4 (4:4:4, so odd sizes work)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "1", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_clip(path: Path) -> np.ndarray:
    """Decode a video file to uint8 [T,H,W,3]."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def read_images(paths: list[Path]) -> np.ndarray:
    """Load saved PNGs as uint8 [T,H,W,3] in the given order."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def flicker_index(frames: np.ndarray) -> float:
    """Global flicker index: mean |Y_t - median5(Y)_t| of per-frame mean luma (0..255 scale)."""
    rgb = frames.astype(np.float64)
    luma = (rgb @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2))
    medians = np.array([np.median(luma[max(0, t - 2):t + 3]) for t in range(len(luma))])
    return float(np.abs(luma - medians).mean())


@pytest.fixture
def make_clip():
    """make_clip(folder, name, frames=12, width=64, height=48, fps=8) -> uint8 frames written."""

    def _make(folder: Path, name: str, frames: int = 12, width: int = 64, height: int = 48,
              fps: int = 8, seed: int = 0) -> np.ndarray:
        clip = flicker_frames(frames, width, height, seed)
        write_clip(Path(folder) / name, clip, fps)
        return read_clip(Path(folder) / name)  # what the host will decode

    return _make


@pytest.fixture
def sam_checkpoint_in_comfy(comfy):
    """A tiny random Segment Anything checkpoint in the host's models/sams (the example
    workflow with a foreground layer needs one; no real checkpoint can be had offline)."""
    from sam_checkpoints import tiny_sam_checkpoint

    path = comfy.base / "models" / "sams" / "sam_tiny_ci.pth"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tiny_sam_checkpoint(path)
    return path


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test: on a CPU shared with other jobs, two OpenMP
    threads run many times slower. Modules use it with `pytest.mark.usefixtures`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
