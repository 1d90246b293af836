"""The neural filter in float16 / bfloat16 against float32: how much the output changes.

    .venv/bin/python -m bench.half_precision                 # bigbuckbunny, carphone W=1 + Winter
    .venv/bin/python -m bench.half_precision --device cuda   # where a GPU is present: also speed

The half types are meant for GPUs, but their arithmetic is the same on the CPU, so the quality
figures hold there too (the CPU run bypasses the CPU refusal of `FilterConfig.dtype` by loading
the net in that dtype directly). Per input: PSNR of the half-precision output to the float32
output, PSNR of each to the clean clip (synthetic inputs), seconds. One atlas per input, shared.
"""

from __future__ import annotations

import argparse
import time

import torch

from deflicker_impl.atlas import AtlasConfig, fit_atlas, render_atlas_frames
from deflicker_impl.device import resolve_device
from deflicker_impl.evaluation.metrics import psnr
from deflicker_impl.filter.apply import DTYPES, WEIGHTS_KIND, FilterConfig, apply_neural_filter
from deflicker_impl.filter.net import FilterNetConfig, NeuralFilterNet
from deflicker_impl.weights import load_network

from .datasets import build_inputs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.half_precision", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", default="bigbuckbunny,carphone")
    p.add_argument("--real", default="winter_holland")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--long-side", type=int, default=384)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    inputs = [i for i in build_inputs(args.clips.split(","), [r for r in args.real.split(",") if r],
                                      args.frames, args.long_side, windows=(1,))
              if i.kind != "clean"]
    weights = str(FilterConfig().resolved_weights_path())
    print(f"device {device}, torch {torch.__version__}, {args.threads} thread(s)")
    for inp in inputs:
        atlas = render_atlas_frames(fit_atlas(inp.frames, AtlasConfig(seed=0)))
        outputs = {}
        for name, dtype in DTYPES.items():  # float32 first: the others are compared to it
            net = load_network(weights, WEIGHTS_KIND, NeuralFilterNet, FilterNetConfig.from_json,
                               str(device), dtype)
            t0 = time.perf_counter()
            outputs[name] = apply_neural_filter(inp.frames, atlas, net=net)
            seconds = time.perf_counter() - t0
            to_clean = (f"{psnr(outputs[name], inp.clean):6.2f} dB" if inp.clean is not None
                        else "   n/a   ")
            print(f"{inp.clip:15s} {inp.kind:9s} {name:9s} PSNR to float32 "
                  f"{psnr(outputs[name], outputs['float32']):6.2f} dB, to clean {to_clean}, "
                  f"{seconds:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
