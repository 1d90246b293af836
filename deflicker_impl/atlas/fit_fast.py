"""Fitting the fast atlas (texture + per-frame deformations) to a clip.

1. Downscale the clip to `fit_long_side` and measure DIS flow between neighbouring frames on
   brightness-normalised luma (so that flicker does not read as motion).
2. Initialise each frame's similarity transform by chaining robust fits to that flow, anchored
   at the middle frame; the atlas rectangle covers every mapped frame.
3. Jointly optimise texture and mappings (Adam): colour reconstruction + flow consistency
   (a point and its flow successor must land on the same texel: that is what lets the texture
   act as one consistent image) + grid smoothness.
4. Build the full-resolution texture from the full-resolution frames with the fitted mapping
   (average splat, then a few back-projection steps to undo the splat's blur).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..clip import to_nchw, to_nhwc
from ..flow import flow_with_occlusion
from ..progress import ProgressCounter, ProgressFn
from ..timing import phase
from .config import AtlasConfig
from .coords import frame_coordinates
from .optim import Adam
from .pixel_table import PixelTable
from .stopping import LossStall
from .texture_atlas import (
    AtlasTexture,
    ChunkCache,
    DeformationMapping,
    splat_taps,
    splat_to_texture,
    splat_weight,
    splat_with_taps,
    texel_grid_size,
)


def fit_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """Fitting resolution: the long side at most `long_side`, never upscaled, aspect kept."""
    scale = min(1.0, long_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def similarity_chain(flows, masks, h: int, w: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Per-frame (scale, angle, shift) in atlas units, anchored at the middle frame.

    flows[t] [h,w,2] maps frame t to t+1 (fit pixels). A similarity from frame t+1 to frame t is
    fitted robustly to the flow correspondences and chained outwards from the anchor.
    """
    import cv2

    cv2.setRNGSeed(int(seed))
    num = len(flows) + 1
    long_side = float(max(h, w))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # step[t] maps frame-(t+1) coordinates to frame-t coordinates: 2x3 in aspect coordinates.
    steps = []
    for flow, mask in zip(flows, masks):
        f, m = flow.numpy(), mask.numpy() > 0.5
        sel = np.flatnonzero(m.ravel())
        mat = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
        if sel.size >= 16:
            stride = max(1, sel.size // 2000)
            sel = sel[::stride]
            src = np.stack((xs.ravel()[sel] + f[..., 0].ravel()[sel],
                            ys.ravel()[sel] + f[..., 1].ravel()[sel]), -1)
            dst = np.stack((xs.ravel()[sel], ys.ravel()[sel]), -1)
            # to aspect coordinates: q = (2p + 1 - size) / L
            size = np.array([w, h], np.float32)
            src_q = (2 * src + 1 - size) / long_side
            dst_q = (2 * dst + 1 - size) / long_side
            est, _ = cv2.estimateAffinePartial2D(
                src_q.astype(np.float32), dst_q.astype(np.float32), method=cv2.RANSAC,
                ransacReprojThreshold=2.0 / long_side, maxIters=500, confidence=0.99)
            if est is not None and np.all(np.isfinite(est)):
                mat = est
        steps.append(mat)

    def compose(a, b):  # (a o b) for 2x3 affines
        a3 = np.vstack((a, [0, 0, 1]))
        b3 = np.vstack((b, [0, 0, 1]))
        return (a3 @ b3)[:2]

    anchor = num // 2
    mats = [None] * num
    mats[anchor] = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    for t in range(anchor + 1, num):
        mats[t] = compose(mats[t - 1], steps[t - 1])
    for t in range(anchor - 1, -1, -1):
        inv = cv2.invertAffineTransform(steps[t])
        mats[t] = compose(mats[t + 1], inv)
    mats = np.stack(mats)
    scale = np.sqrt(np.abs(np.linalg.det(mats[:, :, :2]))).clip(0.25, 4.0)
    angle = np.arctan2(mats[:, 1, 0], mats[:, 0, 0])
    shift = mats[:, :, 2]
    return (torch.tensor(scale, dtype=torch.float32), torch.tensor(angle, dtype=torch.float32),
            torch.tensor(shift, dtype=torch.float32))


def atlas_bounds(mapping: DeformationMapping, h: int, w: int, margin: float = 0.05):
    q = frame_coordinates(h, w)
    edge = torch.cat((q[0], q[-1], q[:, 0], q[:, -1]))  # frame border points
    frames = torch.arange(mapping.shift.shape[0])
    with torch.no_grad():
        a = mapping(frames, edge.expand(len(frames), -1, -1))
    lo = a.reshape(-1, 2).min(0).values - margin
    hi = a.reshape(-1, 2).max(0).values + margin
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


class TextureAtlasModel:
    """Fitted fast atlas: mapping (frame -> atlas) and the full-resolution texture."""

    def __init__(self, mapping: DeformationMapping, texture: AtlasTexture):
        self.mapping = mapping.cpu().eval()
        self.texture = texture.cpu().eval()

    @torch.no_grad()
    def render(self, start, stop, frame_hw, device=None) -> torch.Tensor:
        device = device or torch.device("cpu")
        h, w = frame_hw
        mapping, texture = self.mapping.to(device), self.texture.to(device)
        frames = torch.arange(start, stop, device=device)
        q = frame_coordinates(h, w, device).expand(len(frames), -1, -1, -1)
        rgb = texture(mapping(frames, q)).clamp(0, 1)
        return to_nhwc(rgb).cpu()

    def texture_preview(self) -> torch.Tensor:
        return to_nhwc(self.texture.texture.detach().clamp(0, 1)).cpu()


def charbonnier(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt(x * x + eps * eps)


def fit_texture_atlas(
    frames: torch.Tensor, config: AtlasConfig, device: torch.device,
    on_progress: ProgressFn | None = None,
) -> tuple[TextureAtlasModel, dict]:
    """Fit the fast atlas to frames [T,H,W,3] (validated, CPU). Returns (model, stats)."""
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    num, full_h, full_w, _ = frames.shape
    h, w = fit_size(full_h, full_w, config.fit_long_side)
    iterations = config.resolved_iterations()
    total_steps = iterations + num + config.backprojection_steps * num
    tick = ProgressCounter(total_steps, on_progress)

    with phase("downscale"):
        small = F.interpolate(to_nchw(frames), size=(h, w), mode="area") \
            if (h, w) != (full_h, full_w) else to_nchw(frames).clone()
        small_hwc = to_nhwc(small)

    flows, masks = [], []
    with phase("flow"):
        for t in range(num - 1):
            fl, m = flow_with_occlusion(small_hwc[t], small_hwc[t + 1], "medium", normalise=True)
            flows.append(fl)
            masks.append(m)
            if t % 8 == 0:
                tick(0)
    t_flow = time.perf_counter() - t0

    long_side = max(h, w)
    cells = max(1, config.grid_cells)
    grid_hw = (max(2, round(cells * h / long_side) + 1), max(2, round(cells * w / long_side) + 1))
    mapping = DeformationMapping(num, grid_hw, (h, w))
    if num > 1:
        with phase("similarity chain"):
            mapping.set_similarities(*similarity_chain(flows, masks, h, w, config.seed))
    bounds = atlas_bounds(mapping, h, w)
    texels_per_unit = long_side / 2.0  # one texel per fit pixel
    tex_shape = texel_grid_size(bounds, texels_per_unit)
    q = frame_coordinates(h, w)
    all_frames = torch.arange(num)

    # Initial texture: average of the frames through the initial mapping.
    init_tex = AtlasTexture(torch.zeros(1, 3, *tex_shape), bounds)
    with torch.no_grad(), phase("initial texture"):
        acc, wt = splat_to_texture(mapping(all_frames, q.expand(num, -1, -1, -1)), small,
                                   init_tex, tex_shape)
    mean_colour = small.mean(dim=(0, 2, 3))
    tex0 = (acc + 0.05 * mean_colour[:, None]) / (wt + 0.05)
    texture = AtlasTexture(tex0.reshape(1, 3, *tex_shape), bounds)

    mapping, texture = mapping.to(device), texture.to(device)
    small_d, q_d = small.to(device), q.to(device)
    pix_scale = long_side / 2.0  # atlas units -> fit pixels
    if num > 1:
        flow_t = torch.stack(flows).to(device)  # [T-1,h,w,2] fit pixels
        mask_t = torch.stack(masks).to(device)
        q_next = q_d + flow_t * (2.0 / long_side)
        src_idx = torch.arange(num - 1, device=device)
    optim = Adam([
        {"params": texture.parameters(), "lr": config.texture_lr},
        {"params": [mapping.log_scale, mapping.angle, mapping.shift], "lr": config.mapping_lr},
        {"params": [mapping.grid], "lr": config.mapping_lr},
    ])
    frames_idx = all_frames.to(device)
    q_flat = q_d.reshape(-1, 2)
    targets = PixelTable(small_d.flatten(2))  # [T,3,h*w]
    if num > 1:
        successors = PixelTable(q_next.reshape(num - 1, -1, 2), dim=1)  # [T-1,h*w,2]
        flow_masks = PixelTable(mask_t.reshape(num - 1, -1))
    gen = torch.Generator().manual_seed(config.seed)
    per_frame = h * w if config.pixels_per_frame <= 0 else min(h * w, config.pixels_per_frame)
    stall = LossStall(config.resolved_stall_tolerance(), config.min_iterations)
    with phase("optimisation"):
        for it in range(iterations):
            # A fresh random pixel subset each step (shared by all frames): the stochastic estimate
            # costs a fraction of the full image and converges to the same fit.
            pix = torch.randperm(h * w, generator=gen)[:per_frame].to(device)
            optim.zero_grad()
            a = mapping(frames_idx, q_flat[pix].expand(num, -1, -1))  # [T,P,2]
            recon = texture(a.unsqueeze(1))  # [T,3,1,P]
            colour = charbonnier(recon[:, :, 0] - targets.take(pix)).mean()
            loss = colour
            flow_term = torch.zeros(())
            if num > 1:
                a_next = mapping(src_idx + 1, successors.take(pix))
                d = (a[:-1] - a_next) * pix_scale
                flow_term = (charbonnier(d, 0.05).sum(-1) * flow_masks.take(pix)).mean()
                loss = loss + config.flow_weight * flow_term
            smooth = mapping.smoothness() * pix_scale**2
            loss = loss + config.smooth_weight * 1e-3 * smooth
            loss.backward()
            optim.step()
            if it % 5 == 4 or it == iterations - 1:
                tick(5 if it % 5 == 4 else (it % 5) + 1)
            if stall.update(loss):
                tick(iterations - 1 - it)  # the steps not needed
                break
    steps = it + 1  # resolved_iterations() is at least 1
    losses = {"colour": float(colour.detach()), "flow": float(flow_term.detach()),
              "smooth": float(smooth.detach())}
    t_fit = time.perf_counter() - t0

    mapping = mapping.cpu().eval()
    texture_hi = _full_resolution_texture(
        frames, mapping, texture.cpu(), bounds, config, tick)
    stats = {
        "preset": "fast", "iterations": steps, "max_iterations": iterations,
        "loss_windows": stall.means, "fit_size": (h, w),
        "texture_size": tuple(texture_hi.texture.shape[-2:]), "seconds_flow": t_flow,
        "seconds_fit": t_fit, "seconds_total": time.perf_counter() - t0, **losses,
    }
    return TextureAtlasModel(mapping, texture_hi), stats


@torch.no_grad()
def _full_resolution_texture(frames, mapping, texture_lo, bounds, config, tick,
                             chunk_pixels: int = 1 << 21):
    """Texture at the density of the full-resolution frames (capped by atlas_resolution)."""
    num, full_h, full_w, _ = frames.shape
    u0, v0, u1, v1 = bounds
    per_unit = max(full_h, full_w) / 2.0
    span = max(u1 - u0, v1 - v0)
    per_unit = min(per_unit, config.atlas_resolution / span)
    shape = texel_grid_size(bounds, per_unit)
    prior = F.interpolate(texture_lo.texture, size=shape, mode="bilinear", align_corners=False)
    hi = AtlasTexture(prior.clone(), bounds)
    # Frames denser than the texture (4K input, capped atlas) are first reduced to the texture's
    # density: splatting more pixels than texels only costs time.
    reduce = min(1.0, per_unit / (max(full_h, full_w) / 2.0))
    build_h, build_w = max(1, round(full_h * reduce)), max(1, round(full_w * reduce))
    q = frame_coordinates(build_h, build_w)

    def build(start, stop):
        idx = torch.arange(start, stop)
        img = to_nchw(frames[start:stop])
        if (build_h, build_w) != (full_h, full_w):
            img = F.interpolate(img, size=(build_h, build_w), mode="area")
        a = mapping(idx, q.expand(len(idx), -1, -1, -1))
        return idx, a, img, splat_taps(a, hi, shape)

    chunks = ChunkCache(num, max(1, chunk_pixels // (full_h * full_w)), build)
    acc = wt = None
    with phase("texture splat"):
        for idx, _, img, taps in chunks:
            acc = splat_with_taps(taps, img, shape, acc)
            wt = splat_weight(taps, shape, wt)
            tick(len(idx))
        prior_w = 0.05
        tex = (acc + prior_w * prior.reshape(3, -1)) / (wt + prior_w)
        hi.texture.data = tex.reshape(1, 3, *shape)
    # Back-projection: the splat average is the texture blurred by splat+sample; adding back the
    # splatted residual converges toward the least-squares texture (sharper, same colours).
    with phase("back-projection"):
        for _ in range(config.backprojection_steps):
            acc = None
            for idx, a, img, taps in chunks:
                acc = splat_with_taps(taps, img - hi(a), shape, acc)
                tick(len(idx))
            hi.texture.data = (hi.texture.reshape(3, -1) + acc / (wt + prior_w)).reshape(1, 3, *shape)
    hi.texture.data.clamp_(0, 1)
    return hi


