"""Atlas stage: one shared image per clip plus a per-frame mapping (Lei et al. 2023, stage 1)."""

from .config import PRESETS, AtlasConfig
from .fit import fit_atlas
from .neural_atlas import NeuralAtlas, render_atlas_frames

__all__ = ["PRESETS", "AtlasConfig", "NeuralAtlas", "fit_atlas", "render_atlas_frames"]
