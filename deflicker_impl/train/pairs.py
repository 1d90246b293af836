"""Training pairs for the neural filter, synthesised from clean still images.

For a clean batch G [N,3,H,W] in 0..1:

* the *frame input* plays a flickering frame: G with colour and brightness distortions only
  (tone curve, per-channel gamma, colour mixing and saturation, global and smooth local per-channel
  gains, offsets). Every edge of G is still there, at the same place.
* the *atlas input* plays a flawed atlas frame: G with the true colours but damaged structure
  (smooth warps, local misalignment, ghosting/double images, blur, loss of resolution, smeared
  texture, small patches of wrong content) and a small residual colour error, because a real
  atlas is never exactly right either.
* the target is G itself.

Everything is batched and drawn from one `torch.Generator` on the tensors' device, so a pair is a
pure function of (images, generator state): the same seed gives the same pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)

# What an atlas frame shows where its mapping fails, with the true colours of somewhere else:
WRONG_CONTENT_KINDS = {
    "shifted": "a shifted part of the same image (a mapping that slid)",
    "other": "a patch of another image (content that is not in this frame)",
    "smeared": "a smeared fill that has lost the object",
    "mirrored": "the mirrored view (a character that turned round)",
    "blend": "a blend of this view with another image or the mirrored view (a ghost of views)",
    "hole": "a flat fill (the atlas holds nothing there)",
}


@dataclass(frozen=True)
class ColourDistortionConfig:
    """Spreads of the frame input's colour distortions, at full strength. Each sample draws a
    strength in [min_strength, 1] that scales all of them; `identity_prob` of the samples keep
    their colours, so the net also learns to leave a frame that already matches alone."""

    identity_prob: float = 0.15
    min_strength: float = 0.2
    gain_sigma: float = 0.3  # log of the brightness gain shared by the channels
    channel_gain_sigma: float = 0.12  # log of each channel's own gain (white balance)
    gamma_sigma: float = 0.25  # log of per-channel gamma (half shared, half per channel)
    offset_sigma: float = 0.04  # additive per-channel offset
    local_sigma: float = 0.3  # log of the smooth local gain field
    curve_prob: float = 0.5  # chance of a random monotone tone curve
    curve_sigma: float = 0.6  # spread of the curve's log-slopes
    curve_knots: int = 8
    saturation_sigma: float = 0.3  # log of the saturation factor
    mix_sigma: float = 0.06  # off-diagonal colour mixing (hue shifts)
    noise_sigma: float = 0.01  # sensor-like noise, drawn up to this std


@dataclass(frozen=True)
class StructureDistortionConfig:
    """Structural damage of the atlas input. Distances are in pixels of the training crop."""

    warp_px: float = 4.0  # smooth, large-scale warp amplitude (up to)
    fine_warp_px: float = 1.5  # smaller-scale wobble (up to)
    tear_prob: float = 0.3  # blockwise misalignment, as where atlas layers meet
    tear_px: float = 3.0
    ghost_prob: float = 0.4  # double image: blend with a shifted copy
    ghost_px: float = 8.0
    blur_prob: float = 0.7
    blur_sigma: float = 2.0  # gaussian sigma, drawn up to this
    lowres_prob: float = 0.6  # downscale then upscale by one of `lowres_factors`
    lowres_factors: tuple[int, ...] = (2, 3, 4, 6)
    smear_prob: float = 0.3  # texture smeared to its local mean inside blobs
    # Where the atlas mapping fails (moving objects, turning characters), it shows other content,
    # of these kinds (WRONG_CONTENT_KINDS), in blobs covering up to `wrong_content_area`.
    wrong_content_kinds: tuple[str, ...] = ("shifted", "other", "smeared", "mirrored", "blend",
                                            "hole")
    wrong_content_prob: float = 0.5
    wrong_content_area: float = 0.3
    wrong_content_px: float = 32.0
    colour_error_sigma: float = 0.03  # residual colour error of the atlas (log gain, smooth)
    offset_error_sigma: float = 0.01


@dataclass(frozen=True)
class TrainingPair:
    frame: torch.Tensor  # [N,3,H,W] colour-distorted
    atlas: torch.Tensor  # [N,3,H,W] structure-distorted
    target: torch.Tensor  # [N,3,H,W] clean


def make_training_pair(
    clean: torch.Tensor,
    generator: torch.Generator,
    colour: ColourDistortionConfig | None = None,
    structure: StructureDistortionConfig | None = None,
) -> TrainingPair:
    """Clean images [N,3,H,W] in 0..1 -> (frame input, atlas input, target)."""
    frame = distort_colour(clean, generator, colour)
    atlas = distort_structure(clean, generator, structure)
    return TrainingPair(frame=frame, atlas=atlas, target=clean)


# --- random helpers -----------------------------------------------------------------------------


def _uniform(shape: tuple[int, ...], gen: torch.Generator, low=0.0, high=1.0) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=gen.device) * (high - low) + low


def _normal(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=gen.device)


def _chance(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """[n] float mask, 1 with probability p."""
    return (_uniform((n,), gen) < p).float()


def smooth_field(n: int, c: int, h: int, w: int, cells: int, gen: torch.Generator) -> torch.Tensor:
    """[n,c,h,w] smooth random field, about unit std, varying on a (cells x cells) scale."""
    coarse = _normal((n, c, cells + 1, cells + 1), gen)
    # Bicubic to a quarter of the size, then bilinear: as smooth to the eye, far cheaper.
    mid = (max(cells + 1, h // 4), max(cells + 1, w // 4))
    field = F.interpolate(coarse, size=mid, mode="bicubic", align_corners=True)
    return F.interpolate(field, size=(h, w), mode="bilinear", align_corners=True)


def blob_mask(
    n: int, h: int, w: int, gen: torch.Generator, area: float | torch.Tensor
) -> torch.Tensor:
    """[n,1,h,w] soft mask of random blobs covering roughly `area` (scalar or [n]) of the image."""
    field = smooth_field(n, 1, h, w, 4, gen)
    area = torch.as_tensor(area, dtype=field.dtype, device=field.device).clamp(1e-3, 1 - 1e-3)
    threshold = math.sqrt(2.0) * torch.special.erfinv(1.0 - 2.0 * area)
    return torch.sigmoid((field - threshold.reshape(-1, 1, 1, 1)) * 10.0)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


# --- colour: the frame input ----------------------------------------------------------------------


def distort_colour(
    clean: torch.Tensor, gen: torch.Generator, config: ColourDistortionConfig | None = None
) -> torch.Tensor:
    """Colour/brightness distortion of [N,3,H,W] in 0..1; the structure is untouched."""
    cfg = config or ColourDistortionConfig()
    n, _, h, w = clean.shape
    keep = _chance(n, cfg.identity_prob, gen)
    s = _uniform((n,), gen, cfg.min_strength, 1.0) * (1.0 - keep)  # 0 for identity samples

    x = _tone_curve(clean, gen, cfg, s)
    log_gamma = (0.7 * _normal((n, 1), gen) + 0.7 * _normal((n, 3), gen)) * cfg.gamma_sigma
    x = x.clamp(0.0, 1.0).pow((log_gamma * s[:, None]).exp()[..., None, None])
    x = _colour_mix(x, gen, cfg, s)

    log_gain = _normal((n, 1), gen) * cfg.gain_sigma + _normal((n, 3), gen) * cfg.channel_gain_sigma
    fields = smooth_field(n, 1, h, w, 2, gen) + 0.5 * smooth_field(n, 3, h, w, 4, gen)
    local = fields * _uniform((n, 1, 1, 1), gen) * cfg.local_sigma
    gain = (log_gain[..., None, None] + local) * _per_sample(s)
    offset = _normal((n, 3), gen)[..., None, None] * cfg.offset_sigma * _per_sample(s)
    x = x * gain.exp() + offset

    noise = _normal(tuple(x.shape), gen) * _uniform((n, 1, 1, 1), gen) * cfg.noise_sigma
    x = (x + noise).clamp(0.0, 1.0)
    return torch.where(_per_sample(keep) > 0, clean, x)  # identity samples: exactly clean


def _tone_curve(
    x: torch.Tensor, gen: torch.Generator, cfg: ColourDistortionConfig, s: torch.Tensor
) -> torch.Tensor:
    """A random monotone piecewise-linear curve from 0 to 1 (shared or per channel)."""
    n = x.shape[0]
    k = cfg.curve_knots
    shared = _chance(n, 0.5, gen)[:, None, None]
    log_slopes = _normal((n, 1, k), gen) * shared + _normal((n, 3, k), gen) * (1 - shared)
    amount = _chance(n, cfg.curve_prob, gen) * s
    slopes = (log_slopes * cfg.curve_sigma * amount[:, None, None]).exp()
    knots = torch.cat([torch.zeros_like(slopes[..., :1]), slopes.cumsum(-1)], dim=-1)
    knots = knots / knots[..., -1:]  # [n,3,k+1], 0 .. 1, increasing

    pos = x.clamp(0.0, 1.0).flatten(2) * k  # [n,3,H*W]
    left = pos.floor().clamp(max=k - 1)
    frac = pos - left
    left = left.long()
    y0 = torch.gather(knots, 2, left)
    y1 = torch.gather(knots, 2, left + 1)
    return (y0 + frac * (y1 - y0)).view_as(x)


def _colour_mix(
    x: torch.Tensor, gen: torch.Generator, cfg: ColourDistortionConfig, s: torch.Tensor
) -> torch.Tensor:
    """Saturation change around the luma plus a small 3x3 colour mixing (hue/white balance)."""
    n = x.shape[0]
    luma = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    y = (x * luma).sum(1, keepdim=True)
    saturation = (_normal((n,), gen) * cfg.saturation_sigma * s).exp()
    x = y + (x - y) * _per_sample(saturation)
    off_diagonal = _normal((n, 3, 3), gen) * cfg.mix_sigma * s[:, None, None]
    off_diagonal = off_diagonal * (1 - torch.eye(3, device=x.device))
    mix = torch.eye(3, device=x.device) + off_diagonal
    mix = mix / mix.sum(-1, keepdim=True)  # rows sum to 1: grey stays grey
    return torch.einsum("nij,njhw->nihw", mix, x)


# --- structure: the atlas input ---------------------------------------------------------------


def distort_structure(
    clean: torch.Tensor, gen: torch.Generator, config: StructureDistortionConfig | None = None
) -> torch.Tensor:
    """Structural damage of [N,3,H,W] in 0..1 that keeps the colours (up to a small error)."""
    cfg = config or StructureDistortionConfig()
    n, _, h, w = clean.shape

    flow = _random_flow(n, h, w, gen, cfg)
    x = warp(clean, flow)

    ghost_alpha = _chance(n, cfg.ghost_prob, gen) * _uniform((n,), gen, 0.15, 0.5)
    ghost_shift = _normal((n, 2, 1, 1), gen) * (cfg.ghost_px / 2)
    ghost = warp(clean, flow + ghost_shift)
    x = torch.lerp(x, ghost, _per_sample(ghost_alpha))

    x = _wrong_content(x, clean, flow, gen, cfg)

    sigma = _chance(n, cfg.blur_prob, gen) * _uniform((n,), gen, 0.3, cfg.blur_sigma)
    x = gaussian_blur(x, sigma, radius=math.ceil(3 * cfg.blur_sigma))

    factor_index = torch.randint(
        len(cfg.lowres_factors), (n,), generator=gen, device=gen.device
    )
    use_lowres = _chance(n, cfg.lowres_prob, gen).bool()
    x = _lose_resolution(x, factor_index, use_lowres, cfg.lowres_factors)

    smear_mask = blob_mask(n, h, w, gen, area=0.25) * _per_sample(_chance(n, cfg.smear_prob, gen))
    x = torch.lerp(x, _box_blur(x, 4), smear_mask)

    colour_error = smooth_field(n, 3, h, w, 2, gen) * cfg.colour_error_sigma
    offset_error = _normal((n, 3, 1, 1), gen) * cfg.offset_error_sigma
    x = x * colour_error.exp() + offset_error
    return x.clamp(0.0, 1.0)


def _wrong_content(
    x: torch.Tensor,
    clean: torch.Tensor,
    flow: torch.Tensor,
    gen: torch.Generator,
    cfg: StructureDistortionConfig,
) -> torch.Tensor:
    """Replace random blobs by content that does not belong there (true colours elsewhere),
    of one of `cfg.wrong_content_kinds` per sample (see WRONG_CONTENT_KINDS)."""
    n, _, h, w = x.shape
    other = clean.roll(1, dims=0)  # another image of the batch
    mirrored = warp(clean.flip(-1), flow) \
        if {"mirrored", "blend"} & set(cfg.wrong_content_kinds) else None
    sources = []
    for kind in cfg.wrong_content_kinds:
        if kind == "shifted":
            sources.append(warp(clean, flow + _normal((n, 2, 1, 1), gen) * cfg.wrong_content_px))
        elif kind == "other":
            sources.append(other)
        elif kind == "smeared":
            sources.append(_box_blur(_box_blur(x, 6), 6))
        elif kind == "mirrored":
            sources.append(mirrored)
        elif kind == "blend":
            view = torch.where(_per_sample(_chance(n, 0.5, gen)) > 0, other, mirrored)
            sources.append(torch.lerp(x, view, _uniform((n, 1, 1, 1), gen, 0.3, 0.7)))
        elif kind == "hole":
            sources.append(_uniform((n, 1, 1, 1), gen).expand_as(x))
        else:
            raise ValueError(f"unknown wrong-content kind {kind!r}; known: {WRONG_CONTENT_KINDS}")
    choice = torch.randint(len(sources), (n,), generator=gen, device=gen.device)
    source = torch.stack(sources)[choice, torch.arange(n, device=x.device)]
    area = _uniform((n,), gen, 0.02, cfg.wrong_content_area)
    mask = blob_mask(n, h, w, gen, area) * _per_sample(_chance(n, cfg.wrong_content_prob, gen))
    return torch.lerp(x, source, mask)


def _random_flow(
    n: int, h: int, w: int, gen: torch.Generator, cfg: StructureDistortionConfig
) -> torch.Tensor:
    """[n,2,h,w] displacement in pixels (x, y): smooth warp + wobble + optional block tears."""
    coarse = smooth_field(n, 2, h, w, 2, gen) * _uniform((n, 1, 1, 1), gen, 0, cfg.warp_px)
    fine = smooth_field(n, 2, h, w, 6, gen) * _uniform((n, 1, 1, 1), gen, 0, cfg.fine_warp_px)
    blocks = _normal((n, 2, 4, 4), gen) * (cfg.tear_px / 2)
    blocks = F.interpolate(blocks, size=(h, w), mode="nearest")
    tears = blocks * _per_sample(_chance(n, cfg.tear_prob, gen))
    return coarse + fine + tears


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample image [N,C,H,W] at pixel + flow [N,2,H,W] (x, y in pixels), reflecting at borders."""
    h, w = image.shape[-2:]
    ys = torch.arange(h, device=image.device, dtype=image.dtype)
    xs = torch.arange(w, device=image.device, dtype=image.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    px = gx + flow[:, 0]
    py = gy + flow[:, 1]
    # align_corners=False: pixel centres at (i + 0.5) / size * 2 - 1
    grid = torch.stack([(px + 0.5) / w * 2 - 1, (py + 0.5) / h * 2 - 1], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur each sample of [N,C,H,W] with its own gaussian sigma [N] (0 = untouched)."""
    n, c, h, w = x.shape
    if radius < 1:
        return x
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    kernel = kernel / kernel.sum(-1, keepdim=True)  # [n, k]
    kernel = kernel.repeat_interleave(c, dim=0)  # [n*c, k]
    flat = x.reshape(1, n * c, h, w)
    mode = "reflect" if radius < min(h, w) else "replicate"
    flat = F.pad(flat, (radius, radius, 0, 0), mode=mode)
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.pad(flat, (0, 0, radius, radius), mode=mode)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.view(n, c, h, w)


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    size = 2 * radius + 1
    mode = "reflect" if radius < min(x.shape[-2:]) else "replicate"
    padded = F.pad(x, (radius, radius, radius, radius), mode=mode)
    rows = F.avg_pool2d(padded, (1, size), stride=1)  # separable: two 1-D means
    return F.avg_pool2d(rows, (size, 1), stride=1)


def _lose_resolution(
    x: torch.Tensor, factor_index: torch.Tensor, use: torch.Tensor, factors: tuple[int, ...]
) -> torch.Tensor:
    """Downscale (area) and upscale (bilinear) the selected samples by their factor."""
    h, w = x.shape[-2:]
    out = x.clone()
    for i, factor in enumerate(factors):
        selected = (use & (factor_index == i)).nonzero().flatten()
        if selected.numel() == 0:
            continue
        small_size = (max(1, round(h / factor)), max(1, round(w / factor)))
        small = F.interpolate(x[selected], size=small_size, mode="area")
        out[selected] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out
