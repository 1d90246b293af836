"""Spatially smooth colour transforms between two images, fitted by weighted least squares.

Flicker, a grade or an exposure change acts on a frame as a colour transform that varies slowly
across the image; content (a turning head, an object that appears) does not. So a transform
that is smooth in space and fitted robustly explains flicker and leaves content changes in its
residual. The atlas stage uses that residual as its confidence (atlas/confidence.py), and the
filter stage applies such a transform, measured where the atlas is right, to the frame itself
where it is wrong.

The transform of channel c at pixel p is a quadratic tone curve whose three coefficients vary
bilinearly over a coarse grid of nodes:

    out_c(p) = sum_k phi_k(p) * (q_ck * s_c(p)^2 + g_ck * s_c(p) + o_ck)

phi_k are the bilinear "hat" weights of node k (align_corners grid). The fit minimises the
weighted squared error plus a smoothness penalty between neighbouring nodes (so nodes without
data take their neighbours' values) and a tiny pull towards the identity (so a frame without
any data is left unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TERMS = 3  # s^2, s, 1
MODELS = {"quadratic": (0, 1, 2), "affine": (1, 2), "gain": (1,)}  # which terms are free
POWERS = {0: 2, 1: 1, 2: 0}  # term -> power of the source value it multiplies


@dataclass(frozen=True)
class SmoothColourField:
    """Fitted coefficients [N,3,TERMS,gy,gx] (per frame, channel, term, node)."""

    coefficients: torch.Tensor

    def apply(self, source: torch.Tensor) -> torch.Tensor:
        """source [N,3,H,W] (any size: the node grid stretches over it) -> [N,3,H,W]."""
        n, c, h, w = source.shape
        coeffs = self.coefficients.to(source.dtype).flatten(1, 2)  # [N,3*TERMS,gy,gx]
        dense = F.interpolate(coeffs, size=(h, w), mode="bilinear", align_corners=True)
        dense = dense.view(n, c, TERMS, h, w)
        return dense[:, :, 0] * source * source + dense[:, :, 1] * source + dense[:, :, 2]


def node_grid(height: int, width: int, nodes_long_side: int) -> tuple[int, int]:
    """Nodes (gy, gx) of a grid with `nodes_long_side` nodes along the long side, about square
    cells, at least 2 nodes per axis."""
    long_side = max(height, width)
    cells = max(1, nodes_long_side - 1)
    gy = max(2, round(cells * height / long_side) + 1)
    gx = max(2, round(cells * width / long_side) + 1)
    return gy, gx


def _hat_axis(size: int, nodes: int, dtype, device) -> torch.Tensor:
    """[size, nodes] linear interpolation weights of `nodes` evenly spaced nodes (align_corners)
    at each of `size` positions; the 2-D weights are products of one per axis."""
    pos = torch.linspace(0, nodes - 1, size, dtype=dtype, device=device)  # in node units
    idx = torch.arange(nodes, dtype=dtype, device=device)
    return (1 - (pos[:, None] - idx[None, :]).abs()).clamp_min(0)


def _grid_laplacian(gy: int, gx: int, dtype, device) -> torch.Tensor:
    """[K,K] D^T D for the differences between horizontally and vertically adjacent nodes."""
    k = gy * gx
    rows = []
    for y in range(gy):
        for x in range(gx):
            for ny, nx in ((y + 1, x), (y, x + 1)):
                if ny < gy and nx < gx:
                    row = torch.zeros(k, dtype=dtype, device=device)
                    row[y * gx + x], row[ny * gx + nx] = 1.0, -1.0
                    rows.append(row)
    d = torch.stack(rows)
    return d.t() @ d


def fit_smooth_colour_field(
    source: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    nodes_long_side: int = 5,
    smoothness: float = 0.02,
    identity_pull: float = 1e-3,
    model: str = "quadratic",
) -> SmoothColourField:
    """Fit target ~ field(source) for images [N,3,h,w] in 0..1 (keep h*w small: a few thousand
    pixels; fit on downscaled frames and apply at full size).

    weights [N,1,h,w] (or [N,h,w]) in 0..1 say how much each pixel counts (None: all 1).
    `smoothness` and `identity_pull` are relative to a frame whose every pixel has weight 1.
    `model`: "quadratic" (tone curve + gain + offset), "affine" (gain + offset) or "gain" (a
    pure per-channel gain: the safest to extrapolate to intensities the data did not cover).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if source.shape != target.shape or source.ndim != 4 or source.shape[1] != 3:
        raise ValueError(f"source and target must both be [N,3,h,w]; got {tuple(source.shape)} "
                         f"and {tuple(target.shape)}")
    n, c, h, w = source.shape
    dtype, device = torch.float64, source.device  # float64: the normal equations are ill-conditioned in float32
    if weights is None:
        weights = torch.ones(n, 1, h, w, device=device)
    if weights.ndim == 3:
        weights = weights[:, None]
    gy, gx = node_grid(h, w, nodes_long_side)
    k = gy * gx
    by, bx = _hat_axis(h, gy, dtype, device), _hat_axis(w, gx, dtype, device)
    byy = (by[:, :, None] * by[:, None, :]).reshape(h, gy * gy)
    bxx = (bx[:, :, None] * bx[:, None, :]).reshape(w, gx * gx)
    s = source.to(dtype)
    tgt = target.to(dtype)
    wt = weights.to(dtype).clamp_min(0)  # [N,1,h,w]
    powers = [POWERS[term] for term in MODELS[model]]

    def gram(v: torch.Tensor) -> torch.Tensor:
        """sum_p v(p) phi_k(p) phi_l(p) for v [N,C,h,w] -> [N,C,K,K]; the basis is separable
        (phi = by * bx), so this is two small matrix products."""
        m = torch.einsum("ncyx,xq,yr->ncrq", v, bxx, byy)  # [N,C,gy*gy,gx*gx]
        m = m.reshape(n, c, gy, gy, gx, gx).permute(0, 1, 2, 4, 3, 5)
        return m.reshape(n, c, k, k)

    def project(v: torch.Tensor) -> torch.Tensor:
        """sum_p v(p) phi_k(p) for v [N,C,h,w] -> [N,C,K]."""
        return torch.einsum("ncyx,yi,xj->ncij", v, by, bx).reshape(n, c, k)

    # Normal equations: block (a, b) is sum_p w s^(pa+pb) phi_k phi_l.
    moments = {m: gram(wt * s ** m) for m in {pa + pb for pa in powers for pb in powers}}
    normal = torch.cat([torch.cat([moments[pa + pb] for pb in powers], dim=-1)
                        for pa in powers], dim=-2)
    rhs = torch.cat([project(wt * s ** pa * tgt) for pa in powers], dim=-1)  # [N,C,len*K]
    pixels = float(h * w)
    blocks = len(powers)
    lap = _grid_laplacian(gy, gx, dtype, device) * (smoothness * pixels / k)
    pull = identity_pull * pixels / k
    reg = torch.block_diag(*[lap] * blocks) + torch.eye(blocks * k, dtype=dtype, device=device) \
        * pull
    # The prior pulls towards the identity: gain 1, every other term 0.
    prior = torch.cat([torch.full((k,), pull if p == 1 else 0.0, dtype=dtype, device=device)
                       for p in powers])
    solved = torch.linalg.solve(normal + reg, (rhs + prior)[..., None])[..., 0]
    theta = torch.zeros(n, c, TERMS, k, dtype=dtype, device=device)
    for index, term in enumerate(MODELS[model]):
        theta[:, :, term] = solved[..., index * k:(index + 1) * k]
    coeffs = theta.view(n, c, TERMS, gy, gx).to(torch.float32)
    return SmoothColourField(coeffs)
