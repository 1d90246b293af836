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
    """Frames [T,H,W,3] float32 in 0..1 plus the rate they play at.

    `declared_frames`: the frame count the container announced, when it announces one; more
    than `num_frames` only when a truncated file was read with `allow_truncated=True`."""

    frames: torch.Tensor
    fps: Fraction
    declared_frames: int | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def missing_frames(self) -> int:
        """Frames the container declares but that could not be decoded (0 when complete)."""
        return max(0, (self.declared_frames or 0) - self.num_frames)


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's header says, read without decoding: frame count (declared by a video
    container, counted for folders and animated images), frame size and rate."""

    frames: int
    height: int
    width: int
    fps: Fraction

    def float32_bytes(self) -> int:
        """Size of the whole clip decoded as float32 RGB."""
        return self.frames * self.height * self.width * 3 * 4


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _png_bit_depth(path: Path) -> int:
    """The bit depth in a PNG's header (byte 24 of the IHDR chunk); 8 when unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(25)
    except OSError:
        return 8
    return head[24] if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" else 8


def _read_high_depth(path: Path) -> np.ndarray:
    """A 16-bit or float image as [H,W,3] uint16/float32 RGB at its real range (OpenCV reads
    those depths; Pillow's RGB conversion would clip them to 8 bits)."""
    from .opencv import require_cv2

    cv2 = require_cv2()
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise DeflickerInputError(f"Cannot read frame {path}: unsupported or corrupt image.")
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    elif data.shape[-1] == 1:
        data = np.repeat(data, 3, axis=-1)
    elif data.shape[-1] == 2:  # gray + alpha
        data = np.repeat(data[..., :1], 3, axis=-1)
    else:
        data = data[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    if data.dtype not in (np.uint8, np.uint16):
        data = data.astype(np.float32)
    return np.ascontiguousarray(data)


def _read_image_file(path: Path) -> np.ndarray:
    """One still image as [H,W,3]: uint8, or uint16/float32 for 16-bit and float files."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            high_depth = im.mode in HIGH_DEPTH_MODES or (
                im.format == "PNG" and _png_bit_depth(path) == 16)
            if not high_depth:
                return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        high_depth = path.suffix.lower() in (".tif", ".tiff")  # e.g. 3-channel float TIFF
        if not high_depth:
            raise DeflickerInputError(
                f"Cannot read frame {path}: not an image Pillow knows. Is the file corrupt?"
            ) from None
    except OSError as exc:
        raise DeflickerInputError(f"Cannot read frame {path}: {exc}. Is the file corrupt?") from exc
    return _read_high_depth(path)


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
        if a.dtype == np.uint16:
            out[i] = torch.from_numpy(a.astype(np.float32)).div_(65535.0)
        elif a.dtype == np.float32:
            out[i] = torch.from_numpy(a)
        else:
            out[i] = torch.from_numpy(a if a.flags.writeable else a.copy())
            out[i].div_(255.0)
    if any(a.dtype == np.float32 for a in arrays):  # float files: the one clip check (range, NaN)
        from .clip import prepare_clip

        out = prepare_clip(out, f"{source} (float frames)")
    return out


def _folder_frames(path: Path) -> list[Path]:
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise DeflickerInputError(
            f"Folder {path} contains no image files ({', '.join(FRAME_SUFFIXES)})."
        )
    return files


def _read_folder(path: Path, max_frames: int | None) -> Clip:
    files = _folder_frames(path)
    arrays = [_read_image_file(f) for f in files[:max_frames]]
    return Clip(_stack_uint8(arrays, path), DEFAULT_FPS, len(files) if max_frames is None else None)


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


def _declared_frames(container, stream) -> int | None:
    """The frame count a video container announces: its frame index (mp4, mov) or, where it
    keeps none (mkv, webm), its duration times the frame rate. None when it says neither."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # av.time_base
    if not rate or not seconds:
        return None
    return max(1, round(seconds * float(rate)))


def _missing_is_truncation(decoded: int, declared: int | None, exact: bool) -> bool:
    """Whether decoding `decoded` of `declared` frames means the file is cut short. A count
    estimated from the duration may be a frame or two off (rounding, variable frame rate)."""
    if declared is None:
        return False
    slack = 0 if exact else max(1, round(0.02 * declared))
    return decoded < declared - slack


def _open_video(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DeflickerInputError(
            f"Cannot decode {path}: {exc}. The file may be corrupt, truncated or not a video."
        ) from exc
    if not container.streams.video:
        container.close()
        raise DeflickerInputError(f"{path} has no video stream.")
    return container


def _read_video_file(path: Path, max_frames: int | None, allow_truncated: bool) -> Clip:
    import av

    container = _open_video(path)
    arrays: list[np.ndarray] = []
    try:
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            exact = bool(stream.frames and stream.frames > 0)
            declared = _declared_frames(container, stream)
            for frame in container.decode(stream):
                if max_frames is not None and len(arrays) >= max_frames:
                    break
                arrays.append(frame.to_ndarray(format="rgb24"))
    except DeflickerInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not arrays:
            raise DeflickerInputError(
                f"Cannot decode {path}: {exc}. The file may be corrupt, truncated or not a video."
            ) from exc
        if not allow_truncated:
            raise DeflickerInputError(
                f"Cannot decode {path} after frame {len(arrays)}: {exc}. The file is truncated "
                "or damaged; re-export or re-download it, or pass --allow-truncated to use the "
                f"{len(arrays)} frames before the damage.") from exc
        declared = max(declared or 0, len(arrays) + 1)  # at least one frame is missing
    truncated = max_frames is None and _missing_is_truncation(len(arrays), declared, exact)
    if truncated and not allow_truncated:
        raise DeflickerInputError(
            f"{path} declares {declared} frames but only {len(arrays)} could be decoded: "
            "the file is truncated or damaged. Re-export or re-download it, or pass "
            f"--allow-truncated to use the {len(arrays)} frames that are there.")
    if not truncated:
        declared = len(arrays)
    return Clip(_stack_uint8(arrays, path), Fraction(rate), declared)


def probe_clip(path: str | os.PathLike) -> ClipInfo:
    """Frame count, size and rate of a clip from its header, without decoding its frames (a
    folder's first frame and an animated image's frame table are read). For up-front checks
    such as the memory estimate; `read_clip` checks that the frames are really there."""
    path = Path(path)
    if not path.exists():
        raise DeflickerInputError(f"Input {path} does not exist.")
    if path.is_dir():
        files = _folder_frames(path)
        first = _read_image_file(files[0])
        return ClipInfo(len(files), first.shape[0], first.shape[1], DEFAULT_FPS)
    if path.suffix.lower() in ANIMATED_IMAGE_SUFFIXES + FRAME_SUFFIXES:
        from PIL import Image

        try:
            with Image.open(path) as im:
                return ClipInfo(int(getattr(im, "n_frames", 1)), im.height, im.width, DEFAULT_FPS)
        except OSError as exc:
            if path.suffix.lower() in (".tif", ".tiff"):  # Pillow cannot open float RGB TIFF
                height, width = _read_high_depth(path).shape[:2]
                return ClipInfo(1, height, width, DEFAULT_FPS)
            raise DeflickerInputError(f"Cannot read {path}: {exc}. Is the file corrupt?") from exc
    with _open_video(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        frames = _declared_frames(container, stream)
        height, width = stream.codec_context.height, stream.codec_context.width
    if frames is None:  # nothing declared: count packets (no decoding)
        with _open_video(path) as container:
            frames = sum(1 for packet in container.demux(container.streams.video[0])
                         if packet.size)
    return ClipInfo(int(frames), int(height), int(width), Fraction(rate))


def read_clip(path: str | os.PathLike, max_frames: int | None = None,
              allow_truncated: bool = False) -> Clip:
    """Read a video file (mp4, webm, mov, mkv, avi), an animated gif/webp, or a folder of frames.

    `max_frames` stops decoding after that many frames (the rest is never decoded). A video
    that decodes to fewer frames than its container declares is an error (a truncated or
    damaged file), unless `allow_truncated`: then the frames that are there come back and
    `Clip.missing_frames` says how many are not. 16-bit and float frames are read at their
    real range (float frames must lie in 0..1).
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
    if suffix in FRAME_SUFFIXES and probe_clip(path).frames == 1:
        return Clip(_stack_uint8([_read_image_file(path)], path), DEFAULT_FPS, 1)
    if suffix in FRAME_SUFFIXES:  # an animated PNG/TIFF
        return _read_animated_image(path, max_frames)
    return _read_video_file(path, max_frames, allow_truncated)


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
