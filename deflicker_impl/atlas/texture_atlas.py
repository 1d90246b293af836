"""The fast atlas: an explicit RGB texture read through per-frame deformations.

Mapping of frame t (frame coordinates q, see coords.py, to atlas coordinates a):
    a = s_t R(theta_t) q + c_t + D_t(q)
a similarity transform (camera motion) plus a coarse bilinear deformation grid D_t (parallax,
slow non-rigid motion). The texture is one image for the whole clip, so every frame rendered
from it has the same colours: that is what removes the flicker. Structure is only approximate
(coarse deformations cannot follow every motion), which the neural filter later repairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .coords import to_grid_sample


class DeformationMapping(nn.Module):
    """Per-frame similarity + coarse deformation grid, mapping frame to atlas coordinates.

    Parameters: log_scale [T], angle [T], shift [T,2], grid [T,2,gh,gw] (atlas units).
    """

    def __init__(self, num_frames: int, grid_hw: tuple[int, int], frame_hw: tuple[int, int]):
        super().__init__()
        self.frame_hw = frame_hw
        self.log_scale = nn.Parameter(torch.zeros(num_frames))
        self.angle = nn.Parameter(torch.zeros(num_frames))
        self.shift = nn.Parameter(torch.zeros(num_frames, 2))
        self.grid = nn.Parameter(torch.zeros(num_frames, 2, *grid_hw))

    def set_similarities(self, scale: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor):
        with torch.no_grad():
            self.log_scale.copy_(scale.log())
            self.angle.copy_(angle)
            self.shift.copy_(shift)

    def linear_part(self, frames: torch.Tensor) -> torch.Tensor:
        """[n] frame indices -> [n,2,2] scaled rotations."""
        s = self.log_scale[frames].exp()
        c, si = torch.cos(self.angle[frames]), torch.sin(self.angle[frames])
        return torch.stack((torch.stack((c, -si), -1), torch.stack((si, c), -1)), -2) * s[:, None, None]

    def forward(self, frames: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Atlas coordinates of points q [n,...,2] in frames [n] -> [n,...,2]."""
        n = q.shape[0]
        pts = q.reshape(n, -1, 2)
        h, w = self.frame_hw
        # Grid nodes sit on the frame's corners (align_corners=True over the frame extent).
        g = to_grid_sample(pts, h, w).unsqueeze(1)  # [n,1,P,2]
        deform = F.grid_sample(self.grid[frames], g, mode="bilinear", padding_mode="border",
                               align_corners=True)  # [n,2,1,P]
        out = deform[:, :, 0].transpose(1, 2) + self.shift[frames][:, None, :]
        # The 2x2 product written out: a batched matmul with an inner size of 2 costs several
        # times these two fused multiply-adds on a CPU, and the fit runs it on every step.
        lin = self.linear_part(frames)[:, None]  # [n,1,2,2]
        out = torch.addcmul(out, pts[..., :1], lin[..., 0])
        out = torch.addcmul(out, pts[..., 1:], lin[..., 1])
        return out.reshape(q.shape)

    def smoothness(self) -> torch.Tensor:
        """Squared first differences of the deformation grid (atlas units^2), mean."""
        dx = self.grid[..., :, 1:] - self.grid[..., :, :-1]
        dy = self.grid[..., 1:, :] - self.grid[..., :-1, :]
        return dx.square().mean() + dy.square().mean()


class AtlasTexture(nn.Module):
    """RGB texture [1,3,Ht,Wt] covering the atlas rectangle `bounds` = (u0, v0, u1, v1)."""

    def __init__(self, texture: torch.Tensor, bounds: tuple[float, float, float, float]):
        super().__init__()
        self.texture = nn.Parameter(texture)
        self.bounds = bounds

    def normalised(self, a: torch.Tensor) -> torch.Tensor:
        """Atlas coordinates -> grid_sample coordinates of the texture."""
        u0, v0, u1, v1 = self.bounds
        scale = torch.tensor([2.0 / (u1 - u0), 2.0 / (v1 - v0)], dtype=a.dtype, device=a.device)
        offset = torch.tensor([-2.0 * u0 / (u1 - u0) - 1.0, -2.0 * v0 / (v1 - v0) - 1.0],
                              dtype=a.dtype, device=a.device)
        return torch.addcmul(offset, a, scale)  # (a - lo) / span * 2 - 1 in one pass

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Colours at atlas coordinates a [n,h,w,2] -> [n,3,h,w]."""
        n, h, w, _ = a.shape
        flat = self.normalised(a).reshape(1, n * h, w, 2)
        rgb = F.grid_sample(self.texture, flat, mode="bilinear", padding_mode="border",
                            align_corners=False)  # [1,3,n*h,w]
        return rgb.reshape(3, n, h, w).transpose(0, 1)


def texel_grid_size(bounds, texels_per_unit: float) -> tuple[int, int]:
    u0, v0, u1, v1 = bounds
    return max(2, round((v1 - v0) * texels_per_unit)), max(2, round((u1 - u0) * texels_per_unit))


@dataclass(frozen=True)
class SplatTaps:
    """Where the bilinear splat of P points lands in a texel grid: the four taps of every point,
    as flat texel indices [4,P] (int32) and weights [4,P] (zero for taps outside the grid).

    The taps depend only on the points, so passes that splat new colours at the same points
    (the back-projection) compute them once: that is most of a splat's cost.
    """

    index: torch.Tensor
    weight: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + self.weight.nbytes


# Points per block when computing taps: the dozen elementwise passes stay in cache at this
# size, where one pass over a whole chunk of frames runs from memory.
_TAP_BLOCK = 1 << 16


def splat_taps(a: torch.Tensor, texture: AtlasTexture, shape: tuple[int, int]) -> SplatTaps:
    """The bilinear taps of atlas points a [n,h,w,2] in `texture`'s grid of `shape` (Ht, Wt)."""
    ht, wt = shape
    pts = a.reshape(-1, 2)
    index = torch.empty(4, pts.shape[0], dtype=torch.int32, device=a.device)
    weight = torch.empty(4, pts.shape[0], dtype=a.dtype, device=a.device)
    for start in range(0, pts.shape[0], _TAP_BLOCK):
        stop = min(start + _TAP_BLOCK, pts.shape[0])
        g = texture.normalised(pts[start:stop])
        # Texel coordinates of grid_sample with align_corners=False.
        x = (g[:, 0] + 1.0) * 0.5 * wt - 0.5
        y = (g[:, 1] + 1.0) * 0.5 * ht - 0.5
        x0, y0 = x.floor(), y.floor()
        fx, fy = x - x0, y - y0
        xi0, yi0 = x0.long(), y0.long()
        for k, (dx, dy, wgt) in enumerate(((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy))):
            xi, yi = xi0 + dx, yi0 + dy
            # Out-of-range taps get zero weight instead of being filtered out: no
            # data-dependent shapes, which keeps this a handful of dense kernels.
            weight[k, start:stop] = wgt * ((xi >= 0) & (xi < wt) & (yi >= 0) & (yi < ht))
            index[k, start:stop] = yi.clamp(0, ht - 1) * wt + xi.clamp(0, wt - 1)
    return SplatTaps(index, weight)


def splat_with_taps(taps: SplatTaps, colours: torch.Tensor, shape: tuple[int, int],
                    accum: torch.Tensor | None = None) -> torch.Tensor:
    """Splat colours [n,C,h,w] through `taps` (of the same n*h*w points) into a texel grid of
    `shape`, added to `accum` -> accumulated colour [C,Ht*Wt]."""
    channels = colours.shape[1]
    c = colours.permute(1, 0, 2, 3).reshape(channels, -1)
    if accum is None:
        accum = torch.zeros(channels, shape[0] * shape[1], dtype=colours.dtype,
                            device=colours.device)
    for k in range(4):
        # int32 is how the taps are kept; index_add_ takes a slow path for int32 indices.
        accum.index_add_(1, taps.index[k].long(), c * taps.weight[k])
    return accum


def splat_weight(taps: SplatTaps, shape: tuple[int, int],
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """The splat's weight per texel (what a colour of 1 accumulates), added to `weight` ->
    [Ht*Wt]."""
    if weight is None:
        weight = torch.zeros(shape[0] * shape[1], dtype=taps.weight.dtype,
                             device=taps.weight.device)
    for k in range(4):
        weight.index_add_(0, taps.index[k].long(), taps.weight[k])
    return weight


# Memory the full-resolution texture passes may keep between passes (points, colours, taps).
TEXTURE_CACHE_BYTES = 256 << 20


class ChunkCache:
    """The per-chunk inputs of the texture passes (atlas points, frame colours, splat taps),
    built once and read by every pass: the splat and each back-projection step.

    Chunks are kept from the first on while they fit `budget` bytes; later ones are rebuilt on
    every pass, so memory stays bounded on long or large clips and short clips pay for their
    points and taps once. `build(start, stop)` returns one chunk as a tuple of tensors and
    SplatTaps for frames start..stop-1.
    """

    def __init__(self, num_frames: int, chunk_frames: int,
                 build: Callable[[int, int], tuple], budget: int | None = None):
        self.num_frames, self.chunk_frames, self.build = num_frames, chunk_frames, build
        self.budget = TEXTURE_CACHE_BYTES if budget is None else budget
        self.kept: list[tuple] = []
        self.kept_bytes = 0

    def __iter__(self) -> Iterator[tuple]:
        yield from self.kept
        for start in range(len(self.kept) * self.chunk_frames, self.num_frames,
                           self.chunk_frames):
            item = self.build(start, min(start + self.chunk_frames, self.num_frames))
            size = sum(_nbytes(part) for part in item)
            # Only an unbroken run from the first chunk is kept, so that the kept chunks are
            # always the first len(kept) of the clip.
            if len(self.kept) * self.chunk_frames == start \
                    and self.kept_bytes + size <= self.budget:
                self.kept.append(item)
                self.kept_bytes += size
            yield item


def _nbytes(part) -> int:
    if isinstance(part, (torch.Tensor, SplatTaps)):
        return part.nbytes
    if isinstance(part, (tuple, list)):
        return sum(_nbytes(p) for p in part)
    return 0


def splat_to_texture(
    a: torch.Tensor, colours: torch.Tensor, texture: AtlasTexture, shape: tuple[int, int],
    accum: torch.Tensor | None = None, weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear forward splat of colours [n,C,h,w] at atlas points a [n,h,w,2] into a texel grid.

    Returns (accumulated colour [C,Ht*Wt], accumulated weight [Ht*Wt]); pass them back in to
    accumulate over chunks. Dividing the two is the least-squares-flavoured average texture.
    """
    taps = splat_taps(a, texture, shape)
    return splat_with_taps(taps, colours, shape, accum), splat_weight(taps, shape, weight)
