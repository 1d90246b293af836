"""Reading and writing clips: video files, animated images and folders of frames.

Clips come back as float32 [T,H,W,3] in 0..1 together with their frame rate, which is kept
exactly (a Fraction such as 30000/1001) so that a written clip plays at the input's speed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Self

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


def frame_tensor(array: np.ndarray) -> torch.Tensor:
    """One decoded frame [H,W,3] (uint8, uint16 or float32) -> float32 [H,W,3] in 0..1 (float
    frames as they are: the clip check tells whether they lie in 0..1)."""
    if array.dtype == np.uint16:
        return torch.from_numpy(array.astype(np.float32)).div_(65535.0)
    if array.dtype == np.float32:
        return torch.from_numpy(array.copy())
    return torch.from_numpy(array if array.flags.writeable else array.copy()).float().div_(255.0)


def _check_frame_size(array: np.ndarray, first_shape: tuple, source: Path) -> None:
    if array.shape != first_shape:
        raise DeflickerInputError(
            f"Frames in {source} have different sizes {sorted({first_shape, array.shape})}; all "
            "frames of a clip must share one size."
        )


def _stack_uint8(arrays: list[np.ndarray], source: Path) -> torch.Tensor:
    if not arrays:
        raise DeflickerInputError(f"No frames could be read from {source}.")
    for a in arrays:
        _check_frame_size(a, arrays[0].shape, source)
    # Filled frame by frame: no stacked uint8 copy and no float temporary of the whole clip.
    out = torch.empty((len(arrays), *arrays[0].shape), dtype=torch.float32)
    for i, a in enumerate(arrays):
        out[i] = frame_tensor(a)
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


def _folder_arrays(files: list[Path]) -> Iterator[np.ndarray]:
    for f in files:
        yield _read_image_file(f)


def _animated_arrays(path: Path, max_frames: int | None, durations: list[float]
                     ) -> Iterator[np.ndarray]:
    """The frames of an animated image one at a time; their durations (ms) go to `durations`."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            for count, frame in enumerate(ImageSequence.Iterator(im)):
                if max_frames is not None and count >= max_frames:
                    break
                array = np.asarray(frame.convert("RGB"))  # loads the frame, and its info
                durations.append(frame.info.get("duration", 0) or 0)
                yield array
    except OSError as exc:
        raise DeflickerInputError(f"Cannot read {path}: {exc}. Is the file corrupt?") from exc


def _fps_of_durations(durations: list[float]) -> Fraction:
    mean_ms = float(np.mean(durations)) if durations else 0.0
    return Fraction(1000.0 / mean_ms).limit_denominator(1001) if mean_ms > 0 else DEFAULT_FPS


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


def _video_arrays(path: Path, max_frames: int | None, allow_truncated: bool,
                  found: dict) -> Iterator[np.ndarray]:
    """The frames of a video file one at a time; at the end `found` holds its "fps" and
    "declared" frame count. A truncated or damaged file is an error when the damage is met
    (unless `allow_truncated`: then its frames end there)."""
    import av

    container = _open_video(path)
    decoded = 0
    try:
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            found["fps"] = Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
            exact = bool(stream.frames and stream.frames > 0)
            declared = _declared_frames(container, stream)
            for frame in container.decode(stream):
                if max_frames is not None and decoded >= max_frames:
                    break
                array = frame.to_ndarray(format="rgb24")
                decoded += 1
                yield array
    except DeflickerInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not decoded:
            raise DeflickerInputError(
                f"Cannot decode {path}: {exc}. The file may be corrupt, truncated or not a video."
            ) from exc
        if not allow_truncated:
            raise DeflickerInputError(
                f"Cannot decode {path} after frame {decoded}: {exc}. The file is truncated "
                "or damaged; re-export or re-download it, or pass --allow-truncated to use the "
                f"{decoded} frames before the damage.") from exc
        declared = max(declared or 0, decoded + 1)  # at least one frame is missing
    truncated = max_frames is None and _missing_is_truncation(decoded, declared, exact)
    if truncated and not allow_truncated:
        raise DeflickerInputError(
            f"{path} declares {declared} frames but only {decoded} could be decoded: "
            "the file is truncated or damaged. Re-export or re-download it, or pass "
            f"--allow-truncated to use the {decoded} frames that are there.")
    found["declared"] = declared if truncated else decoded


class FrameStream:
    """A clip's frames decoded one at a time: iterating yields float32 [H,W,3] frames in 0..1
    (a video file, an animated image, a folder of frames or a single image), and iterating
    again decodes again from the start. The same checks as `read_clip` (frame sizes, float
    range, truncation) are made as the frames pass. After a complete iteration `num_frames`,
    `fps` and `declared_frames` (see Clip) are known.

    Memory: one decoded frame at a time (and the decoder's own buffers)."""

    def __init__(self, path: str | os.PathLike, allow_truncated: bool = False,
                 max_frames: int | None = None):
        self.path = Path(path)
        if max_frames is not None and max_frames < 1:
            raise DeflickerInputError(f"max_frames must be at least 1, got {max_frames}.")
        if not self.path.exists():
            raise DeflickerInputError(f"Input {self.path} does not exist.")
        self.allow_truncated, self.max_frames = allow_truncated, max_frames
        self.num_frames: int | None = None
        self.fps: Fraction = DEFAULT_FPS
        self.declared_frames: int | None = None
        self.float_frames = False  # whether any frame was a float image

    def arrays(self) -> Iterator[np.ndarray]:
        """The decoded frames as they come ([H,W,3] uint8, or uint16/float32 for 16-bit and
        float image files), with the frame-size check; sets the counts at the end."""
        path, max_frames = self.path, self.max_frames
        suffix = path.suffix.lower()
        found: dict = {}
        durations: list[float] = []
        if path.is_dir():
            files = _folder_frames(path)
            source = _folder_arrays(files[:max_frames])
            found["declared"] = len(files) if max_frames is None else None
        elif suffix in ANIMATED_IMAGE_SUFFIXES or (
                suffix in FRAME_SUFFIXES and probe_clip(path).frames > 1):  # animated PNG/TIFF
            source = _animated_arrays(path, max_frames, durations)
        elif suffix in FRAME_SUFFIXES:
            source = iter([_read_image_file(path)])
            found["declared"] = 1
        else:
            source = _video_arrays(path, max_frames, self.allow_truncated, found)
        count, first_shape = 0, None
        for array in source:
            if first_shape is None:
                first_shape = array.shape
            _check_frame_size(array, first_shape, path)
            self.float_frames = self.float_frames or array.dtype == np.float32
            count += 1
            yield array
        if not count:
            raise DeflickerInputError(f"No frames could be read from {path}.")
        self.num_frames = count
        self.fps = found.get("fps", _fps_of_durations(durations))
        self.declared_frames = found.get("declared")

    def __iter__(self) -> Iterator[torch.Tensor]:
        for array in self.arrays():
            frame = frame_tensor(array)
            if array.dtype == np.float32:  # float files: the one clip check (range, NaN)
                from .clip import prepare_clip

                frame = prepare_clip(frame[None], f"{self.path} (float frames)")[0]
            yield frame


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
    real range (float frames must lie in 0..1). `FrameStream` reads the same frames one at a
    time.
    """
    stream = FrameStream(path, allow_truncated, max_frames)
    frames = _stack_uint8(list(stream.arrays()), stream.path)
    return Clip(frames, stream.fps, stream.declared_frames)


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


def _video_codec(suffix: str, h: int, w: int, crf: int) -> tuple[str, str, dict]:
    if suffix == ".webm":
        return "libvpx-vp9", "yuv444p", {"crf": str(crf), "b": "0"}
    # 4:2:0 needs even sizes; odd frame sizes keep their exact size with 4:4:4 instead.
    even = h % 2 == 0 and w % 2 == 0
    return "libx264", ("yuv420p" if even else "yuv444p"), {"crf": str(crf), "preset": "medium"}


class ClipWriter:
    """Writes a clip a few frames at a time: `write(frames)` ([n,H,W,3] float 0..1 or uint8),
    then `close()` (or use it as a context manager; leaving by an exception closes without
    finishing). A video file is encoded as the frames arrive, a folder gets one PNG per frame;
    an animated or single image is saved at `close` (it keeps its 8-bit frames until then).
    `num_frames` (the total, when known) sizes the frame files' numbering as `write_clip`
    does. Errors are one-line DeflickerInputErrors naming `path`."""

    def __init__(self, path: str | os.PathLike, fps: Fraction | float = DEFAULT_FPS,
                 num_frames: int | None = None, crf: int = 14):
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf, self.num_frames = crf, num_frames
        self.as_folder = self.path.is_dir() or self.path.suffix == ""
        self.suffix = self.path.suffix.lower()
        if not self.as_folder and self.suffix not in (
                ANIMATED_IMAGE_SUFFIXES + FRAME_SUFFIXES + VIDEO_SUFFIXES):
            raise DeflickerInputError(
                f"Unknown output type {self.suffix!r}: use .mp4, .mov, .mkv, .webm, .gif, .webp "
                "or a folder path."
            )
        self.written = 0
        self._held: list[np.ndarray] = []  # animated and single images: saved at close
        self._container = self._stream = None
        self._frame_shape: tuple | None = None
        _prepare_output(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._container is not None:
            self._container.close()
            self._container = None

    def write(self, frames: torch.Tensor) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise DeflickerInputError(f"Cannot write frames of shape {tuple(frames.shape)}.")
        if self._frame_shape is None:
            self._frame_shape = tuple(frames.shape[1:])
        elif tuple(frames.shape[1:]) != self._frame_shape:
            raise DeflickerInputError(
                f"Cannot write frames of size {tuple(frames.shape[1:])} after frames of "
                f"{self._frame_shape} into {self.path}.")
        data = _to_uint8(frames)
        try:
            if self.as_folder:
                self._write_folder(data)
            elif self.suffix in VIDEO_SUFFIXES:
                self._encode(data)
            else:
                self._held.extend(data)
        except PermissionError as exc:
            raise DeflickerInputError(f"Cannot write {self.path}: {exc}.") from exc
        self.written += len(data)

    def close(self) -> None:
        """Finish the file: flush the encoder, or save the held images."""
        if self.written == 0:
            raise DeflickerInputError(f"Cannot write an empty clip to {self.path}.")
        try:
            if self._container is not None:
                self._flush()
            elif self._held:
                self._save_images()
        except PermissionError as exc:
            raise DeflickerInputError(f"Cannot write {self.path}: {exc}.") from exc

    def _write_folder(self, data: np.ndarray) -> None:
        from PIL import Image

        digits = max(5, len(str(self.num_frames or 0)))
        for i, frame in enumerate(data, start=self.written):
            Image.fromarray(frame).save(self.path / f"frame_{i:0{digits}d}.png")

    def _encode(self, data: np.ndarray) -> None:
        import av

        try:
            if self._container is None:
                _, h, w, _ = data.shape
                codec, pix_fmt, options = _video_codec(self.suffix, h, w, self.crf)
                self._container = av.open(str(self.path), mode="w")
                self._stream = self._container.add_stream(codec, rate=self.fps)
                self._stream.width, self._stream.height = w, h
                self._stream.pix_fmt, self._stream.options = pix_fmt, options
            for frame in data:
                for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame,
                                                                             format="rgb24")):
                    self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            self._abandon()
            raise DeflickerInputError(f"Cannot write video {self.path}: {exc}.") from exc

    def _flush(self) -> None:
        import av

        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except (av.error.FFmpegError, OSError) as exc:
            raise DeflickerInputError(f"Cannot write video {self.path}: {exc}.") from exc
        finally:
            self._container = None

    def _abandon(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):  # already failing: the first error is told
                self._container.close()
            self._container = None

    def _save_images(self) -> None:
        from PIL import Image

        if self.suffix in (".gif", ".webp", ".apng"):
            images = [Image.fromarray(f) for f in self._held]
            duration = max(1, round(1000 / float(self.fps)))
            extra = {"lossless": True} if self.suffix == ".webp" else {}
            images[0].save(self.path, save_all=True, append_images=images[1:],
                           duration=duration, loop=0, **extra)
        else:
            if len(self._held) != 1:
                raise DeflickerInputError(
                    f"{self.path} is a single-image file but there are {len(self._held)} "
                    "frames: give a video file or a folder path instead."
                )
            Image.fromarray(self._held[0]).save(self.path)
        self._held = []


def write_clip(
    path: str | os.PathLike, frames: torch.Tensor, fps: Fraction | float = DEFAULT_FPS, crf: int = 14
) -> Path:
    """Write [T,H,W,3] frames to a video file, an animated gif/webp, or a folder of PNG frames.

    A path without a suffix (or an existing folder) is a folder of PNG frames. Returns the path.
    `ClipWriter` writes the same a few frames at a time.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise DeflickerInputError(f"Cannot write frames of shape {tuple(frames.shape)}.")
    path = Path(path)
    if (not (path.is_dir() or path.suffix == "") and path.suffix.lower() in FRAME_SUFFIXES
            and path.suffix.lower() not in ANIMATED_IMAGE_SUFFIXES and frames.shape[0] != 1):
        raise DeflickerInputError(
            f"{path} is a single-image file but there are {frames.shape[0]} frames: give a "
            "video file or a folder path instead."
        )
    with ClipWriter(path, fps, frames.shape[0], crf) as writer:
        writer.write(frames)
    return path
