"""The whole deflicker pipeline on a clip: atlas, then neural filter, then local refinement.

`run_pipeline` is what the CLI and the benchmark call; the ComfyUI nodes call the stages one by
one instead, so that users can rewire them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .atlas import AtlasConfig, NeuralAtlas, fit_atlas, render_atlas_frames
from .clip import prepare_clip
from .errors import DeflickerInputError
from .local_refine import RefineConfig, apply_local_refine, load_local_refine
from .neural_filter import FilterConfig, apply_neural_filter
from .progress import ProgressFn, StageProgress

STAGES = ("atlas", "filter", "refine")
DEFAULT_STOP_AFTER = "filter"  # the last stage run unless told; see README (refine: opt-in)


@dataclass
class PipelineConfig:
    """Which stages run, and each stage's own configuration."""

    stop_after: str = DEFAULT_STOP_AFTER
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)


@dataclass
class PipelineResult:
    """Output frames [T,H,W,3] plus the intermediate results and per-stage wall times."""

    frames: torch.Tensor
    atlas_frames: torch.Tensor
    atlas: NeuralAtlas
    seconds_per_stage: dict[str, float]


def run_pipeline(
    frames: torch.Tensor, config: PipelineConfig | None = None, on_progress: ProgressFn | None = None,
    masks: torch.Tensor | None = None,
) -> PipelineResult:
    """Deflicker a clip [T,H,W,C] in 0..1; the output has exactly the input's frame count and size.

    `masks` (foreground, [T,H,W] or one [H,W]) make the atlas two-layer (see `fit_atlas`)."""
    cfg = config or PipelineConfig()
    if cfg.stop_after not in STAGES:
        raise DeflickerInputError(
            f"Unknown stage {cfg.stop_after!r}; choose one of {', '.join(STAGES)}."
        )
    frames = prepare_clip(frames, "frames")
    stages = STAGES[: STAGES.index(cfg.stop_after) + 1]
    if "refine" in stages:
        load_local_refine(cfg.refine)  # a missing/damaged weights file fails before the fit
    # Rough relative costs on a CPU, so the bar moves evenly.
    progress = StageProgress({"atlas": 3.0, "render": 0.5, "filter": 1.5, "refine": 0.5}, on_progress)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    atlas = fit_atlas(frames, cfg.atlas, progress.stage("atlas"), masks=masks)
    atlas_frames = render_atlas_frames(atlas, on_progress=progress.stage("render"))
    seconds["atlas"] = time.perf_counter() - t0
    output = atlas_frames

    if "filter" in stages:
        t0 = time.perf_counter()
        output = apply_neural_filter(frames, atlas_frames, cfg.filter, progress.stage("filter"))
        seconds["filter"] = time.perf_counter() - t0
    if "refine" in stages:
        t0 = time.perf_counter()
        output = apply_local_refine(output, cfg.refine, progress.stage("refine"))
        seconds["refine"] = time.perf_counter() - t0
    if on_progress is not None:
        on_progress(1000, 1000)
    return PipelineResult(output, atlas_frames, atlas, seconds)
