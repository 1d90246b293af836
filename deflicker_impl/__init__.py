"""Neural Atlas Deflicker: blind video deflickering in pure PyTorch.

Stages (Lei et al., CVPR 2023, re-implemented): a flawed neural atlas per clip (`fit_atlas`),
a neural filter that takes structure from the frame and colour from the atlas, and a recurrent
local refinement. This package never imports ComfyUI; `nodes/` adapts it.
"""

from .atlas import (
    AtlasConfig,
    ClipAtlas,
    NeuralAtlas,
    fit_atlas,
    fit_clip_atlas,
    render_atlas_frames,
)
from .clip import prepare_clip
from .errors import DeflickerCancelled, DeflickerInputError, WeightsError
from .opencv import require_cv2
from .shots import ShotConfig, detect_scene_cuts

# Fail at import (ComfyUI shows it as the pack's import error) with the fix, not at the first flow.
require_cv2()

__version__ = "0.1.0"

__all__ = [
    "AtlasConfig",
    "ClipAtlas",
    "DeflickerCancelled",
    "DeflickerInputError",
    "NeuralAtlas",
    "ShotConfig",
    "WeightsError",
    "detect_scene_cuts",
    "fit_atlas",
    "fit_clip_atlas",
    "prepare_clip",
    "render_atlas_frames",
]
