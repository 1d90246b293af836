"""Configuration of the atlas stage."""

from __future__ import annotations

from dataclasses import dataclass, replace

PRESETS = ("fast", "paper")


@dataclass(frozen=True)
class AtlasConfig:
    """How a neural atlas is fitted to a clip.

    preset "fast" (default): an explicit RGB texture plus, per frame, a similarity transform and a
    coarse deformation grid, fitted at low resolution (the atlas only has to carry colour, not
    detail) and then rendered at the input's full size. preset "paper": the public
    configuration of Lei et al. (coordinate MLPs), kept as the reference; slow on a CPU.
    """

    preset: str = "fast"
    # 0: the preset's default. fast: until the loss stalls (see below), at most 300 steps;
    # paper: 10001. A count > 0 runs exactly that many steps.
    iterations: int = 0
    # fast preset, iterations 0: stop once the loss of 25 steps falls less than this fraction
    # below the 25 before (0: run all 300), but never before `min_iterations`.
    stall_tolerance: float = 0.002
    min_iterations: int = 150
    seed: int = 0
    device: str = "auto"
    # Long side of the clip while fitting; the render is always at the input's own size.
    fit_long_side: int = 160
    # Longest side of the rendered atlas texture, in texels (caps memory on 4K input).
    atlas_resolution: int = 1024
    # fast preset ------------------------------------------------------------------------------
    grid_cells: int = 6  # deformation grid cells along the frame's long side
    flow_weight: float = 0.02  # flow-consistency term (per squared fit pixel): removes drift
    smooth_weight: float = 0.5  # keeps the deformation grid smooth
    pixels_per_frame: int = 1024  # random pixels per frame and step (0: all)
    texture_lr: float = 0.03
    mapping_lr: float = 2e-3
    backprojection_steps: int = 3  # sharpening of the full-resolution texture after the fit
    # fast preset with masks (two layers, fit_layered.py) --------------------------------------
    mask_weight: float = 1.0  # mask-bootstrap loss on alpha at the start ...
    mask_weight_floor: float = 0.1  # ... decaying to this fraction of it ...
    mask_decay: float = 0.2  # ... with this time constant (fraction of the iterations)
    alpha_lr: float = 0.05  # alpha's logit image in the foreground atlas
    layered_pixels_per_frame: int = 2048  # random pixels per frame and step (0: all)
    # paper preset -----------------------------------------------------------------------------
    paper_samples: int = 10000  # random pixels per iteration
    paper_lr: float = 1e-4

    def resolved_iterations(self) -> int:
        """The most steps the fit runs."""
        if self.iterations > 0:
            return int(self.iterations)
        return 300 if self.preset == "fast" else 10001

    def resolved_stall_tolerance(self) -> float:
        """Early stop only when the count is the preset's (0), so a given count is exact."""
        return self.stall_tolerance if self.iterations <= 0 else 0.0

    def with_overrides(self, **kwargs) -> AtlasConfig:
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})
