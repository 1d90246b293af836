"""The two-layer fast atlas: a foreground and a background layer composited by a fitted alpha.

One atlas assumes one surface: an object moving over its background gets smeared into the
background's texture (ghosting). With object masks, each layer gets its own texture and its own
per-frame mapping (similarity + coarse grid, as in the one-layer fast atlas), and every frame is

    A_t(x) = alpha_t(x) * fg(M_fg,t(x)) + (1 - alpha_t(x)) * bg(M_bg,t(x)).

alpha lives in the foreground atlas: one logit image read through the foreground mapping,
alpha_t(x) = sigmoid(a(M_fg,t(x))). It is initialised by splatting the masks into the foreground
atlas and held to them by a loss whose weight decays (the masks bootstrap it; the colours then
refine its edges). Being one image for the whole clip, alpha cannot change from frame to frame
except by following the object: a per-frame alpha would let the fit switch layers to explain
flicker. The flow-consistency term acts per layer, weighted by that layer's alpha. The
full-resolution textures are then rebuilt from the full-resolution frames, each pixel splatted
into each layer with its alpha as weight.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ..clip import to_nchw, to_nhwc
from ..flow import flow_with_occlusion
from ..progress import ProgressCounter, ProgressFn
from .config import AtlasConfig
from .coords import frame_coordinates
from .fit_fast import atlas_bounds, charbonnier, fit_size, similarity_chain
from .optim import Adam
from .pixel_table import PixelTable
from .texture_atlas import (
    AtlasTexture,
    ChunkCache,
    DeformationMapping,
    splat_taps,
    splat_to_texture,
    splat_with_taps,
    texel_grid_size,
)

LAYERS = ("foreground", "background")
ALPHA_CLAMP = 0.02  # mask values are pulled into [c, 1-c] before the logit: finite start
BACKPROJECTION_DAMPING = 0.5  # in texel-hits: a texel seen fully once has weight 1


def _erode(mask: torch.Tensor, px: int) -> torch.Tensor:
    """[N,1,h,w] -> the same, min-pooled over (2px+1)^2 (flow is unreliable at object edges)."""
    return -F.max_pool2d(-mask, 2 * px + 1, stride=1, padding=px) if px > 0 else mask


def _dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    return F.max_pool2d(mask, 2 * px + 1, stride=1, padding=px) if px > 0 else mask


def _bounds_of_points(a: torch.Tensor, margin: float = 0.05) -> tuple[float, float, float, float]:
    lo, hi = a.min(0).values - margin, a.max(0).values + margin
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def sample_alpha(alpha_logits: torch.Tensor, texture: AtlasTexture, a: torch.Tensor) \
        -> torch.Tensor:
    """alpha at foreground-atlas points a [n,h,w,2] from the logit image [1,1,Ha,Wa] that
    covers `texture`'s bounds -> [n,1,h,w] in 0..1."""
    n, h, w, _ = a.shape
    g = texture.normalised(a).reshape(1, n * h, w, 2)
    logits = F.grid_sample(alpha_logits, g, mode="bilinear", padding_mode="border",
                           align_corners=False)
    return torch.sigmoid(logits.reshape(1, n, h, w).transpose(0, 1))


class LayeredAtlasModel:
    """Fitted two-layer atlas: per layer a mapping and a texture, plus the alpha logit image
    in the foreground atlas."""

    num_layers = 2

    def __init__(self, mappings: list[DeformationMapping], textures: list[AtlasTexture],
                 alpha_logits: torch.Tensor, coverage: list[torch.Tensor] | None = None):
        self.mappings = [m.cpu().eval() for m in mappings]
        self.textures = [t.cpu().eval() for t in textures]
        self.alpha_logits = alpha_logits.detach().cpu()  # [1,1,Ha,Wa] over the fg bounds
        # Per layer [1,1,Ht,Wt] in 0..1: how much of each texel some frame showed (previews).
        self.coverage = coverage or [torch.ones(1, 1, *t.texture.shape[-2:]) for t in textures]

    @torch.no_grad()
    def render_alpha(self, start, stop, frame_hw, device=None) -> torch.Tensor:
        """Foreground alpha of frames [start, stop) at size frame_hw -> [n,1,H,W] on `device`."""
        device = device or torch.device("cpu")
        frames = torch.arange(start, stop, device=device)
        q = frame_coordinates(*frame_hw, device).expand(len(frames), -1, -1, -1)
        a = self.mappings[0].to(device)(frames, q)
        return sample_alpha(self.alpha_logits.to(device), self.textures[0].to(device), a)

    @torch.no_grad()
    def render_layers(self, start, stop, frame_hw, device=None) -> list[torch.Tensor]:
        """Each layer's colours for frames [start, stop) -> [[n,3,H,W], [n,3,H,W]] on `device`."""
        device = device or torch.device("cpu")
        h, w = frame_hw
        frames = torch.arange(start, stop, device=device)
        q = frame_coordinates(h, w, device).expand(len(frames), -1, -1, -1)
        return [tex.to(device)(mapping.to(device)(frames, q))
                for mapping, tex in zip(self.mappings, self.textures, strict=True)]

    @torch.no_grad()
    def render(self, start, stop, frame_hw, device=None) -> torch.Tensor:
        fg, bg = self.render_layers(start, stop, frame_hw, device)
        alpha = self.render_alpha(start, stop, frame_hw, device)
        return to_nhwc((alpha * fg + (1 - alpha) * bg).clamp(0, 1)).cpu()

    def texture_preview(self) -> torch.Tensor:
        """Foreground and background textures side by side (same height, a white gap); texels
        that no frame showed of that layer (outside the object, behind it) are a grey checker."""
        textures = []
        for tex, cov in zip(self.textures, self.coverage, strict=True):
            ht, wt = tex.texture.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(ht), torch.arange(wt), indexing="ij")
            checker = (0.55 + 0.2 * (((ys // 8) + (xs // 8)) % 2).float()).expand(1, 3, -1, -1)
            textures.append(tex.texture.detach().clamp(0, 1) * cov + checker * (1 - cov))
        height = max(t.shape[-2] for t in textures)
        scaled = []
        for tex in textures:
            width = max(1, round(tex.shape[-1] * height / tex.shape[-2]))
            scaled.append(F.interpolate(tex, size=(height, width), mode="bilinear",
                                        align_corners=False))
        gap = torch.ones(1, 3, height, max(2, height // 32))
        return to_nhwc(torch.cat((scaled[0], gap, scaled[1]), dim=-1).clamp(0, 1)).cpu()


def mask_weight_at(config: AtlasConfig, it: int, iterations: int) -> float:
    """Weight of the mask-bootstrap loss at step `it`: decays from mask_weight to a floor."""
    floor = config.mask_weight_floor
    decay = math.exp(-it / max(1.0, config.mask_decay * iterations))
    return config.mask_weight * (floor + (1.0 - floor) * decay)


def fit_layered_atlas(
    frames: torch.Tensor, masks: torch.Tensor, config: AtlasConfig, device: torch.device,
    on_progress: ProgressFn | None = None,
) -> tuple[LayeredAtlasModel, dict]:
    """Fit the two-layer atlas to frames [T,H,W,3] with foreground masks [T,H,W] (validated)."""
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    num, full_h, full_w, _ = frames.shape
    h, w = fit_size(full_h, full_w, config.fit_long_side)
    iterations = config.resolved_iterations()
    total_steps = iterations + 2 * num + config.backprojection_steps * num
    tick = ProgressCounter(total_steps, on_progress)

    resize = (h, w) != (full_h, full_w)
    small = F.interpolate(to_nchw(frames), size=(h, w), mode="area") if resize \
        else to_nchw(frames).clone()
    small_mask = F.interpolate(masks[:, None], size=(h, w), mode="area") if resize \
        else masks[:, None].clone()  # [T,1,h,w]
    small_hwc = to_nhwc(small)

    flows, occ = [], []
    for t in range(num - 1):
        fl, m = flow_with_occlusion(small_hwc[t], small_hwc[t + 1], "medium", normalise=True)
        flows.append(fl)
        occ.append(m)
        tick(1)
    t_flow = time.perf_counter() - t0

    long_side = max(h, w)
    cells = max(1, config.grid_cells)
    grid_hw = (max(2, round(cells * h / long_side) + 1), max(2, round(cells * w / long_side) + 1))
    q = frame_coordinates(h, w)
    all_frames = torch.arange(num)
    edge_px = max(1, round(long_side / 80))
    layer_masks = [small_mask, 1.0 - small_mask]  # each layer's share of every pixel
    mappings, textures = [], []
    for share in layer_masks:
        mapping = DeformationMapping(num, grid_hw, (h, w))
        if num > 1:
            # Motion of a layer from its own pixels only, away from the object's edges.
            sure = (_erode((share > 0.5).float(), edge_px)[:, 0] > 0.5).float()
            chain_masks = [occ[t] * sure[t] for t in range(num - 1)]
            mapping.set_similarities(*similarity_chain(flows, chain_masks, h, w, config.seed))
        if share is small_mask:
            covered = _dilate(share, edge_px)[:, 0] > 0.5
            with torch.no_grad():
                a = mapping(all_frames, q.expand(num, -1, -1, -1))
            bounds = _bounds_of_points(a[covered] if covered.any() else a.reshape(-1, 2))
        else:
            bounds = atlas_bounds(mapping, h, w)
        tex_shape = texel_grid_size(bounds, long_side / 2.0)
        blank = AtlasTexture(torch.zeros(1, 3, *tex_shape), bounds)
        with torch.no_grad():
            acc, _ = splat_to_texture(mapping(all_frames, q.expand(num, -1, -1, -1)),
                                      torch.cat((small * share, share), 1), blank, tex_shape)
        mean_colour = (small * share).sum((0, 2, 3)) / share.sum().clamp_min(1e-6)
        tex0 = (acc[:3] + 0.05 * mean_colour[:, None]) / (acc[3] + 0.05)
        mappings.append(mapping.to(device))
        textures.append(AtlasTexture(tex0.reshape(1, 3, *tex_shape), bounds).to(device))

    # alpha's logit image over the foreground texture: the masks averaged in the fg atlas.
    fg_tex = textures[0]
    with torch.no_grad():
        a_fg = mappings[0](all_frames.to(device), q.to(device).expand(num, -1, -1, -1))
        acc, hits = splat_to_texture(a_fg, small_mask.to(device), fg_tex,
                                     tuple(fg_tex.texture.shape[-2:]))
    start_alpha = (acc[0] / hits.clamp_min(1e-6)).clamp(ALPHA_CLAMP, 1 - ALPHA_CLAMP)
    alpha_logits = torch.nn.Parameter(torch.logit(start_alpha).reshape(
        1, 1, *fg_tex.texture.shape[-2:]))
    small_d, q_d, mask_d = small.to(device), q.to(device), small_mask.to(device)
    pix_scale = long_side / 2.0
    params = [{"params": [alpha_logits], "lr": config.alpha_lr}]
    for mapping, texture in zip(mappings, textures, strict=True):
        params += [{"params": texture.parameters(), "lr": config.texture_lr},
                   {"params": list(mapping.parameters()), "lr": config.mapping_lr}]
    optim = Adam(params)
    frames_idx = all_frames.to(device)
    q_flat = q_d.reshape(-1, 2)
    targets = PixelTable(small_d.flatten(2))  # [T,3,h*w]
    target_masks = PixelTable(mask_d.flatten(2))  # [T,1,h*w]
    if num > 1:
        flow_t = torch.stack(flows).to(device)
        successors = PixelTable((q_d + flow_t * (2.0 / long_side)).reshape(num - 1, -1, 2), dim=1)
        flow_masks = PixelTable(torch.stack(occ).to(device).reshape(num - 1, -1))
        src_idx = torch.arange(num - 1, device=device)
    gen = torch.Generator().manual_seed(config.seed)
    per_frame = h * w if config.layered_pixels_per_frame <= 0 \
        else min(h * w, config.layered_pixels_per_frame)
    t_loop = time.perf_counter()
    for it in range(iterations):
        pix = torch.randperm(h * w, generator=gen)[:per_frame].to(device)
        optim.zero_grad()
        coords = [m(frames_idx, q_flat[pix].expand(num, -1, -1)) for m in mappings]  # [T,P,2]
        colours = [tex(a.unsqueeze(1))[:, :, 0] for tex, a in zip(textures, coords, strict=True)]
        alpha = sample_alpha(alpha_logits, fg_tex, coords[0].unsqueeze(1))[:, :, 0]  # [T,1,P]
        recon = alpha * colours[0] + (1 - alpha) * colours[1]
        colour = charbonnier(recon - targets.take(pix)).mean()
        mask_term = charbonnier(alpha - target_masks.take(pix)).mean()
        loss = colour + mask_weight_at(config, it, iterations) * mask_term
        flow_term = torch.zeros((), device=device)
        if num > 1:
            weights = (alpha[:-1, 0], 1 - alpha[:-1, 0])
            nxt, reliable = successors.take(pix), flow_masks.take(pix)
            for mapping, a, wgt in zip(mappings, coords, weights, strict=True):
                d = (a[:-1] - mapping(src_idx + 1, nxt)) * pix_scale
                flow_term = flow_term + (charbonnier(d, 0.05).sum(-1) * reliable
                                         * wgt.detach()).mean()
            loss = loss + config.flow_weight * flow_term
        smooth = sum(m.smoothness() for m in mappings) * pix_scale**2
        loss = loss + config.smooth_weight * 1e-3 * smooth
        loss.backward()
        optim.step()
        if it % 5 == 4 or it == iterations - 1:
            tick(5 if it % 5 == 4 else (it % 5) + 1)
    losses = {"colour": float(colour.detach()), "flow": float(flow_term.detach()),
              "mask": float(mask_term.detach()),
              "smooth": float(smooth.detach())}
    t_fit = time.perf_counter() - t0
    seconds_per_iteration = (time.perf_counter() - t_loop) / max(iterations, 1)

    mappings = [m.cpu().eval() for m in mappings]
    alpha_logits = alpha_logits.detach().cpu()
    textures_hi, coverage = _full_resolution_textures(
        frames, mappings, [t.cpu() for t in textures], alpha_logits, config, tick)
    # The foreground preview shows the object only: texels seen AND inside alpha.
    coverage[0] = coverage[0] * torch.sigmoid(F.interpolate(
        alpha_logits, size=coverage[0].shape[-2:], mode="bilinear", align_corners=False))
    model = LayeredAtlasModel(mappings, textures_hi, alpha_logits, coverage)
    stats = {
        "preset": "fast", "layers": 2, "iterations": iterations, "fit_size": (h, w),
        "texture_size": [tuple(t.texture.shape[-2:]) for t in textures_hi],
        "foreground_share": float(small_mask.mean()), "seconds_flow": t_flow,
        "seconds_fit": t_fit, "seconds_per_iteration": seconds_per_iteration,
        "seconds_total": time.perf_counter() - t0, **losses,
    }
    return model, stats


@torch.no_grad()
def _full_resolution_textures(frames, mappings, textures_lo, alpha_logits, config, tick,
                              chunk_pixels: int = 1 << 21):
    """Both textures at the density of the full-resolution frames (capped by atlas_resolution),
    each pixel splatted into each layer with that layer's alpha as its weight.
    Returns ([fg, bg] AtlasTexture, [fg, bg] coverage [1,1,Ht,Wt])."""
    num, full_h, full_w, _ = frames.shape
    shapes, per_units = [], []
    for tex in textures_lo:
        u0, v0, u1, v1 = tex.bounds
        per_unit = min(max(full_h, full_w) / 2.0, config.atlas_resolution / max(u1 - u0, v1 - v0))
        per_units.append(per_unit)
        shapes.append(texel_grid_size(tex.bounds, per_unit))
    reduce = min(1.0, max(per_units) / (max(full_h, full_w) / 2.0))
    build_h, build_w = max(1, round(full_h * reduce)), max(1, round(full_w * reduce))
    q = frame_coordinates(build_h, build_w)
    priors = [F.interpolate(t.texture, size=s, mode="bilinear", align_corners=False)
              for t, s in zip(textures_lo, shapes, strict=True)]
    his = [AtlasTexture(p.clone(), t.bounds) for p, t in zip(priors, textures_lo, strict=True)]

    def build(start, stop):
        idx = torch.arange(start, stop)
        img = to_nchw(frames[start:stop])
        if (build_h, build_w) != (full_h, full_w):
            img = F.interpolate(img, size=(build_h, build_w), mode="area")
        coords = [m(idx, q.expand(len(idx), -1, -1, -1)) for m in mappings]
        alpha = sample_alpha(alpha_logits, textures_lo[0], coords[0])
        taps = [splat_taps(a, hi, shape) for a, hi, shape in zip(coords, his, shapes, strict=True)]
        return idx, img, (alpha, 1 - alpha), coords, taps

    chunks = ChunkCache(num, max(1, chunk_pixels // (full_h * full_w)), build)
    prior_w = 0.05
    # Each layer's splat of [colour * share, share]: the share's sum is the layer's weight.
    sums = [None, None]
    for idx, img, shares, _, taps in chunks:
        for k in range(2):
            sums[k] = splat_with_taps(taps[k], torch.cat((img * shares[k], shares[k]), 1),
                                      shapes[k], sums[k])
        tick(len(idx))
    weights = []
    for k in range(2):
        weights.append(sums[k][3])
        tex = (sums[k][:3] + prior_w * priors[k].reshape(3, -1)) / (sums[k][3] + prior_w)
        his[k].texture.data = tex.reshape(1, 3, *shapes[k])
    # Back-projection of the composite's residual, shared out between the layers by alpha.
    for _ in range(config.backprojection_steps):
        acc = [None, None]
        for idx, img, shares, coords, taps in chunks:
            fg, bg = his[0](coords[0]), his[1](coords[1])
            residual = img - (shares[0] * fg + shares[1] * bg)
            for k in range(2):
                acc[k] = splat_with_taps(taps[k], residual * shares[k], shapes[k], acc[k])
            tick(len(idx))
        for k in range(2):
            # Texels a layer shows only faintly (behind a soft alpha) would take the whole
            # residual of the composite: damp them, or they run to black/white.
            step = acc[k] / (weights[k] + BACKPROJECTION_DAMPING)
            his[k].texture.data = (his[k].texture.reshape(3, -1) + step).reshape(1, 3, *shapes[k])
    for hi in his:
        hi.texture.data.clamp_(0, 1)
    # A texel fully seen once at the frames' density has weight ~1.
    coverage = [(wt / 0.5).clamp(0, 1).reshape(1, 1, *shape)
                for wt, shape in zip(weights, shapes, strict=True)]
    return his, coverage
