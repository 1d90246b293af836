"""The local refinement network: a light recurrent net that removes the flicker left locally.

Design (in the spirit of Lai et al., ECCV 2018, written from the idea, not from their code).
Inputs per step: the filtered frame O^f_t, the previous filtered frame O^f_{t-1} and the previous
refined output O_{t-1}, each [N,3,H,W] in 0..1 (9 channels together). The net predicts a residual
that is added to O^f_t:

    O_t = O^f_t + R(O^f_t, O^f_{t-1}, O_{t-1}, state)

* Encoder: space-to-depth by 2 (no detail averaged away before the first conv), a conv at half
  resolution, a strided conv to 1/4 resolution, then a few residual blocks.
* A ConvLSTM cell at 1/4 resolution carries a memory across frames, so a region whose colour
  pulses can be held to what it was, not only to the previous frame.
* Decoder: back to half resolution (bilinear + the half-resolution skip), a conv that predicts
  2x2x3 residual values per half-resolution pixel, depth-to-space to full resolution.
* The last conv starts at zero, so an untrained net returns O^f_t unchanged ("do no harm").

Any frame size works (1x1 too): inputs are padded to a multiple of the stride (4) and the output
is cropped back; the recurrent state lives at the padded 1/4 resolution.

Size and speed (default config): 129,356 parameters; 0.12 s per 512x512 frame on one thread
of this project's 2-core CPU (0.07 s wall with two threads; measured on an idle machine).
`python -m deflicker_impl.refine_net` prints the time per 512x512 frame (batch 1, inference
mode) on the machine at hand, as wall time and as process CPU time (the CPU time is the
meaningful figure when the machine is shared with other jobs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .filter_net import pad_to_multiple

State = tuple[torch.Tensor, torch.Tensor]  # (hidden, cell) of the ConvLSTM, [N,C,H/4,W/4] each


@dataclass(frozen=True)
class RefineNetConfig:
    """Widths of the refinement net: half-resolution, quarter-resolution, ConvLSTM hidden."""

    half_width: int = 16
    quarter_width: int = 32
    hidden_width: int = 32
    residual_blocks: int = 2

    def __post_init__(self) -> None:
        for name in ("half_width", "quarter_width", "hidden_width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.residual_blocks < 0:
            raise ValueError(f"residual_blocks must be >= 0, got {self.residual_blocks}")

    stride = 4

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RefineNetConfig:
        return cls(**json.loads(text))


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
        self.up = _conv(c.hidden_width + c.half_width, c.half_width)
        self.to_residual = nn.Conv2d(c.half_width, 3 * 4, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

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
    ) -> tuple[torch.Tensor, State]:
        """One step. `state=None` starts a clip; `clamp=False` returns the raw output (training
        uses it so that out-of-range predictions still get gradients)."""
        if not (filtered.shape == prev_filtered.shape == prev_output.shape) or (
            filtered.ndim != 4 or filtered.shape[1] != 3
        ):
            raise ValueError(
                "filtered, prev_filtered and prev_output must all be [N,3,H,W]; got "
                f"{tuple(filtered.shape)}, {tuple(prev_filtered.shape)}, {tuple(prev_output.shape)}"
            )
        h, w = filtered.shape[-2:]
        x = torch.cat([filtered, prev_filtered, prev_output], dim=1) - 0.5
        x = pad_to_multiple(x, self.stride)
        half = self.stem(F.pixel_unshuffle(x, 2))
        quarter = self.blocks(self.down(half))
        state = self.lstm(quarter, state)
        up = F.interpolate(state[0], size=half.shape[-2:], mode="bilinear", align_corners=False)
        residual = F.pixel_shuffle(self.to_residual(self.up(torch.cat([up, half], dim=1))), 2)
        out = filtered + residual[..., :h, :w]
        return (out.clamp(0.0, 1.0) if clamp else out), state


def build_local_refine(config: RefineNetConfig | None = None, **overrides) -> LocalRefineNet:
    """A freshly initialised (identity) refinement net; keyword overrides patch the config."""
    cfg = config or RefineNetConfig()
    if overrides:
        cfg = RefineNetConfig(**{**asdict(cfg), **overrides})
    return LocalRefineNet(cfg)


def measure_cpu_speed(size: int = 512, threads: int = 1, repeats: int = 8) -> dict:
    """Median wall and process-CPU seconds per size x size frame (batch 1, with state)."""
    import time

    torch.set_num_threads(threads)
    net = build_local_refine().eval()
    frames = [torch.rand(1, 3, size, size) for _ in range(3)]
    walls, cpus = [], []
    state = None
    with torch.inference_mode():
        for i in range(repeats + 2):
            w0, c0 = time.perf_counter(), time.process_time()
            _, state = net(*frames, state)
            if i >= 2:
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
    walls.sort()
    cpus.sort()
    return {"wall_s": walls[len(walls) // 2], "cpu_s": cpus[len(cpus) // 2], "threads": threads,
            "parameters": sum(p.numel() for p in net.parameters())}


if __name__ == "__main__":
    for n in (1, 2):
        r = measure_cpu_speed(threads=n)
        print(f"LocalRefineNet: {r['parameters']} parameters, {n} thread(s): "
              f"{r['wall_s'] * 1000:.1f} ms wall, {r['cpu_s'] * 1000:.1f} ms CPU per 512x512 frame")
