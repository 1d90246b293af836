"""The local refinement network: a light recurrent net that removes the flicker left locally.

Design (in the spirit of Lai et al., ECCV 2018, written from the idea, not from their code).
Inputs per step: the filtered frame O^f_t, the previous filtered frame O^f_{t-1} and the previous
refined output O_{t-1}, each [N,3,H,W] in 0..1 (9 channels together). The net predicts a
correction of O^f_t:

    O_t = O^f_t * exp(g) + b,   (g, b) = R(O^f_t, W(O^f_{t-1}), W(O_{t-1}), W(state))

* Motion (`motion="flow"`, the default): W warps the previous frames and the ConvLSTM state to
  the current frame with the optical flow t -> t-1 (DIS on the filtered frames at run time, the
  clean frames' flow in training). Without it the memory sits where things were, and on a
  panning camera the net pulled colours from the wrong places (coloured blotches on the real
  bedroom clip of the benchmark).
* Encoder: space-to-depth by 2 (no detail averaged away before the first conv), a conv at half
  resolution, a strided conv to 1/4 resolution, then a few residual blocks.
* A ConvLSTM cell at 1/4 resolution carries a memory across frames, so a region whose colour
  pulses can be held to what it was, not only to the previous frame.
* Output (`output="colour_transfer"`, the default): per channel, how much (0..1) of the aligned
  previous output's local colour to take over, at 1/4 resolution: the net's gate times the log
  ratio of the local means of O_{t-1} and O^f_t (zero where the flow is not valid), upsampled
  bilinearly and applied as a gain. Local flicker is a smooth change of colour, so this is all
  the refinement needs, and it cannot blur, sharpen or paint structure: detail comes from
  O^f_t alone. `output="colour_field"` predicts a free per-channel log-gain g and offset b at
  1/4 resolution instead; `output="residual"`, the first shipped design, predicts a free
  full-resolution residual through a half-resolution decoder (it changed clean clips too much).
* The last conv starts at zero, so an untrained net returns O^f_t unchanged ("do no harm").

Any frame size works (1x1 too): inputs are padded to a multiple of the stride (4) and the output
is cropped back; the recurrent state lives at the padded 1/4 resolution.

Size (default config): 140,019 parameters; its speed is measured by bench/net_speed.py
(figures in bench/README.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..flow import warp_with_flow
from ..tiling import pad_to_multiple

State = tuple[torch.Tensor, torch.Tensor]  # (hidden, cell) of the ConvLSTM, [N,C,H/4,W/4] each
OUTPUT_MODES = ("colour_transfer", "colour_field", "residual")
MOTION_MODES = ("flow", "none")


@dataclass(frozen=True)
class RefineNetConfig:
    """Widths of the refinement net: half-resolution, quarter-resolution, ConvLSTM hidden."""

    half_width: int = 16
    quarter_width: int = 32
    hidden_width: int = 32
    residual_blocks: int = 2
    # What the decoder predicts: "colour_transfer" = how much of the aligned previous output's
    # local colour to take over, per channel at 1/4 resolution; "colour_field" = a per-channel
    # gain and offset at 1/4 resolution; both upsampled smoothly and applied to O^f_t (they
    # can change colour, never structure); "residual" = a free full-resolution residual (the
    # first shipped weights).
    output: str = "colour_transfer"
    # "flow": the previous frames and the ConvLSTM state are warped to the current frame with
    # the optical flow given to forward() (DIS at run time), so the memory follows the motion
    # instead of ghosting colours where things were; "none": fed as they are (first weights).
    motion: str = "flow"

    def __post_init__(self) -> None:
        for name in ("half_width", "quarter_width", "hidden_width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.residual_blocks < 0:
            raise ValueError(f"residual_blocks must be >= 0, got {self.residual_blocks}")
        if self.output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {self.output!r}")
        if self.motion not in MOTION_MODES:
            raise ValueError(f"motion must be one of {MOTION_MODES}, got {self.motion!r}")

    stride = 4

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RefineNetConfig:
        values = json.loads(text)
        # Files written before these options existed hold the first design.
        values.setdefault("output", "residual")
        values.setdefault("motion", "none")
        return cls(**values)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell: one 3x3 conv computes the four gates from [input, hidden]."""

    def __init__(self, c_in: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(c_in + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, state: State | None) -> State:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[-2:])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class LocalRefineNet(nn.Module):
    """(O^f_t, O^f_{t-1}, O_{t-1}) [N,3,H,W] each, state -> (O_t [N,3,H,W], new state)."""

    def __init__(self, config: RefineNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or RefineNetConfig()
        c = self.config
        self.stem = _conv(9 * 4, c.half_width)  # after space-to-depth by 2
        self.down = _conv(c.half_width, c.quarter_width, stride=2)
        self.blocks = nn.Sequential(*(_ResidualBlock(c.quarter_width)
                                      for _ in range(c.residual_blocks)))
        self.lstm = ConvLSTMCell(c.quarter_width, c.hidden_width)
        if c.output == "residual":
            self.up = _conv(c.hidden_width + c.half_width, c.half_width)
            self.to_residual = nn.Conv2d(c.half_width, 3 * 4, 3, padding=1)
            last = self.to_residual
        else:
            # colour_field: log-gain 3 + offset 3; colour_transfer: how much (0..1, per channel)
            # of the aligned previous output's local colour to take over.
            channels = 6 if c.output == "colour_field" else 3
            self.field = _conv(c.hidden_width + c.quarter_width, c.quarter_width)
            self.to_field = nn.Conv2d(c.quarter_width, channels, 3, padding=1)
            last = self.to_field
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    @property
    def stride(self) -> int:
        return self.config.stride

    def forward(
        self,
        filtered: torch.Tensor,
        prev_filtered: torch.Tensor,
        prev_output: torch.Tensor,
        state: State | None = None,
        clamp: bool = True,
        flow: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step. `state=None` starts a clip; `clamp=False` returns the raw output (training
        uses it so that out-of-range predictions still get gradients). `flow` [N,H,W,2] maps
        the current frame to the previous one (pixels); with `motion="flow"` it aligns the
        previous frames and the state (None: no motion assumed). `valid` [N,H,W] (1 where the
        flow is trustworthy: forward-backward consistent, not occluded) gates the colour
        transfer: nothing is taken over from places the previous frame did not see."""
        if not (filtered.shape == prev_filtered.shape == prev_output.shape) or (
            filtered.ndim != 4 or filtered.shape[1] != 3
        ):
            raise ValueError(
                "filtered, prev_filtered and prev_output must all be [N,3,H,W]; got "
                f"{tuple(filtered.shape)}, {tuple(prev_filtered.shape)}, {tuple(prev_output.shape)}"
            )
        h, w = filtered.shape[-2:]
        if self.config.motion == "flow" and flow is not None:
            if flow.shape != (filtered.shape[0], h, w, 2):
                raise ValueError(f"flow must be [N,H,W,2] = {(filtered.shape[0], h, w, 2)}, "
                                 f"got {tuple(flow.shape)}")
            prev_filtered = warp_with_flow(prev_filtered, flow)
            prev_output = warp_with_flow(prev_output, flow)
            if state is not None:
                state = _warp_state(state, flow)
        x = torch.cat([filtered, prev_filtered, prev_output], dim=1) - 0.5
        x = pad_to_multiple(x, self.stride)
        half = self.stem(F.pixel_unshuffle(x, 2))
        quarter = self.blocks(self.down(half))
        state = self.lstm(quarter, state)
        if self.config.output == "residual":
            up = F.interpolate(state[0], size=half.shape[-2:], mode="bilinear",
                               align_corners=False)
            residual = F.pixel_shuffle(self.to_residual(self.up(torch.cat([up, half], dim=1))), 2)
            out = filtered + residual[..., :h, :w]
        else:
            field = self.to_field(self.field(torch.cat([state[0], quarter], dim=1)))
            if self.config.output == "colour_transfer":
                ratio = _local_log_ratio(prev_output, filtered, self.stride)
                if valid is not None:
                    ratio = ratio * _all_valid(valid, ratio.shape[-2:], self.stride)
                field = _leaky_unit(field) * ratio
            field = F.interpolate(field, size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)[..., :h, :w]
            out = filtered * torch.exp(field[:, :3])
            if self.config.output == "colour_field":
                out = out + field[:, 3:]
        return (out.clamp(0.0, 1.0) if clamp else out), state


def _leaky_unit(x: torch.Tensor) -> torch.Tensor:
    """x clamped to 0..1, with a small slope outside so a zero-initialised layer still learns."""
    inside = x.clamp(0.0, 1.0)
    return inside + 0.01 * (x - inside)


def _local_log_ratio(reference: torch.Tensor, image: torch.Tensor, stride: int) -> torch.Tensor:
    """log(local mean of reference / local mean of image) per channel at 1/stride resolution
    ([N,3,H,W] each -> [N,3,H',W'], the padded grid of the net), clamped to +-1: the gain that
    gives `image` the local colour of `reference` (dark pixels are kept from exploding)."""
    def local_mean(x):
        x = F.avg_pool2d(pad_to_multiple(x, stride), stride)
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)

    ratio = (local_mean(reference) + 0.02).log() - (local_mean(image) + 0.02).log()
    return ratio.clamp(-1.0, 1.0)


def _all_valid(valid: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """[N,H,W] validity -> [N,1,h,w] at the net's 1/stride grid: 1 only where the whole
    neighbourhood is valid (a min-pool), so a region next to an occlusion takes nothing."""
    v = pad_to_multiple(valid[:, None].float(), stride)
    v = -F.max_pool2d(-v, stride)
    v = -F.max_pool2d(-F.pad(v, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return v[..., : size[0], : size[1]]


def _warp_state(state: State, flow: torch.Tensor) -> State:
    """Warp the ConvLSTM state [N,C,h,w] (padded 1/4 resolution) with a full-resolution flow."""
    hq, wq = state[0].shape[-2:]
    h, w = flow.shape[1:3]
    small = F.interpolate(flow.permute(0, 3, 1, 2), size=(hq, wq), mode="bilinear",
                          align_corners=False)
    small = small * torch.tensor([wq / w, hq / h], dtype=small.dtype,
                                 device=small.device).view(1, 2, 1, 1)
    small = small.permute(0, 2, 3, 1)
    return warp_with_flow(state[0], small), warp_with_flow(state[1], small)


def build_local_refine(config: RefineNetConfig | None = None, **overrides) -> LocalRefineNet:
    """A freshly initialised (identity) refinement net; keyword overrides patch the config."""
    cfg = config or RefineNetConfig()
    if overrides:
        cfg = RefineNetConfig(**{**asdict(cfg), **overrides})
    return LocalRefineNet(cfg)
