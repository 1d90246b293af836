"""The neural filter network: structure from the frame, colour from the atlas.

Design. The flawed atlas frame has the right colours but unreliable structure (blur, warps,
ghosts), the input frame has the right structure but flickering colours. Instead of letting a
U-Net paint the output (and risk copying the atlas's ghosts), the net predicts, for every pixel,
an affine colour transform and applies it to the frame:

    out(x) = M(x) @ frame(x) + b(x)            M: 3x3, b: 3 -> 12 coefficients per pixel

* A U-Net at half resolution sees both inputs and estimates how the frame's colours must change
  to match the atlas locally (a comparison of neighbourhoods, so it does not depend on the
  frame's size or content class).
* A per-pixel head at full resolution turns the upsampled U-Net features plus the frame's own
  pixel colour into the 12 coefficients. Because the coefficients depend on the pixel's colour,
  the mapping can be non-linear in intensity (gamma, tone curves), yet the output is still a
  pointwise colour mapping of the frame: every edge and texture in it comes from the frame, none
  from the atlas.
* The head starts as the identity (M = I, b = 0), so an untrained or unsure net returns the frame
  unchanged: "do no harm" is the default, not something to learn from scratch.

Any frame size works: inputs are padded (reflect, or replicate where the frame is too small to
reflect) to a multiple of the net's stride and the output is cropped back to the input size.

Size (default config): 924,636 parameters; its speed is measured by bench/net_speed.py
(figures in bench/README.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..tiling import pad_to_multiple

COEFFICIENTS = 12  # 3x3 colour matrix + 3 offsets


@dataclass(frozen=True)
class FilterNetConfig:
    """Widths of the neural filter. `widths[0]` is the half-resolution level; each further entry
    halves the resolution again, so the stride is 2 ** len(widths)."""

    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    head_width: int = 16  # channels of the per-pixel head at full resolution

    def __post_init__(self) -> None:
        if len(self.widths) < 1 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.head_width < 1:
            raise ValueError(f"head_width must be positive, got {self.head_width}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @property
    def stride(self) -> int:
        return 2 ** len(self.widths)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FilterNetConfig:
        data = json.loads(text)
        data["widths"] = tuple(data["widths"])
        return cls(**data)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    # ReLU, not LeakyReLU: on the CPU PyTorch's leaky_relu is several times slower.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class _Down(nn.Module):
    """Halve the resolution (strided conv), then one more conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c_in, c_out, stride=2), _conv(c_out, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Up(nn.Module):
    """Double the resolution (bilinear), concatenate the skip, two convs."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c_in + c_skip, c_out), _conv(c_out, c_out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], dim=1))


class NeuralFilterNet(nn.Module):
    """(frame [N,3,H,W], atlas [N,3,H,W]) in 0..1 -> filtered frame [N,3,H,W] in 0..1."""

    def __init__(self, config: FilterNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or FilterNetConfig()
        w = self.config.widths
        # Level 0 works at half resolution on the space-to-depth of both inputs (4 px -> 24 ch),
        # so no detail is averaged away before the first conv sees it.
        self.stem = nn.Sequential(_conv(24, w[0]), _conv(w[0], w[0]))
        self.downs = nn.ModuleList(_Down(w[i], w[i + 1]) for i in range(len(w) - 1))
        self.ups = nn.ModuleList(_Up(w[i + 1], w[i], w[i]) for i in reversed(range(len(w) - 1)))
        hw = self.config.head_width
        self.to_head = nn.Conv2d(w[0], hw, 1)
        self.head = nn.Sequential(
            nn.Conv2d(hw + 3, hw, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hw, COEFFICIENTS, 1),
        )
        self._init_identity()

    def _init_identity(self) -> None:
        last = self.head[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(torch.eye(3, 4).reshape(-1))

    @property
    def stride(self) -> int:
        return self.config.stride

    def forward(self, frame: torch.Tensor, atlas: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Filter a batch. `clamp=False` returns the raw output (training uses it so that
        out-of-range predictions still get gradients)."""
        if frame.shape != atlas.shape or frame.ndim != 4 or frame.shape[1] != 3:
            raise ValueError(
                f"frame and atlas must both be [N,3,H,W]; got {tuple(frame.shape)} and "
                f"{tuple(atlas.shape)}"
            )
        h, w = frame.shape[-2:]
        frame_p = pad_to_multiple(frame, self.stride)
        atlas_p = pad_to_multiple(atlas, self.stride)
        coeffs = self._coefficients(frame_p, atlas_p)
        out = apply_colour_transform(coeffs, frame_p)[..., :h, :w]
        return out.clamp(0.0, 1.0) if clamp else out

    def _coefficients(self, frame: torch.Tensor, atlas: torch.Tensor) -> torch.Tensor:
        """[N,3,H,W] x2 (H, W multiples of the stride) -> [N,12,H,W] colour coefficients."""
        x = torch.cat([frame, atlas], dim=1) - 0.5
        x = self.stem(F.pixel_unshuffle(x, 2))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        features = F.interpolate(
            self.to_head(x), scale_factor=2, mode="bilinear", align_corners=False
        )
        return self.head(torch.cat([features, frame - 0.5], dim=1))


def apply_colour_transform(coeffs: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """coeffs [N,12,H,W] (row-major 3x4 matrix [M | b] per pixel), frame [N,3,H,W] -> [N,3,H,W]."""
    n, _, h, w = coeffs.shape
    m = coeffs.view(n, 3, 4, h, w)
    return (m[:, :, :3] * frame.unsqueeze(1)).sum(dim=2) + m[:, :, 3]


def build_neural_filter(config: FilterNetConfig | None = None, **overrides) -> NeuralFilterNet:
    """A freshly initialised (identity) filter; keyword overrides patch the default config."""
    cfg = config or FilterNetConfig()
    if overrides:
        cfg = FilterNetConfig(**{**asdict(cfg), **overrides})
    return NeuralFilterNet(cfg)
