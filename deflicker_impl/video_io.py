"""Reading and writing clips: video files, animated images and folders of frames.

Clips come back as float32 [T,H,W,3] in 0..1 together with their frame rate, which is kept
exactly (a Fraction such as 30000/1001) so that a written clip plays at the input's speed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .errors import DeflickerInputError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
ANIMATED_IMAGE_SUFFIXES = (".gif", ".webp", ".apng")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FPS = Fraction(24)


@dataclass
class Clip:
    """Frames [T,H,W,3] float32 in 0..1 plus the rate they play at."""

    frames: torch.Tensor
    fps: Fraction

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _stack_uint8(arrays: list[np.ndarray], source: Path) -> torch.Tensor:
    if not arrays:
        raise DeflickerInputError(f"No frames could be read from {source}.")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DeflickerInputError(
            f"Frames in {source} have different sizes {sorted(shapes)[:3]}; all frames of a clip "
            "must share one size."
        )
    # Filled frame by frame: no stacked uint8 copy and no float temporary of the whole clip.
    out = torch.empty((len(arrays), *arrays[0].shape), dtype=torch.float32)
    for i, a in enumerate(arrays):
        out[i] = torch.from_numpy(a if a.flags.writeable else a.copy())
        out[i].div_(255.0)
    return out


def _read_folder(path: Path, max_frames: int | None) -> Clip:
    from PIL import Image

    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise DeflickerInputError(
            f"Folder {path} contains no image files ({', '.join(FRAME_SUFFIXES)})."
        )
    arrays = []
    for f in files[:max_frames]:
        try:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise DeflickerInputError(f"Cannot read frame {f}: {exc}. Is the file corrupt?") from exc
    return Clip(_stack_uint8(arrays, path), DEFAULT_FPS)


def _read_animated_image(path: Path, max_frames: int | None) -> Clip:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            arrays, durations = [], []
            for frame in ImageSequence.Iterator(im):
                if max_frames is not None and len(arrays) >= max_frames:
                    break
                arrays.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration", 0) or 0)
    except OSError as exc:
        raise DeflickerInputError(f"Cannot read {path}: {exc}. Is the file corrupt?") from exc
    mean_ms = float(np.mean(durations)) if durations else 0.0
    fps = Fraction(1000.0 / mean_ms).limit_denominator(1001) if mean_ms > 0 else DEFAULT_FPS
    return Clip(_stack_uint8(arrays, path), fps)


def _read_video_file(path: Path, max_frames: int | None) -> Clip:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DeflickerInputError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            arrays = []
            for frame in container.decode(stream):
                if max_frames is not None and len(arrays) >= max_frames:
                    break
                arrays.append(frame.to_ndarray(format="rgb24"))
    except DeflickerInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DeflickerInputError(
            f"Cannot decode {path}: {exc}. The file may be corrupt, truncated or not a video."
        ) from exc
    return Clip(_stack_uint8(arrays, path), Fraction(rate))


def read_clip(path: str | os.PathLike, max_frames: int | None = None) -> Clip:
    """Read a video file (mp4, webm, mov, mkv, avi), an animated gif/webp, or a folder of frames.

    `max_frames` stops decoding after that many frames (the rest is never decoded).
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise DeflickerInputError(f"max_frames must be at least 1, got {max_frames}.")
    if not path.exists():
        raise DeflickerInputError(f"Input {path} does not exist.")
    if path.is_dir():
        return _read_folder(path, max_frames)
    suffix = path.suffix.lower()
    if suffix in ANIMATED_IMAGE_SUFFIXES:
        return _read_animated_image(path, max_frames)
    if suffix in FRAME_SUFFIXES:
        return _read_animated_image(path, max_frames)
    return _read_video_file(path, max_frames)


def _to_uint8(frames: torch.Tensor, chunk: int = 16) -> np.ndarray:
    """[T,H,W,3] float 0..1 -> uint8 array, converted a few frames at a time (no float copy)."""
    if frames.dtype == torch.uint8:
        return frames.cpu().numpy()
    out = torch.empty(frames.shape, dtype=torch.uint8)
    for start in range(0, frames.shape[0], chunk):
        part = frames[start:start + chunk].float().clamp(0, 1).mul_(255.0).add_(0.5)
        out[start:start + chunk] = part
    return out.numpy()


def _prepare_output(path: Path) -> None:
    parent = path.parent if path.suffix else path
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeflickerInputError(f"Cannot create output folder {parent}: {exc}.") from exc
    if not os.access(parent, os.W_OK):
        raise DeflickerInputError(f"Output folder {parent} is not writable; choose another path.")


def _write_folder(path: Path, frames: np.ndarray) -> None:
    from PIL import Image

    digits = max(5, len(str(len(frames))))
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"frame_{i:0{digits}d}.png")


def _write_animated_image(path: Path, frames: np.ndarray, fps: Fraction) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    duration = max(1, round(1000 / float(fps)))
    extra = {"lossless": True} if path.suffix.lower() == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, **extra)


def _write_video_file(path: Path, frames: np.ndarray, fps: Fraction, crf: int) -> None:
    import av

    _, h, w, _ = frames.shape
    suffix = path.suffix.lower()
    if suffix == ".webm":
        codec, pix_fmt, options = "libvpx-vp9", "yuv444p", {"crf": str(crf), "b": "0"}
    else:
        # 4:2:0 needs even sizes; odd frame sizes keep their exact size with 4:4:4 instead.
        even = h % 2 == 0 and w % 2 == 0
        codec, pix_fmt = "libx264", ("yuv420p" if even else "yuv444p")
        options = {"crf": str(crf), "preset": "medium"}
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.options = options
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except (av.error.FFmpegError, OSError) as exc:
        raise DeflickerInputError(f"Cannot write video {path}: {exc}.") from exc


def write_clip(
    path: str | os.PathLike, frames: torch.Tensor, fps: Fraction | float = DEFAULT_FPS, crf: int = 14
) -> Path:
    """Write [T,H,W,3] frames to a video file, an animated gif/webp, or a folder of PNG frames.

    A path without a suffix (or an existing folder) is a folder of PNG frames. Returns the path.
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise DeflickerInputError(f"Cannot write frames of shape {tuple(frames.shape)}.")
    as_folder = path.is_dir() or path.suffix == ""
    _prepare_output(path)
    data = _to_uint8(frames)
    suffix = path.suffix.lower()
    try:
        if as_folder:
            _write_folder(path, data)
        elif suffix in (".gif", ".webp", ".apng"):
            _write_animated_image(path, data, fps)
        elif suffix in FRAME_SUFFIXES:
            if len(data) != 1:
                raise DeflickerInputError(
                    f"{path} is a single-image file but there are {len(data)} frames: give a "
                    "video file or a folder path instead."
                )
            from PIL import Image

            Image.fromarray(data[0]).save(path)
        elif suffix in VIDEO_SUFFIXES:
            _write_video_file(path, data, fps, crf)
        else:
            raise DeflickerInputError(
                f"Unknown output type {suffix!r}: use .mp4, .mov, .mkv, .webm, .gif, .webp or a "
                "folder path."
            )
    except PermissionError as exc:
        raise DeflickerInputError(f"Cannot write {path}: {exc}.") from exc
    return path


def partial_sibling(path: str | os.PathLike) -> Path:
    """Where `write_clip_atomically` builds `path` before moving it into place (a hidden name,
    so a half-written result is never taken for an output)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_clip_atomically(path: str | os.PathLike, frames: torch.Tensor,
                          fps: Fraction | float = DEFAULT_FPS) -> Path:
    """`write_clip`, but an interrupted run never leaves a truncated output at `path`: the clip
    (file or folder of frames) is written to a hidden sibling and renamed into place. An earlier
    result at `path` is replaced only once the new one is complete."""
    import shutil

    path = Path(path)
    as_folder = path.is_dir() or path.suffix == ""
    tmp = partial_sibling(path)
    old = path.with_name(f".{path.name}.replaced")
    for leftover in (tmp, old):  # from a run that was killed outright
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    try:
        if as_folder:  # an existing folder is written as one, whatever its name looks like
            tmp.mkdir(parents=True)
        write_clip(tmp, frames, fps)
        if as_folder and path.exists():
            os.replace(path, old)  # a folder cannot be renamed over a non-empty one
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
    return path


@dataclass
class ClipSize:
    """What a clip holds, read from its header (nothing decoded); frames may be an estimate."""

    frames: int
    height: int
    width: int

    @property
    def float_bytes(self) -> int:
        """Size of the decoded clip as float32 RGB."""
        return self.frames * self.height * self.width * 3 * 4


def probe_clip(path: str | os.PathLike) -> ClipSize:
    """Frame count and size of a video file, animated image or folder of frames, from headers.

    Cheap (no frame is decoded), so a clip too large for memory can be refused before reading it.
    """
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise DeflickerInputError(f"Input {path} does not exist.")
    try:
        if path.is_dir():
            files = [p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES]
            if not files:
                raise DeflickerInputError(
                    f"Folder {path} contains no image files ({', '.join(FRAME_SUFFIXES)}).")
            with Image.open(min(files, key=lambda p: _natural_key(p.name))) as im:
                return ClipSize(len(files), im.height, im.width)
        if path.suffix.lower() in ANIMATED_IMAGE_SUFFIXES + FRAME_SUFFIXES:
            with Image.open(path) as im:
                return ClipSize(getattr(im, "n_frames", 1), im.height, im.width)
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DeflickerInputError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            frames = stream.frames
            if not frames:  # not in the header (webm, some mkv): estimate from the duration
                rate = float(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
                seconds = (float(stream.duration * stream.time_base) if stream.duration
                           else (container.duration or 0) / 1e6)
                frames = max(1, round(seconds * rate))
            return ClipSize(int(frames), stream.codec_context.height, stream.codec_context.width)
    except DeflickerInputError:
        raise
    except Exception as exc:  # PIL and PyAV raise many types for a bad file
        raise DeflickerInputError(
            f"Cannot read {path}: {exc}. The file may be corrupt, truncated or not a clip.") from exc
