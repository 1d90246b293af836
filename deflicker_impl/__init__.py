"""Neural Atlas Deflicker: blind video deflickering in pure PyTorch.

Stages (Lei et al., CVPR 2023, re-implemented), one package each: a flawed neural atlas per clip
(`atlas/`: `fit_clip_atlas`, `AtlasConfig`), a neural filter that takes structure from the frame
and colour from the atlas (`filter/`: `apply_neural_filter`, `FilterConfig`), and a recurrent
local refinement (`refine/`: `apply_local_refine`, `RefineConfig`); `run_pipeline` runs them in
turn (`PipelineConfig`). This module is the public API; this package never imports ComfyUI,
`nodes/` adapts it.
"""

import os
import signal
import sys


def _started_as_cli() -> bool:
    """True while `python -m deflicker_impl ...` is starting (not for imports by ComfyUI,
    tests or `python -m deflicker_impl.train`)."""
    argv = getattr(sys, "orig_argv", [])
    for i, arg in enumerate(argv):
        if arg == "-m":
            return argv[i + 1:i + 2] == ["deflicker_impl"]
        if arg.startswith("-m"):
            return arg == "-mdeflicker_impl"
    return False


def _interrupted_during_start_up(signum, frame) -> None:
    os.write(2, b"interrupted during start-up: nothing was read or written\n")
    os._exit(130)


if _started_as_cli():
    # Importing PyTorch takes a second or more; Ctrl-C then would print a traceback from deep
    # inside its import. Exit 130 with one line instead; cli.main() restores KeyboardInterrupt.
    signal.signal(signal.SIGINT, _interrupted_during_start_up)

from .atlas import (  # after the start-up interrupt handler, on purpose
    AtlasConfig,
    ClipAtlas,
    NeuralAtlas,
    fit_atlas,
    fit_clip_atlas,
    render_atlas_frames,
)
from .clip import check_clip, prepare_clip
from .errors import DeflickerCancelled, DeflickerInputError, WeightsError
from .filter import FilterConfig, apply_neural_filter, load_neural_filter
from .opencv import require_cv2
from .pipeline import PipelineConfig, PipelineResult, run_pipeline
from .progress import ProgressFn
from .refine import RefineConfig, apply_local_refine, load_local_refine
from .seams import SeamConfig, remove_chunk_seams
from .shots import ShotConfig, detect_scene_cuts

# Fail at import (ComfyUI shows it as the pack's import error) with the fix, not at the first flow.
require_cv2()

__version__ = "0.1.0"

__all__ = [
    "AtlasConfig",
    "ClipAtlas",
    "DeflickerCancelled",
    "DeflickerInputError",
    "FilterConfig",
    "NeuralAtlas",
    "PipelineConfig",
    "PipelineResult",
    "ProgressFn",
    "RefineConfig",
    "SeamConfig",
    "ShotConfig",
    "WeightsError",
    "apply_local_refine",
    "apply_neural_filter",
    "check_clip",
    "detect_scene_cuts",
    "fit_atlas",
    "fit_clip_atlas",
    "load_local_refine",
    "load_neural_filter",
    "prepare_clip",
    "remove_chunk_seams",
    "render_atlas_frames",
    "run_pipeline",
]
