"""Atlas stage: one shared image per shot plus a per-frame mapping (Lei et al. 2023, stage 1)."""

from .clip_atlas import ClipAtlas, fit_clip_atlas
from .config import PRESETS, AtlasConfig
from .fit import fit_atlas
from .neural_atlas import NeuralAtlas, render_atlas_frames

__all__ = [
    "PRESETS", "AtlasConfig", "ClipAtlas", "NeuralAtlas", "fit_atlas", "fit_clip_atlas",
    "render_atlas_frames",
]
