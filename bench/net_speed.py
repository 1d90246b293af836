"""Speed of one network alone: median time per frame (batch 1, inference mode) on the CPU.

    python -m bench.net_speed filter [--size 512] [--threads 1,2] [--repeats 10]
    python -m bench.net_speed refine [--size 512] [--threads 1,2] [--repeats 8]

Prints, per thread count, the wall time and the process CPU time per size x size frame of the
default (freshly initialised) network; the refinement carries its recurrent state from step to
step as at run time. The CPU time is the meaningful figure when the machine is shared with
other jobs; the wall time only on an otherwise idle CPU. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from deflicker_impl.filter import build_neural_filter
from deflicker_impl.refine import build_local_refine
from deflicker_impl.weights import count_parameters


def measure(stage: str, size: int = 512, threads: int = 1, repeats: int = 8) -> dict:
    """Median wall and process-CPU seconds per frame of the stage's network (2 warm-up runs)."""
    torch.set_num_threads(threads)
    if stage == "filter":
        net = build_neural_filter().eval()
        inputs = [torch.rand(1, 3, size, size) for _ in range(2)]
    else:
        net = build_local_refine().eval()
        inputs = [torch.rand(1, 3, size, size) for _ in range(3)]
    walls, cpus = [], []
    state = None
    with torch.inference_mode():
        for i in range(repeats + 2):
            wall, cpu = time.perf_counter(), time.process_time()
            if stage == "filter":
                net(*inputs)
            else:
                _, state = net(*inputs, state)
            if i >= 2:
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
    walls.sort()
    cpus.sort()
    return {"wall_s": walls[len(walls) // 2], "cpu_s": cpus[len(cpus) // 2],
            "threads": threads, "parameters": count_parameters(net)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("filter", "refine"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args(argv)
    for threads in (int(n) for n in args.threads.split(",")):
        r = measure(args.stage, args.size, threads, args.repeats)
        print(f"{args.stage}: {r['parameters']} parameters, {threads} thread(s): "
              f"{r['wall_s'] * 1000:.1f} ms wall, {r['cpu_s'] * 1000:.1f} ms CPU per "
              f"{args.size}x{args.size} frame")


if __name__ == "__main__":
    main()
