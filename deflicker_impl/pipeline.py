"""The whole deflicker pipeline on a clip: atlas, then neural filter, then local refinement
(after an optional removal of chunk seams, seams.py).

`run_pipeline` is what the CLI and the benchmark call; the ComfyUI nodes call the stages one by
one instead, so that users can rewire them. The clip is split into shots at scene cuts (and long
shots into overlapping segments, see atlas/clip_atlas.py); every stage restarts at a cut.

Memory (long or high-resolution clips): besides the input, the pipeline holds the atlas frames
in `intermediate_dtype` (uint8 by default: a quarter of a float copy) and one float32 output
that the filter writes and the refinement overwrites in place, so its peak is about 2.25x the
input's float32 size plus the networks' working memory. `streaming.stream_pipeline` runs the
same stages on a clip decoded frame by frame, in the memory of one segment, with the same output
bit for bit (the CLI uses it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .atlas import AtlasConfig, ClipAtlas, fit_clip_atlas, render_atlas_frames
from .atlas.confidence import AtlasConfidence, atlas_confidence
from .clip import prepare_clip
from .device import resolve_device
from .errors import DeflickerInputError
from .filter.apply import FilterConfig, apply_neural_filter
from .preflight import check_pipeline_config, load_stage_networks
from .progress import ProgressFn, StageProgress
from .refine.apply import RefineConfig, apply_local_refine
from .seams import ChunkSeam, SeamConfig, remove_chunk_seams
from .shots import ShotConfig, shot_starts_for
from .threads import ThreadChoice, as_choice
from .timing import phase

STAGES = ("atlas", "filter", "refine")
DEFAULT_STOP_AFTER = "refine"  # the last stage run unless told: the whole pipeline
# Nodes of the smooth field that faithful colour keeps of the refinement's change
# (RefineConfig.smooth_nodes; chosen on the development half of bench/generative_bench.py).
FAITHFUL_SMOOTH_NODES = 6
INTERMEDIATE_DTYPES = {"uint8": torch.uint8, "float16": torch.float16, "float32": torch.float32}


@dataclass
class PipelineConfig:
    """Which stages run, and each stage's own configuration."""

    stop_after: str = DEFAULT_STOP_AFTER
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    # Chunk seams of sliding-window generators, removed before the atlas is fitted (off unless
    # seams.enabled): the atlas then never holds a chunk's colour.
    seams: SeamConfig = field(default_factory=SeamConfig)
    # Storage of the rendered atlas frames between atlas and filter ("uint8", "float16",
    # "float32"); stop_after="atlas" always returns float32 frames.
    intermediate_dtype: str = "uint8"
    # Write the output into the input tensor (which must then be float32 RGB on the CPU and
    # owned by the caller, as the CLI's decoded frames are): saves one full-length float copy.
    in_place: bool = False
    # Measure the atlas confidence (PipelineResult.confidence) even when the filter does not
    # use it (faithful colour always does), e.g. to save it.
    confidence: bool = False
    # Atlas frames rendered at a time (0: about 4 megapixels); the stream renders on the same
    # grid, and a smaller chunk lets it hold fewer frames.
    render_chunk: int = 0


    @classmethod
    def faithful(cls, flicker_window: int = 10, strength: float = 1.0, **stages) -> PipelineConfig:
        """Faithful colour throughout (README, "Faithful colour"): the filter takes the atlas's
        colour only where the atlas is right and keeps changes that last longer than
        `flicker_window` frames; the refinement may not change those either, and changes
        colour only smoothly in space (`FAITHFUL_SMOOTH_NODES`)."""
        from dataclasses import replace

        flt = stages.pop("filter", FilterConfig())
        ref = stages.pop("refine", RefineConfig())
        flt = replace(flt, faithful=True, flicker=replace(
            flt.flicker, flicker_window=flicker_window, strength=strength))
        ref = replace(ref, flicker_window=flicker_window, strength=strength,
                      smooth_nodes=FAITHFUL_SMOOTH_NODES)
        return cls(filter=flt, refine=ref, **stages)


@dataclass
class PipelineResult:
    """Output frames [T,H,W,3] float32 plus the intermediate results and per-stage wall times.

    atlas_frames are stored in the config's intermediate_dtype (uint8: 0..255). confidence
    (None when only the atlas stage ran or the filter is not faithful) says where the atlas
    frames show the frames' content (`confidence.mask()`: [T,H,W] in 0..1).
    """

    frames: torch.Tensor
    atlas_frames: torch.Tensor
    atlas: ClipAtlas
    seconds_per_stage: dict[str, float]
    cpu_seconds_per_stage: dict[str, float] = field(default_factory=dict)
    confidence: AtlasConfidence | None = None
    seams: list[ChunkSeam] = field(default_factory=list)  # removed ones (config.seams)


def run_pipeline(
    frames: torch.Tensor, config: PipelineConfig | None = None, on_progress: ProgressFn | None = None,
    masks: torch.Tensor | None = None, threads: ThreadChoice | int | str | None = None,
) -> PipelineResult:
    """Deflicker a clip [T,H,W,C] in 0..1; the output has exactly the input's frame count and size.

    `masks` (foreground, [T,H,W] or one [H,W]) make the atlas two-layer (see `fit_atlas`).
    `threads`: a count, or None for the pack's choice (DEFLICKER_THREADS, else the CPUs not
    busy with other work, re-measured between stages; see threads.py); the caller's torch and
    OpenCV thread counts are restored afterwards."""
    with as_choice(threads).applied() as choice:
        return _run_stages(frames, config, on_progress, masks, choice)


def _run_stages(frames: torch.Tensor, config: PipelineConfig | None,
                on_progress: ProgressFn | None, masks: torch.Tensor | None,
                threads: ThreadChoice) -> PipelineResult:
    cfg = config or PipelineConfig()
    if cfg.stop_after not in STAGES:
        raise DeflickerInputError(
            f"Unknown stage {cfg.stop_after!r}; choose one of {', '.join(STAGES)}."
        )
    if cfg.intermediate_dtype not in INTERMEDIATE_DTYPES:
        raise DeflickerInputError(
            f"Unknown intermediate_dtype {cfg.intermediate_dtype!r}; choose one of "
            f"{', '.join(INTERMEDIATE_DTYPES)}.")
    check_pipeline_config(cfg)  # option ranges and devices, before any work
    original = frames
    frames = prepare_clip(frames, "frames")
    if cfg.in_place and (frames.data_ptr() != original.data_ptr()
                         or frames.shape != original.shape):
        raise DeflickerInputError(
            "in_place needs a float32 RGB clip [T,H,W,3] in 0..1 on the CPU (it is overwritten "
            "with the output); convert it first or leave in_place off.")
    stages = STAGES[: STAGES.index(cfg.stop_after) + 1]
    with phase("weights"):
        load_stage_networks(cfg)  # a missing/damaged weights file fails before the fit
    # Rough relative costs on a CPU, so the bar moves evenly.
    progress = StageProgress({"atlas": 3.0, "render": 0.5, "filter": 1.5, "refine": 0.5}, on_progress)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}

    seams: list[ChunkSeam] = []
    if cfg.seams.enabled:
        t0, c0 = time.perf_counter(), time.process_time()
        with phase("chunk seams"):
            frames, seams = remove_chunk_seams(frames, cfg.seams,
                                               shot_starts=shot_starts_for(frames, cfg.shots))
        if seams and cfg.in_place:
            original.copy_(frames)  # the output is written into the caller's tensor
            frames = original
        seconds["seams"], cpu["seams"] = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    with phase("atlas fit"):
        atlas = fit_clip_atlas(frames, cfg.atlas, cfg.shots, progress.stage("atlas"), masks=masks)
    dtype = torch.float32 if stages == ("atlas",) else INTERMEDIATE_DTYPES[cfg.intermediate_dtype]
    with phase("render"):
        atlas_frames = render_atlas_frames(atlas, cfg.render_chunk,
                                           device=resolve_device(cfg.atlas.device),
                                           on_progress=progress.stage("render"), dtype=dtype)
    confidence = None
    if ("filter" in stages and cfg.filter.faithful) or cfg.confidence:
        with phase("confidence"):
            confidence = atlas_confidence(frames, atlas_frames, cfg.filter.confidence)
    seconds["atlas"], cpu["atlas"] = time.perf_counter() - t0, time.process_time() - c0
    output = atlas_frames

    if "filter" in stages:
        threads.redecide()  # another process may have started or stopped during the fit
        t0, c0 = time.perf_counter(), time.process_time()
        with phase("filter"):
            output = apply_neural_filter(frames, atlas_frames, cfg.filter,
                                         progress.stage("filter"), shot_starts=atlas.shot_starts,
                                         out=frames if cfg.in_place else None,
                                         confidence=confidence)
        seconds["filter"], cpu["filter"] = time.perf_counter() - t0, time.process_time() - c0
    if "refine" in stages:
        threads.redecide()
        t0, c0 = time.perf_counter(), time.process_time()
        with phase("refine"):
            output = apply_local_refine(output, cfg.refine, progress.stage("refine"),
                                        shot_starts=atlas.shot_starts, out=output)
        seconds["refine"], cpu["refine"] = time.perf_counter() - t0, time.process_time() - c0
    if on_progress is not None:
        on_progress(1000, 1000)
    return PipelineResult(output, atlas_frames, atlas, seconds, cpu, confidence, seams)
