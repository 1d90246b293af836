"""The NeuralFilter stage: frames + atlas frames -> filtered frames.

`apply_neural_filter(frames, atlas_frames, config)` runs the trained NeuralFilterNet over a clip
chunk by chunk (bounded memory: only one chunk lives on the device; the result is assembled on
the CPU), and splits very large frames into overlapping tiles that are blended with linear ramps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atlas.confidence import AtlasConfidence, ConfidenceConfig, atlas_confidence, coarse_frames
from ..clip import check_clip
from ..device import resolve_device
from ..errors import DeflickerInputError
from ..flicker_field import (
    FlickerField,
    FlickerFieldConfig,
    apply_flicker_correction,
    check_flicker_window,
    check_strength,
    keep_scene_light,
    measure_flicker_field,
    shrink_small_corrections,
)
from ..progress import ProgressFn
from ..tiling import chunk_as_batch, tile_mask, tile_overlap, tile_windows
from ..timing import phase
from ..weights import check_network_output, load_network, resolve_weights_path
from .global_colour import stabilise_global_colour
from .net import FilterNetConfig, NeuralFilterNet

WEIGHTS_KIND = "neural_filter"
DEFAULT_WEIGHTS_NAME = "neural_filter.safetensors"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

@dataclass
class FilterConfig:
    """How to run the neural filter."""

    weights_path: str | os.PathLike | None = None  # None: the shipped weights/neural_filter...
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    chunk_size: int | None = None  # frames per chunk; None: as many as fit `chunk_pixels`
    chunk_pixels: int = 1 << 20  # pixel budget of an automatic chunk
    tile_size: int = 2048  # frames with a side above this go in tiles
    tile_overlap: int = 128  # pixels shared by neighbouring tiles, blended linearly
    # Frames over which the output's global colour may drift from the atlas's; faster changes
    # (the filter's own per-frame jitter) are removed. 0 or 1: off.
    global_window: int = 9
    # "float32" | "float16" | "bfloat16". The half types are for GPUs: they change the output
    # very little but run far slower on the CPU, so they are refused there (figures:
    # bench/README.md, "Half precision on the CPU").
    dtype: str = "float32"
    # Faithful colour: the correction is measured where the atlas is right (atlas confidence),
    # applied as a smooth field where it is wrong, and only its fast part is kept (the scene's
    # own light passes); see flicker_field.py. Off by default: on the main benchmark's natural
    # clips and old film it keeps slow flicker as "light" (README, "Faithful colour").
    # False: the filter's output with the global colour pass above.
    faithful: bool = False
    flicker: FlickerFieldConfig = field(default_factory=FlickerFieldConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)

    def __post_init__(self) -> None:
        check_strength(self.flicker.strength)
        check_flicker_window(self.flicker.flicker_window)

    def resolved_weights_path(self) -> Path:
        return resolve_weights_path(self.weights_path, DEFAULT_WEIGHTS_NAME)


def load_neural_filter(config: FilterConfig | None = None) -> NeuralFilterNet:
    """The network described by the weights file, loaded, in eval mode on the chosen device.

    Cached per (file, its modification time and size, device, dtype): nodes call this on every
    run and a re-exported file is picked up.
    """
    cfg = config or FilterConfig()
    path = cfg.resolved_weights_path().expanduser().resolve()
    device = resolve_device(cfg.device)
    dtype = _resolve_dtype(cfg.dtype, device)
    return load_network(path, WEIGHTS_KIND, NeuralFilterNet, FilterNetConfig.from_json,
                        str(device), dtype, label="Neural filter",
                        shipped_name=DEFAULT_WEIGHTS_NAME, train_stage="filter")


def apply_neural_filter(
    frames: torch.Tensor,
    atlas_frames: torch.Tensor,
    config: FilterConfig | None = None,
    on_progress: ProgressFn | None = None,
    net: NeuralFilterNet | None = None,
    shot_starts: list[int] | None = None,
    out: torch.Tensor | None = None,
    confidence: AtlasConfidence | None = None,
) -> torch.Tensor:
    """Filter a clip: frames [T,H,W,3] and atlas frames [T,H,W,3] in 0..1 (either may be
    uint8) -> [T,H,W,3] float32 on the CPU, same size as the input (never resized).

    `net` overrides the weights in `config` (tests, training). `on_progress(done, total)` is
    called after every chunk and tile, counting frames; it may raise to cancel. `shot_starts`
    (first frames of the shots, e.g. ClipAtlas.shot_starts) restart the global colour pass at
    every cut. `out` (float32 [T,H,W,3], may be `frames` itself: every chunk is read before it
    is overwritten) receives the result instead of a new tensor. `confidence` (from
    `atlas_confidence`, computed here when None) says where the atlas frames can be trusted.
    """
    cfg = config or FilterConfig()
    check_clip(frames, "frames")
    check_clip(atlas_frames, "atlas_frames")
    if frames.shape[:3] != atlas_frames.shape[:3]:
        raise DeflickerInputError(
            f"frames {tuple(frames.shape[:3])} and atlas_frames {tuple(atlas_frames.shape[:3])} "
            "differ in frame count or size (T,H,W). The atlas frames must be rendered from the "
            "atlas fitted to these very frames, at their size."
        )
    if net is None:
        net = load_neural_filter(cfg)

    t, h, w = frames.shape[:3]
    chunk = filter_chunk_frames(cfg, (h, w))
    if out is not None and (out.shape != (t, h, w, 3) or out.dtype != torch.float32):
        raise DeflickerInputError(f"out must be float32 {(t, h, w, 3)}, got {tuple(out.shape)} "
                                  f"{out.dtype}.")
    result = out if out is not None else torch.empty((t, h, w, 3), dtype=torch.float32)
    faithful = cfg.faithful and t > 0
    if faithful:
        if confidence is None:
            confidence = atlas_confidence(frames, atlas_frames, cfg.confidence)
        elif confidence.num_frames != t:
            raise DeflickerInputError(
                f"The atlas confidence has {confidence.num_frames} frames but the clip has {t}; "
                "use the confidence computed for these very frames.")
        coarse = []
        # With `out` = `frames`, the frames are overwritten before the second pass reads them,
        # so the raw output then waits in 8 bits (a quarter of a float copy).
        raw = torch.empty((t, h, w, 3), dtype=torch.uint8) if result is frames else result
    for start in range(0, t, chunk):
        stop = min(t, start + chunk)
        filtered = filter_chunk(net, frames, atlas_frames, start, stop, cfg,
                                lambda start=start: on_progress(start, t) if on_progress
                                else None, blend=not faithful)
        if faithful:
            coarse.append(coarse_frames(filtered, 0, stop - start, cfg.flicker.fit_long_side))
            raw[start:stop] = (filtered * 255.0).round_() if raw.dtype == torch.uint8 \
                else filtered
        else:
            result[start:stop] = filtered
        if on_progress is not None:
            on_progress(stop, t)
    if not faithful:
        if cfg.flicker.strength == 0.0:
            return result
        with phase("global colour"):
            return stabilise_global_colour(result, atlas_frames, cfg.global_window,
                                           shot_starts=shot_starts, strength=cfg.flicker.strength)
    return apply_faithful_colour(frames, atlas_frames, raw, torch.cat(coarse), confidence, cfg,
                                 shot_starts, result, chunk)


def apply_faithful_colour(
    frames: torch.Tensor,
    atlas_frames: torch.Tensor,
    filtered: torch.Tensor,
    filtered_coarse: torch.Tensor,
    confidence: AtlasConfidence,
    config: FilterConfig,
    shot_starts: list[int] | None = None,
    out: torch.Tensor | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """Faithful colour from the network's raw output (flicker_field.py): frames, atlas_frames
    [T,H,W,3]; filtered [T,H,W,3] (float32 in 0..1, or uint8), the network's output before any
    colour pass; filtered_coarse [T,3,h,w], it at the field's fit size (coarse_frames of each
    chunk). -> [T,H,W,3] float32 on the CPU (`out` receives it when given; it may be `frames`
    or `filtered` itself). Apart from the network, this is the whole faithful part of the
    stage, so a change to it can be measured on stored network outputs (bench/faithful_variants.py)."""
    flt = config.flicker
    t = frames.shape[0]
    chunk = chunk or filter_chunk_frames(config, tuple(frames.shape[1:3]))
    result = out if out is not None else torch.empty((t, *frames.shape[1:3], 3),
                                                     dtype=torch.float32)
    fitted, measured, offset = measure_flicker_field(
        frames, atlas_frames, filtered_coarse, confidence, flt,
        level_from_atlas=flt.flicker_window == 0)
    kept = keep_scene_light(measured, flt.flicker_window, shot_starts, flt.light_pieces,
                            flt.colour_window_scale)
    if flt.flicker_window > 0:
        # With window 0 the whole correction is wanted (a seam's step is small but real).
        kept = shrink_small_corrections(kept, flt.noise_floor)
    flicker = FlickerField(fitted, measured, kept, offset)  # offset: with window 0 only
    for start in range(0, t, chunk):
        stop = min(t, start + chunk)
        part = chunk_as_batch(filtered, start, stop, "filtered", torch.device("cpu"),
                              torch.float32)
        part = apply_flicker_correction(frames, part, flicker, confidence, flt, start, stop)
        result[start:stop] = part.permute(0, 2, 3, 1)
    return result


def filter_chunk_frames(config: FilterConfig, frame_hw: tuple[int, int]) -> int:
    """Frames the filter runs at a time: `chunk_size`, or as many as fit `chunk_pixels`."""
    chunk = config.chunk_size or max(1, config.chunk_pixels // (frame_hw[0] * frame_hw[1]))
    if chunk < 1:
        raise DeflickerInputError(f"chunk_size must be at least 1, got {config.chunk_size}.")
    return chunk


def filter_chunk(
    net: NeuralFilterNet, frames: torch.Tensor, atlas_frames: torch.Tensor, start: int,
    stop: int, config: FilterConfig, on_tile: Callable[[], None] | None = None,
    blend: bool = True,
) -> torch.Tensor:
    """The net's output for frames [start, stop) of `frames` and `atlas_frames` (as
    apply_neural_filter takes them) -> [n,H,W,3] float32 on the CPU, before the global colour
    pass; `blend`: mixed with the frames by the flicker strength (the plain filter's output)."""
    param = next(net.parameters())
    frame = chunk_as_batch(frames, start, stop, "frames", param.device, param.dtype)
    atlas = chunk_as_batch(atlas_frames, start, stop, "atlas_frames", param.device, param.dtype)
    with torch.inference_mode(), phase("network"):
        filtered = _filter_tiled(net, frame, atlas, config.tile_size, config.tile_overlap,
                                 on_tile or (lambda: None))
    check_network_output(filtered, net, "The neural filter")
    filtered = filtered.permute(0, 2, 3, 1).to("cpu", torch.float32)
    if blend and config.flicker.strength != 1.0:
        original = frame.permute(0, 2, 3, 1).to("cpu", torch.float32)
        filtered = original + config.flicker.strength * (filtered - original)
    return filtered


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise DeflickerInputError(f"Unknown dtype {name!r}; use one of {sorted(DTYPES)}.")
    dtype = DTYPES[name]
    if device.type == "cpu" and dtype != torch.float32:
        raise DeflickerInputError(
            f"{name} is for GPUs: on the CPU it runs 20-45x slower than float32; use float32."
        )
    return dtype


def _filter_tiled(
    net: NeuralFilterNet,
    frame: torch.Tensor,
    atlas: torch.Tensor,
    tile: int,
    overlap: int,
    on_tile: Callable[[], None],
) -> torch.Tensor:
    """Run the net on [N,3,H,W]; frames larger than `tile` go in overlapping tiles."""
    h, w = frame.shape[-2:]
    windows = tile_windows(h, w, tile, overlap)
    if len(windows) == 1:
        return net(frame, atlas)
    overlap = tile_overlap(tile, overlap)
    out = torch.zeros_like(frame)
    weight = torch.zeros_like(frame[:, :1])
    for window in windows:
        y0, y1, x0, x1 = window
        piece = net(frame[..., y0:y1, x0:x1], atlas[..., y0:y1, x0:x1])
        mask = tile_mask(window, overlap, h, w, frame)
        out[..., y0:y1, x0:x1] += piece * mask
        weight[..., y0:y1, x0:x1] += mask
        on_tile()
    return out / weight
