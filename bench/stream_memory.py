"""Peak memory of the streaming command line on a long clip: any length in bounded memory.

    .venv/bin/python -m bench.stream_memory --frames 3000 --size 512x288 --iterations 30
    .venv/bin/python -m bench.stream_memory --frames 800 --size 1920x1080 --iterations 20 \\
        --stop-after-seconds 420        # a first segment of 1080p, then Ctrl-C

Makes the clip (unless it exists): ../shared/clips' Winter_Scenes_in_Holland.mp4 (96 frames of
real old film with flicker) resized (bicubic) and looped back and forth (ping-pong: the loop adds
no cut, so the shot is as long as the clip and every segment is full-length, the worst case for
memory) to --frames frames, x264 crf 16, 12 fps. Runs `python -m deflicker_impl deflicker` on it
with one torch thread, samples the process's RSS every 0.5 s, and reports the peak against the
CLI's own estimate for a streamed run (preflight.estimate_stream_peak_bytes) and against what
the whole clip would need held in memory (preflight.estimate_peak_bytes). With
--stop-after-seconds the run is interrupted (SIGINT) then, and the check that no output was
left behind is reported. The atlas iterations do not change the memory (they only repeat the
fit's steps on the same low-resolution data), only the time. Writes <out>/stream_<size>_<frames>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "clips" / "all-in-one-deflicker" / "Winter_Scenes_in_Holland.mp4"


def make_clip(path: Path, frames: int, width: int, height: int, source: Path) -> None:
    import av
    import numpy as np
    from PIL import Image

    pictures = []
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            image = Image.fromarray(frame.to_ndarray(format="rgb24"))
            pictures.append(np.asarray(image.resize((width, height), Image.BICUBIC)))
    n = len(pictures)
    period = 2 * n - 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "preset": "fast"}
        for i in range(frames):
            k = i % period
            picture = pictures[k if k < n else period - k]
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--size", default="512x288", help="WIDTHxHEIGHT")
    parser.add_argument("--iterations", type=int, default=30, help="atlas iterations")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--work", type=Path, default=Path("/tmp/deflicker_stream_bench"),
                        help="folder for the clip and the output (never the repository)")
    parser.add_argument("--stop-after-seconds", type=float, default=0.0,
                        help="interrupt the run after this long (0: let it finish)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("cli_options", nargs="*", help="more deflicker options (after --)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    clip = args.work / f"loop_{width}x{height}_{args.frames}.mp4"
    if not clip.exists():
        make_clip(clip, args.frames, width, height, args.source)
    output = args.work / f"out_{width}x{height}_{args.frames}.mp4"

    from deflicker_impl.cli import build_parser, pipeline_config_from_args
    from deflicker_impl.preflight import GIB, estimate_peak_bytes, estimate_stream_peak_bytes
    from deflicker_impl.video_io import probe_clip

    command = [sys.executable, "-m", "deflicker_impl", "deflicker", str(clip), str(output),
               "--iterations", str(args.iterations), "--quiet", "--overwrite",
               *args.cli_options]
    info = probe_clip(clip)
    config = pipeline_config_from_args(build_parser().parse_args(command[3:]), float(info.fps))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak, samples = 0, []
    interrupted = False
    while proc.poll() is None:
        try:
            rss = rss_bytes(proc.pid)
        except OSError:
            break
        peak = max(peak, rss)
        samples.append((round(time.perf_counter() - t0, 1), rss))
        if args.stop_after_seconds and time.perf_counter() - t0 > args.stop_after_seconds \
                and not interrupted:
            proc.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.5)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    summary = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else None
    leftovers = sorted(p.name for p in args.work.iterdir() if ".partial-" in p.name)
    report = {
        "date": datetime.date.today().isoformat(), "command": " ".join(command),
        "frames": info.frames, "width": width, "height": height,
        "returncode": proc.returncode, "interrupted": interrupted, "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / GIB, 3),
        "estimate_stream_gb": round(estimate_stream_peak_bytes(info, config) / GIB, 3),
        "estimate_whole_clip_gb": round(estimate_peak_bytes(info, config.intermediate_dtype)
                                        / GIB, 3),
        "clip_float32_gb": round(info.float32_bytes() / GIB, 3),
        "stderr_last_lines": [line for line in err.replace("\r", "\n").splitlines() if line][-3:],
        "summary": summary, "temporaries_left": leftovers,
        "rss_samples_every_5s": samples[::10],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"stream_{width}x{height}_{args.frames}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "rss_samples_every_5s"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
