"""Up-front checks: everything that can fail is checked before the clip is decoded and fitted.

The CLI (and the batch command) call these right after parsing, so a bad option, a missing or
damaged weights file, an unavailable device or a clip too long for the memory fails in a second
with the user's own value in the message, not after a fit of minutes. `run_pipeline` calls
`check_pipeline_config` too, so library callers get the same range checks.

- `check_range`: one numeric option within its bounds.
- `check_pipeline_config`: every stage's options (atlas, shots, filter, refinement) and device.
- `load_stage_networks`: loads (and caches) the networks of the stages that will run.
- `estimate_peak_bytes` / `available_memory_bytes` / `check_memory`: the memory a whole-clip
  run needs, from the container's frame count and frame size, against what the machine can
  give; `estimate_stream_peak_bytes` / `check_stream_memory`: the same for a streamed run,
  whose memory is that of its longest segment (with the --max-segment-frames that would fit).
- `check_deflicker_job`: all of the above plus the output checks (output_safety.plan_outputs)
  for one deflicker run, as the CLI does it; a batch of runs calls it per run and then
  `output_safety.check_output_collisions` over all runs' outputs and inputs together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .device import resolve_device
from .errors import DeflickerInputError

if TYPE_CHECKING:
    from .output_safety import OutputTarget
    from .pipeline import PipelineConfig
    from .video_io import ClipInfo

GIB = 1 << 30
# Memory of the process besides the clip: PyTorch and OpenCV themselves, the networks, the
# atlas fit at its low resolution, the filter's chunk, the refinement's frame and the encoder.
# Measured: a full CLI run on 96 frames of 640x360 peaked at 1.60 GiB RSS, 1.23 GiB of it
# besides 1.5x the clip's float32 size; larger frames need somewhat more.
WORKING_BYTES = 3 * GIB // 2
# Full-size float32 frames' worth of memory the refinement's and the filter's networks use
# beyond WORKING_BYTES on large frames (features at full resolution, the flow): a streamed
# 1080p run peaked at 5.77 GiB, 0.3 GiB above the estimate without them.
REFINE_WORKING_FRAMES = 20
# Bytes per float32 byte of the whole clip held during a CLI run (see estimate_peak_bytes).
ATLAS_FRAME_FACTOR = {"uint8": 0.25, "float16": 0.5, "float32": 1.0}


def check_range(label: str, value: float, low: float | None = None, high: float | None = None,
                what: str = "") -> None:
    """Refuse `value` outside [low, high] (either bound may be None), or NaN, naming `label`."""
    bad = isinstance(value, float) and not math.isfinite(value)
    bad = bad or (low is not None and value < low) or (high is not None and value > high)
    if bad:
        if low is not None and high is not None:
            bounds = f"between {low} and {high}"
        elif low is not None:
            bounds = f"at least {low}"
        else:
            bounds = f"at most {high}"
        raise DeflickerInputError(f"{label} is {value}; it must be {bounds}{what}.")


def check_pipeline_config(config: PipelineConfig) -> None:
    """Every option of every stage within its range, and the device available. Names use the
    CLI's option spelling, which the node inputs and config fields mirror."""
    from .atlas import PRESETS
    from .atlas.clip_atlas import check_shot_config
    from .pipeline import STAGES

    if config.stop_after not in STAGES:
        raise DeflickerInputError(
            f"Unknown stage {config.stop_after!r}; choose one of {', '.join(STAGES)}.")
    atlas = config.atlas
    if atlas.preset not in PRESETS:
        raise DeflickerInputError(
            f"Unknown atlas preset {atlas.preset!r}; choose one of {', '.join(PRESETS)}.")
    check_range("--iterations", atlas.iterations, 0, 1_000_000, " (0 = the preset's default)")
    check_range("--fit-long-side", atlas.fit_long_side, 16, 4096, " pixels")
    check_range("--atlas-resolution", atlas.atlas_resolution, 32, 16384, " texels")
    shots = config.shots
    check_range("--cut-sensitivity", shots.cut_sensitivity, 0.0, 1.0)
    check_range("--max-segment-frames", shots.max_segment_frames, 0, None)
    check_range("--segment-overlap", shots.segment_overlap, 0, None)
    check_shot_config(shots)
    check_range("filter global_window", config.filter.global_window, 0, None)
    check_range("refine global_window", config.refine.global_window, 0, None)
    stages = STAGES[: STAGES.index(config.stop_after) + 1]
    devices = {config.atlas.device}
    if "filter" in stages:
        devices.add(config.filter.device)
    if "refine" in stages:
        devices.add(config.refine.device)
    for device in devices:
        resolve_device(device)


def load_stage_networks(config: PipelineConfig) -> None:
    """Load the weights of every network stage that will run (cached for the run itself), so a
    missing, damaged or mismatched file fails before the fit, naming the file."""
    from .filter.apply import load_neural_filter
    from .pipeline import STAGES
    from .refine.apply import load_local_refine

    stages = STAGES[: STAGES.index(config.stop_after) + 1]
    if "filter" in stages:
        load_neural_filter(config.filter)
    if "refine" in stages:
        load_local_refine(config.refine)


def estimate_peak_bytes(info: ClipInfo, intermediate_dtype: str = "uint8",
                        stop_after: str = "refine", measure_input: bool = False) -> int:
    """Peak memory of a CLI deflicker run on a clip of `info`'s frame count and size.

    The CLI holds the decoded clip as float32 (F bytes) and writes the output into it; while
    decoding it also holds the 8-bit frames (F/4); the atlas frames take F/4 (uint8), F/2
    (float16) or F (float32, and always when the run stops after the atlas); the 8-bit copy for
    the encoder takes F/4. Plus WORKING_BYTES. `measure_input`: the run decodes the input again
    after the pipeline to measure before against after (the batch's report): F more.
    """
    clip = info.float32_bytes()
    atlas = 1.0 if stop_after == "atlas" else ATLAS_FRAME_FACTOR.get(intermediate_dtype, 1.0)
    measured = 1.0 if measure_input else 0.0
    return int(clip * (max(1.25, 1.0 + atlas + 0.25) + measured)) + WORKING_BYTES


def available_memory_bytes() -> int | None:
    """Memory this process can still get: the smaller of the kernel's MemAvailable and the
    container's (cgroup) limit minus its use. None when neither can be read (not Linux)."""
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        candidates.append(cgroup)
    return min(candidates) if candidates else None


def _cgroup_headroom() -> int | None:
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0":  # cgroup v2
            base = Path("/sys/fs/cgroup") / parts[2].lstrip("/")
            limit, used = base / "memory.max", base / "memory.current"
        elif "memory" in parts[1].split(","):  # cgroup v1
            base = Path("/sys/fs/cgroup/memory") / parts[2].lstrip("/")
            limit, used = base / "memory.limit_in_bytes", base / "memory.usage_in_bytes"
        else:
            continue
        try:
            text = limit.read_text().strip()
            if text == "max" or int(text) >= 1 << 60:
                return None
            return max(0, int(text) - int(used.read_text().strip()))
        except (OSError, ValueError):
            return None
    return None


def check_memory(info: ClipInfo, label: str, path: str | os.PathLike,
                 intermediate_dtype: str = "uint8", stop_after: str = "refine",
                 limit_gb: float | None = None, *, limit_option: str = "--memory-limit",
                 measure_input: bool = False) -> int:
    """Refuse, before decoding, a run whose estimated peak exceeds `limit_gb` (None: the memory
    available now; 0: no check), given by the option `limit_option` (named in the message).
    Returns the estimate in bytes."""
    need = estimate_peak_bytes(info, intermediate_dtype, stop_after, measure_input)
    budget, source = _memory_budget(limit_gb, limit_option)
    if budget is None:
        return need
    if need > budget:
        raise DeflickerInputError(
            f"{label} {path}: {info.frames} frames of {info.width}x{info.height} need about "
            f"{need / GIB:.1f} GB of memory (the clip alone is {info.float32_bytes() / GIB:.1f} "
            f"GB as float32), but {budget / GIB:.1f} GB are {source}. Cut the clip into shorter "
            "parts (e.g. ffmpeg -ss START -t SECONDS), scale it down, or free memory.")
    return need


def longest_segment(info: ClipInfo, config: PipelineConfig) -> int:
    """The most frames one segment of the clip can have (before its cuts are known)."""
    limit = config.shots.max_segment_frames
    return min(info.frames, limit) if limit > 0 else info.frames


def estimate_stream_peak_bytes(info: ClipInfo, config: PipelineConfig,
                               max_segment: int | None = None) -> int:
    """Peak memory of a streamed CLI run (streaming.stream_pipeline) on a clip of `info`'s
    frame size: set by the longest segment (`max_segment`, default: --max-segment-frames or the
    clip when shorter), not by the clip's length. The buffers of streaming.stream_frames_held
    at full size (float32; the atlas frames in the intermediate dtype), the render's, the
    filter's and the refinement's temporaries (two float copies of a render chunk, eight of a
    filter chunk, REFINE_WORKING_FRAMES), plus WORKING_BYTES."""
    from .atlas.neural_atlas import render_chunk_frames
    from .filter.apply import filter_chunk_frames
    from .streaming import stream_frames_held

    hw = (info.height, info.width)
    frame = info.height * info.width * 3 * 4
    segment = longest_segment(info, config) if max_segment is None else max_segment
    held = stream_frames_held(config, hw, segment, info.frames)
    atlas = 1.0 if config.stop_after == "atlas" \
        else ATLAS_FRAME_FACTOR.get(config.intermediate_dtype, 1.0)
    transient = 2 * min(config.render_chunk or render_chunk_frames(hw), info.frames) \
        + 8 * min(filter_chunk_frames(config.filter, hw), info.frames) + REFINE_WORKING_FRAMES
    frames = held["input"] + atlas * held["atlas"] + held["filtered"] + held["refined"] \
        + transient
    return int(frames * frame) + WORKING_BYTES


def _memory_budget(limit_gb: float | None, limit_option: str) -> tuple[int | None, str]:
    """(bytes allowed or None: no check, where they come from in words)."""
    if limit_gb is not None:
        check_range(limit_option, limit_gb, 0, None, " GB (0 = no check)")
        if limit_gb == 0:
            return None, ""
        return int(limit_gb * GIB), f"{limit_option} {limit_gb:g} GB"
    return available_memory_bytes(), "available now"


def check_stream_memory(info: ClipInfo, config: PipelineConfig, label: str,
                        path: str | os.PathLike, limit_gb: float | None = None, *,
                        limit_option: str = "--memory-limit") -> int:
    """Refuse, before decoding, a streamed run whose longest segment cannot fit `limit_gb`
    (None: the memory available now; 0: no check); the message says which
    --max-segment-frames would fit, when one does. Returns the estimate in bytes."""
    from .atlas.clip_atlas import segment_layout

    need = estimate_stream_peak_bytes(info, config)
    budget, source = _memory_budget(limit_gb, limit_option)
    if budget is None or need <= budget:
        return need
    segment = longest_segment(info, config)
    shortest = 2 * config.shots.segment_overlap + 2
    fits = [n for n in range(segment - 1, shortest - 1, -1)
            if estimate_stream_peak_bytes(info, config, max(
                b - a for a, b in segment_layout(0, info.frames, n,
                                                 config.shots.segment_overlap))) <= budget]
    if fits:
        advice = (f"Lower --max-segment-frames to {fits[0]} or less (each segment then has "
                  f"its own atlas), scale the clip down, or free memory.")
    else:
        advice = ("Even the shortest segments would not fit: scale the clip down or free "
                  "memory.")
    raise DeflickerInputError(
        f"{label} {path}: {info.frames} frames of {info.width}x{info.height} are processed "
        f"segment by segment, but one segment of {segment} frames of {info.width}x"
        f"{info.height} needs about {need / GIB:.1f} GB of memory, and {budget / GIB:.1f} GB "
        f"are {source}. {advice}")


@dataclass(frozen=True)
class DeflickerJob:
    """One deflicker run, checked before any work: the input's header, the checked outputs
    (label -> OutputTarget, e.g. "OUTPUT", "--save-atlas-frames", "--save-texture") and the
    estimated peak memory in bytes."""

    info: ClipInfo
    targets: dict[str, OutputTarget]
    memory_bytes: int


def check_deflicker_job(
    input_path: str | os.PathLike,
    config: PipelineConfig,
    output: str | os.PathLike,
    save_atlas_frames: str | os.PathLike | None = None,
    save_texture: str | os.PathLike | None = None,
    other_inputs: Mapping[str, str | os.PathLike | None] | None = None,
    must_exist: tuple[str, ...] = (),
    overwrite: bool = False,
    memory_limit_gb: float | None = None,
    *,
    memory_option: str = "--memory-limit",
    measure_input: bool = False,
    save_confidence: str | os.PathLike | None = None,
    streaming: bool = False,
    not_streamed_because: str | None = None,
) -> DeflickerJob:
    """Everything a deflicker run can be refused for, checked before decoding: options and
    devices, the input's header, every output (kind, writability, collisions with each other
    and with INPUT and `other_inputs` such as masks and weights files, existing frame folders
    unless `overwrite`), that the `other_inputs` labelled in `must_exist` exist, the memory, and
    the weights of every stage that will run (loaded into the cache the run then uses).
    The batch calls it per clip with its own `memory_option` (--max-clip-gb), `measure_input`
    (it decodes the input again for its report). `streaming`: the run streams
    (streaming.stream_pipeline), so its memory is that of its longest segment;
    `not_streamed_because` (streaming.streaming_unsupported) is told when a whole-clip run
    does not fit."""
    from .output_safety import plan_outputs
    from .video_io import probe_clip

    check_pipeline_config(config)
    info = probe_clip(input_path)
    inputs = {"INPUT": input_path, **(other_inputs or {})}
    targets = plan_outputs({"OUTPUT": (output, info.frames),
                            "--save-atlas-frames": (save_atlas_frames, info.frames),
                            "--save-texture": (save_texture, None),  # one per segment
                            "--save-confidence": (save_confidence, info.frames)},
                           inputs, overwrite=overwrite)
    for label in must_exist:
        path = inputs.get(label)
        if path is not None and str(path) != "" and not Path(path).exists():
            raise DeflickerInputError(f"{label} {path} does not exist.")
    if streaming:
        need = check_stream_memory(info, config, "INPUT", input_path, memory_limit_gb,
                                   limit_option=memory_option)
    else:
        try:
            need = check_memory(info, "INPUT", input_path, config.intermediate_dtype,
                                config.stop_after, memory_limit_gb, limit_option=memory_option,
                                measure_input=measure_input)
        except DeflickerInputError as exc:
            if not_streamed_because is None:
                raise
            raise DeflickerInputError(
                f"{exc} This run holds the whole clip because it uses {not_streamed_because}; "
                "without that it would stream, in the memory of one segment.") from None
    load_stage_networks(config)
    return DeflickerJob(info, targets, need)
