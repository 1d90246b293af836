"""The `paper` preset: coordinate-MLP atlas in the public configuration of Lei et al. 2023.

Mapping MLP (x, y, t) -> (u, v): 6 layers of 256, no positional encoding, tanh output.
Atlas MLP (u, v) -> RGB: 8 layers of 256 on a 10-frequency sin/cos encoding, sigmoid output.
10,001 Adam steps (lr 1e-4) of 10,000 random pixels, losses weighted colour x5000, image
gradient x1000, local rigidity x1, global rigidity x5 (first half), flow consistency x500.
Kept as the reference our fast preset is measured against; about 10 minutes per clip on a GPU
and hours on a CPU.
"""

from __future__ import annotations

import itertools
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..clip import to_nchw
from ..flow import flow_with_occlusion
from .config import AtlasConfig
from .fit_fast import fit_size
from .optim import Adam

PAPER_LONG_SIDE = 768  # the public code works on 768x432 frames


def _mlp(n_in: int, n_out: int, width: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    dims = [n_in] + [width] * (layers - 1)
    for a, b in itertools.pairwise(dims):
        mods += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    mods.append(nn.Linear(dims[-1], n_out))
    return nn.Sequential(*mods)


class PositionalEncoding(nn.Module):
    """[...,d] -> [...,d*(1+2F)]: the input plus sin/cos at frequencies 2^k * pi, k < F."""

    def __init__(self, frequencies: int):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(frequencies)) * math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ang = x[..., None] * self.freqs  # [...,d,F]
        return torch.cat((x, ang.sin().flatten(-2), ang.cos().flatten(-2)), dim=-1)


class MappingMLP(nn.Module):
    """(x, y, t) in [-1,1]^3 -> (u, v) in [-1,1]^2."""

    def __init__(self, width: int = 256, layers: int = 6):
        super().__init__()
        self.net = _mlp(3, 2, width, layers)

    def forward(self, xyt: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(xyt))


class AtlasMLP(nn.Module):
    """(u, v) in [-1,1]^2 -> RGB in 0..1."""

    def __init__(self, width: int = 256, layers: int = 8, frequencies: int = 10):
        super().__init__()
        self.encode = PositionalEncoding(frequencies)
        self.net = _mlp(2 * (1 + 2 * frequencies), 3, width, layers)

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.encode(uv)))


def _rigidity(jac: torch.Tensor) -> torch.Tensor:
    """Symmetric rigidity energy of 2x2 Jacobians [N,2,2]: 0 for a scaled-free rotation."""
    jtj = jac.transpose(1, 2) @ jac + 1e-6 * torch.eye(2, device=jac.device)
    return (jtj.square().sum((1, 2)) + torch.linalg.inv(jtj).square().sum((1, 2))).mean() - 4.0


class MLPAtlasModel:
    """Fitted paper-preset atlas: renders frames by querying both MLPs per pixel."""

    def __init__(self, mapping: MappingMLP, atlas: AtlasMLP, num_frames: int, preview: int):
        self.mapping, self.atlas = mapping.cpu().eval(), atlas.cpu().eval()
        self.num_frames, self.preview = num_frames, preview

    @torch.no_grad()
    def render(self, start, stop, frame_hw, device=None) -> torch.Tensor:
        device = device or torch.device("cpu")
        h, w = frame_hw
        mapping, atlas = self.mapping.to(device), self.atlas.to(device)
        out = []
        for t in range(start, stop):
            xyt = _pixel_grid(h, w, t, self.num_frames, device)
            rgb = torch.cat([atlas(mapping(c)) for c in xyt.split(65536)])
            out.append(rgb.reshape(h, w, 3).cpu())
        return torch.stack(out)

    @torch.no_grad()
    def texture_preview(self) -> torch.Tensor:
        n = self.preview
        lin = torch.linspace(-1, 1, n)
        v, u = torch.meshgrid(lin, lin, indexing="ij")
        uv = torch.stack((u, v), -1).reshape(-1, 2)
        rgb = torch.cat([self.atlas(c) for c in uv.split(65536)])
        return rgb.reshape(1, n, n, 3)


def _normalise_t(t, num):
    return (2.0 * t / max(num - 1, 1) - 1.0) if num > 1 else t * 0.0


def _pixel_grid(h, w, t, num, device):
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    x = (2.0 * xs.float() + 1.0) / w - 1.0
    y = (2.0 * ys.float() + 1.0) / h - 1.0
    tt = torch.full_like(x, _normalise_t(float(t), num))
    return torch.stack((x, y, tt), -1).reshape(-1, 3)


def fit_mlp_atlas(frames: torch.Tensor, config: AtlasConfig, device: torch.device,
                  on_progress=None):
    """Fit the paper-preset atlas to frames [T,H,W,3]. Returns (MLPAtlasModel, stats)."""
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    num, full_h, full_w, _ = frames.shape
    h, w = fit_size(full_h, full_w, PAPER_LONG_SIDE)
    video = F.interpolate(to_nchw(frames), size=(h, w), mode="area") \
        if (h, w) != (full_h, full_w) else to_nchw(frames)
    video = video.permute(0, 2, 3, 1).contiguous()  # [T,h,w,3]
    flows = torch.zeros(max(num - 1, 1), h, w, 2)
    masks = torch.zeros(max(num - 1, 1), h, w)
    for t in range(num - 1):
        flows[t], masks[t] = flow_with_occlusion(video[t], video[t + 1], "medium", normalise=True)
        if on_progress is not None:
            on_progress(0, config.resolved_iterations())

    mapping, atlas = MappingMLP().to(device), AtlasMLP().to(device)
    optim = Adam([{"params": list(mapping.parameters()) + list(atlas.parameters()),
                   "lr": config.paper_lr}])
    iterations = config.resolved_iterations()
    scale = torch.tensor([2.0 / w, 2.0 / h], device=device)

    def xyt_of(x, y, t):
        return torch.stack(((2.0 * x + 1.0) / w - 1.0, (2.0 * y + 1.0) / h - 1.0,
                            _normalise_t(t, num)), -1)

    # Bootstrap: start the mapping near a scaled identity, as the public code does.
    for _ in range(min(100, iterations)):
        xyt = torch.rand(config.paper_samples, 3, generator=gen).to(device) * 2 - 1
        loss = (mapping(xyt) - xyt[:, :2] * 0.5).square().mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        if on_progress is not None:
            on_progress(0, iterations)

    n = config.paper_samples
    t_loop = time.perf_counter()
    for it in range(iterations):
        x = torch.randint(0, w - 1, (n,), generator=gen).float()
        y = torch.randint(0, h - 1, (n,), generator=gen).float()
        t = torch.randint(0, num, (n,), generator=gen).float()
        xi, yi, ti = x.long(), y.long(), t.long()
        x, y, t = x.to(device), y.to(device), t.to(device)
        pts = torch.cat((xyt_of(x, y, t), xyt_of(x + 1, y, t), xyt_of(x, y + 1, t)))
        uv = mapping(pts)
        rgb = atlas(uv)
        c, cx, cy = rgb.split(n)
        target = video[ti, yi, xi].to(device)
        tx, ty = video[ti, yi, xi + 1].to(device), video[ti, yi + 1, xi].to(device)
        loss_colour = (c - target).square().sum(-1).mean()
        loss_grad = ((cx - c) - (tx - target)).square().sum(-1).mean() + \
            ((cy - c) - (ty - target)).square().sum(-1).mean()
        uv0, uvx, uvy = uv.split(n)
        jac = torch.stack((uvx - uv0, uvy - uv0), -1) / scale[None, :, None]
        loss = 5000 * loss_colour + 1000 * loss_grad + 1.0 * _rigidity(jac)
        if it < iterations // 2:
            d = 100.0
            far = mapping(torch.cat((xyt_of(x + d, y, t), xyt_of(x, y + d, t))))
            fx, fy = far.split(n)
            jac_g = torch.stack((fx - uv0, fy - uv0), -1) / (scale[None, :, None] * d)
            loss = loss + 5.0 * _rigidity(jac_g)
        if num > 1:
            ts = ti.clamp(max=num - 2)
            f = flows[ts, yi, xi].to(device)
            m = masks[ts, yi, xi].to(device)
            ts_f = ts.float().to(device)
            uv_a = mapping(xyt_of(x, y, ts_f))
            uv_b = mapping(xyt_of(x + f[:, 0], y + f[:, 1], ts_f + 1))
            loss = loss + 500 * ((uv_a - uv_b).abs().sum(-1) * m).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        if on_progress is not None:  # every step: one step can take seconds on a CPU
            on_progress(it + 1, iterations)
    stats = {"preset": "paper", "iterations": iterations, "fit_size": (h, w),
             "seconds_total": time.perf_counter() - t0,
             "seconds_per_iteration": (time.perf_counter() - t_loop) / max(iterations, 1)}
    return MLPAtlasModel(mapping, atlas, num, min(config.atlas_resolution, 512)), stats
