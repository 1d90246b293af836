"""Cost of telling the scene's own light from flicker: `flicker_field.persistent_level` on one
shot's frame-wide log gains, with the straight pieces (the default) and with the running
median alone (the previous release).

    python -m bench.scene_light_speed [--frames 32,300,3000] [--threads 2] [--repeats 5]

Prints the median wall time per shot. The pieces are a dynamic programme over the
breakpoints, O(T^2) in the shot's length; the faithful pipeline runs it once per shot on [T,3]
numbers, so it is small against the filter's per-frame cost except on shots of thousands of
frames. Measure on a quiet machine. Figures: README, "This release's straight pieces".
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from deflicker_impl.flicker_field import FlickerFieldConfig, persistent_level


def seconds_per_shot(frames: int, light_pieces: int, repeats: int) -> float:
    """Median wall seconds of persistent_level on a [frames,3] flicker-like level (1 warm-up)."""
    gen = torch.Generator().manual_seed(0)
    level = 0.1 * torch.randn(frames, 3, generator=gen)
    window = FlickerFieldConfig().flicker_window
    persistent_level(level, window, light_pieces)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        persistent_level(level, window, light_pieces)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", default="32,300,3000", help="comma-separated shot lengths")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pieces = FlickerFieldConfig().light_pieces
    print(f"| frames | straight pieces ({pieces}) | running median alone |")
    print("|---:|---:|---:|")
    for frames in (int(f) for f in args.frames.split(",")):
        with_pieces = seconds_per_shot(frames, pieces, args.repeats)
        alone = seconds_per_shot(frames, 0, args.repeats)
        print(f"| {frames} | {with_pieces * 1000:.1f} ms | {alone * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
