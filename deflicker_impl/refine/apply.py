"""The LocalFlickerRefine stage: filtered frames -> locally steadier frames.

`apply_local_refine(frames, config)` runs the trained LocalRefineNet over a clip one frame after
the other. Memory is bounded: between steps only the previous filtered frame, the previous output
and the ConvLSTM state live on the device; the result is assembled on the CPU. The first frame
is refined with itself as "previous". Very large frames are split into overlapping tiles, each
with its own recurrent state, blended with linear ramps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atlas.confidence import coarse_frames
from ..clip import check_clip
from ..device import resolve_device
from ..errors import DeflickerInputError
from ..flicker_field import (
    FlickerFieldConfig,
    check_flicker_window,
    check_strength,
    drop_persistent_change,
)
from ..flow import flow_with_occlusion
from ..progress import ProgressFn
from ..tiling import chunk_as_batch, tile_mask, tile_overlap, tile_windows
from ..timing import phase
from ..weights import check_network_output, load_network, resolve_weights_path
from .global_bound import bound_global_change
from .net import LocalRefineNet, RefineNetConfig
from .smooth_change import keep_smooth_change

WEIGHTS_KIND = "local_refine"
DEFAULT_WEIGHTS_NAME = "local_refine.safetensors"

@dataclass
class RefineConfig:
    """How to run the local refinement."""

    weights_path: str | os.PathLike | None = None  # None: the shipped weights/local_refine...
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    tile_size: int = 2048  # frames with a side above this go in tiles (each its own state)
    tile_overlap: int = 64  # pixels shared by neighbouring tiles, blended linearly
    # Motion between consecutive frames (for nets with motion="flow"): DIS on the filtered
    # frames, measured at most at this long side (the flow is smooth; larger is slower only).
    flow_long_side: int = 640
    flow_preset: str = "medium"  # DIS preset: "ultrafast" | "fast" | "medium"
    # The net's change of each frame's global colour is kept only where it moves the frame
    # towards the filtered clip's steady global colour, a temporal median over this many frames
    # (refine/global_bound.py); 0 or 1: left as the net made it.
    global_window: int = 5
    # The net's change of colour that lasts longer than this many frames is taken out again
    # (flicker_field.drop_persistent_change), so it never lags behind the scene's own light
    # (a fade, a lamp) nor drifts; 0: left as the net made it (the default; faithful colour
    # sets it to the filter's flicker_window).
    flicker_window: int = 0
    # The net's change of each frame is kept only as a smooth per-channel gain field with this
    # many nodes along the long side (refine/smooth_change.py): the smooth flicker the filter
    # left is removed, per-pixel colour carried along a wrong flow (ghosts) is not. 0: per
    # pixel, as the net made it (the default; faithful colour sets it).
    smooth_nodes: int = 0
    strength: float = 1.0  # 0: the input unchanged, 1: the net's full change

    def __post_init__(self) -> None:
        check_strength(self.strength)
        check_flicker_window(self.flicker_window)
        if isinstance(self.smooth_nodes, bool) or not isinstance(self.smooth_nodes, int) \
                or self.smooth_nodes < 0 or self.smooth_nodes == 1:
            raise DeflickerInputError(
                f"smooth_nodes must be 0 (the net's change per pixel) or a whole number of "
                f"nodes >= 2, got {self.smooth_nodes!r}.")

    def resolved_weights_path(self) -> Path:
        return resolve_weights_path(self.weights_path, DEFAULT_WEIGHTS_NAME)


def load_local_refine(config: RefineConfig | None = None) -> LocalRefineNet:
    """The network described by the weights file, in eval mode on the chosen device (cached per
    file, modification time, size and device)."""
    cfg = config or RefineConfig()
    path = cfg.resolved_weights_path().expanduser().resolve()
    device = resolve_device(cfg.device)
    return load_network(path, WEIGHTS_KIND, LocalRefineNet, RefineNetConfig.from_json,
                        str(device), label="Local refinement",
                        shipped_name=DEFAULT_WEIGHTS_NAME, train_stage="refine")


def apply_local_refine(
    frames: torch.Tensor,
    config: RefineConfig | None = None,
    on_progress: ProgressFn | None = None,
    net: LocalRefineNet | None = None,
    shot_starts: list[int] | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Refine a filtered clip [T,H,W,C] (C in 1/3/4, float 0..1 or uint8) -> [T,H,W,3] float32
    on the CPU, same size as the input.

    `net` overrides the weights in `config` (tests, training). `on_progress(done, total)` is
    called after every frame (and tile), counting frames; it may raise to cancel.
    `shot_starts` (first frames of the shots): the recurrent state restarts there, as at the
    first frame, so nothing of one shot leaks into the next. `out` (float32 [T,H,W,3], may be
    `frames` itself: each frame is read before it is overwritten) receives the result instead
    of a new tensor, which saves a full-length copy on long clips.
    """
    cfg = config or RefineConfig()
    check_clip(frames)
    if net is None:
        net = load_local_refine(cfg)
    t, h, w = frames.shape[:3]
    if out is not None and (out.shape != (t, h, w, 3) or out.dtype != torch.float32):
        raise DeflickerInputError(f"out must be float32 {(t, h, w, 3)}, got {tuple(out.shape)} "
                                  f"{out.dtype}.")
    result = out if out is not None else torch.empty((t, h, w, 3), dtype=torch.float32)
    restarts = set(shot_starts or [])
    stepper = RefineStepper(net, cfg, (h, w))
    if cfg.strength == 0.0:  # the input unchanged, exactly
        for i in range(t):
            result[i] = stepper.step(frames, i, False, lambda: None)[0]
        return result
    input_means = torch.empty(t, 3, dtype=torch.float64)
    input_coarse = []
    for i in range(t):
        refined, input_means[i], coarse = stepper.step(
            frames, i, i in restarts,
            lambda i=i: on_progress(i, t) if on_progress else None)
        result[i] = refined
        if coarse is not None:
            input_coarse.append(coarse)
        if on_progress is not None:
            on_progress(i + 1, t)
    with phase("global bound"):
        bound_global_change(result, input_means, cfg.global_window, shot_starts=sorted(restarts))
    if cfg.flicker_window > 0:
        drop_persistent_change(result, torch.cat(input_coarse), cfg.flicker_window,
                               sorted(restarts))
    return result


class RefineStepper:
    """The refinement of one frame after the other: the network's recurrent state, the
    previous filtered frame and the previous output, carried from step to step (so a clip may
    arrive frame by frame, as in a stream)."""

    def __init__(self, net: LocalRefineNet, config: RefineConfig, frame_hw: tuple[int, int]):
        self.net, self.config = net, config
        self.device = next(net.parameters()).device
        self.tiles = tile_windows(*frame_hw, config.tile_size, config.tile_overlap)
        self.overlap = tile_overlap(config.tile_size, config.tile_overlap)
        self.states: dict[tuple[int, int], object] = {}
        self.prev_filtered = self.prev_output = None

    def step(self, clip: torch.Tensor, index: int, restart: bool,
             on_tile: Callable[[], None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Refine the next frame, clip[index] of [T,H,W,C] (`restart`: a new shot starts
        here) -> (the refined
        frame [H,W,3] float32 on the CPU, the input's per-channel means [3] float64, the input
        at the fit size [1,3,h,w] when the config's flicker_window needs it, else None)."""
        cfg, net = self.config, self.net
        if cfg.strength == 0.0:  # the input unchanged, exactly (and no recurrent state)
            current = chunk_as_batch(clip, index, index + 1, "frames", torch.device("cpu"),
                                      torch.float32)
            return current[0].permute(1, 2, 0), current[0].double().mean(dim=(1, 2)), None
        with torch.inference_mode():
            current = chunk_as_batch(clip, index, index + 1, "frames", self.device,
                                      torch.float32)
            means = current[0].double().mean(dim=(1, 2)).cpu()
            coarse = None
            if cfg.flicker_window > 0:
                coarse = coarse_frames(current.permute(0, 2, 3, 1).cpu(), 0, 1,
                                       FlickerFieldConfig().fit_long_side)
            if restart:
                self.states.clear()  # a new shot: start as at the first frame
                self.prev_filtered = None
            if self.prev_filtered is None:
                self.prev_filtered = self.prev_output = current
                flow = None
            else:
                with phase("flow"):
                    flow = _frame_flow(net, current, self.prev_filtered, cfg)
            with phase("network"):
                refined = _refine_tiled(net, current, self.prev_filtered, self.prev_output, flow,
                                        self.states, self.tiles, self.overlap, on_tile)
            check_network_output(refined, net, "The local refinement")
            if cfg.smooth_nodes:
                refined = keep_smooth_change(current, refined, cfg.smooth_nodes)
            if cfg.strength != 1.0:
                refined = current + cfg.strength * (refined - current)
            self.prev_filtered, self.prev_output = current, refined
            return refined[0].permute(1, 2, 0).to("cpu", torch.float32), means, coarse


def _frame_flow(net, current, previous, cfg: RefineConfig):
    """(DIS flow [1,H,W,2] from the current to the previous filtered frame ([1,3,H,W] each),
    its forward-backward validity [1,H,W]), or None when the net does not use motion."""
    if net.config.motion != "flow":
        return None
    h, w = current.shape[-2:]
    scale = min(1.0, cfg.flow_long_side / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    pair = torch.cat([current, previous]).float()
    if size != (h, w):
        pair = F.interpolate(pair, size=size, mode="area")
    pair = pair.permute(0, 2, 3, 1).cpu()
    # Normalised luma: flicker the refinement is there to remove must not read as motion.
    flow, valid = flow_with_occlusion(pair[0], pair[1], preset=cfg.flow_preset, normalise=True)
    # The check also refuses points that land a fraction of a pixel outside the frame; the
    # border-replicating warp is right there, and refusing them would gate off every border.
    valid = torch.maximum(valid, (flow.norm(dim=-1) < 1.0).float())
    if size != (h, w):
        flow = F.interpolate(flow.permute(2, 0, 1)[None], size=(h, w), mode="bilinear",
                             align_corners=False)[0].permute(1, 2, 0)
        flow = flow * torch.tensor([w / size[1], h / size[0]])
        valid = F.interpolate(valid[None, None], size=(h, w), mode="nearest")[0, 0]
    return (flow[None].to(current.device, current.dtype),
            valid[None].to(current.device, current.dtype))


def _refine_tiled(net, current, prev_filtered, prev_output, flow, states, tiles, overlap,
                  on_tile):
    """One step of the net over [1,3,H,W] inputs, tile by tile; updates `states` in place."""
    flow, valid = flow if flow is not None else (None, None)
    if len(tiles) == 1:
        out, states[(0, 0)] = net(current, prev_filtered, prev_output, states.get((0, 0)),
                                  flow=flow, valid=valid)
        return out
    h, w = current.shape[-2:]
    out = torch.zeros_like(current)
    weight = torch.zeros_like(current[:, :1])
    for window in tiles:
        y0, y1, x0, x1 = window
        key = (y0, x0)
        sl = (..., slice(y0, y1), slice(x0, x1))
        piece, states[key] = net(current[sl], prev_filtered[sl], prev_output[sl], states.get(key),
                                 flow=None if flow is None else flow[:, y0:y1, x0:x1],
                                 valid=None if valid is None else valid[:, y0:y1, x0:x1])
        mask = tile_mask(window, overlap, h, w, current)
        out[sl] += piece * mask
        weight[sl] += mask
        on_tile()
    return out / weight
