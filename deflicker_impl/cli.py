"""Command line: `python -m deflicker_impl {deflicker,batch,metrics,compare,flicker} ...`."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from dataclasses import replace

from .atlas import PRESETS, AtlasConfig
from .batch import OUTPUT_FORMATS, run_batch_command
from .errors import DeflickerInputError
from .filter.apply import FilterConfig
from .output_safety import (
    OutputTransaction,
    add_safety_options,
    interrupt_message,
    plan_outputs,
)
from .pipeline import (
    DEFAULT_STOP_AFTER,
    INTERMEDIATE_DTYPES,
    STAGES,
    PipelineConfig,
    run_pipeline,
)
from .preflight import check_deflicker_job, check_range
from .progress import TerminalProgress
from .refine.apply import RefineConfig
from .seams import SeamConfig, describe_seams
from .shots import ShotConfig
from .streaming import analyse_clip, stream_frames_held, stream_pipeline, streaming_unsupported
from .threads import ENV_VAR as THREADS_ENV_VAR
from .threads import MONITOR as LOAD_MONITOR
from .threads import choose_threads, parse_thread_count, set_threads


def _read_input(path, args: argparse.Namespace, label: str = "INPUT"):
    """read_clip with --allow-truncated; a truncated clip read anyway is said on stderr."""
    from .video_io import read_clip

    clip = read_clip(path, allow_truncated=getattr(args, "allow_truncated", False))
    if clip.missing_frames:
        print(f"warning: {label} {path} is truncated: read {clip.num_frames} of the "
              f"{clip.declared_frames} frames it declares (--allow-truncated)", file=sys.stderr)
    return clip


def flicker_window_frames(text: str, fps: float | None) -> int:
    """--flicker-window as frames: a whole number of frames, or seconds with an "s" suffix
    (converted with the clip's frame rate, at least one frame)."""
    value = str(text).strip().lower()
    try:
        if value.endswith("s"):
            if not fps:
                raise DeflickerInputError(
                    f"--flicker-window {text}: seconds need one clip's frame rate; the batch "
                    "command takes frames (e.g. 12).")
            seconds = float(value[:-1])
            if seconds < 0:
                raise ValueError
            return max(1, round(seconds * fps)) if seconds > 0 else 0
        frames = int(value)
        if frames < 0:
            raise ValueError
        return frames
    except ValueError:
        raise DeflickerInputError(
            f"--flicker-window must be a whole number of frames >= 0 or seconds such as 0.5s, "
            f"got {text!r}.") from None


def pipeline_config_from_args(args: argparse.Namespace, fps: float | None = None
                              ) -> PipelineConfig:
    """The PipelineConfig that the options of `add_pipeline_options` describe (`fps`: the
    clip's frame rate, for a --flicker-window in seconds)."""
    atlas = AtlasConfig(preset=args.preset, iterations=args.iterations, seed=args.seed,
                        device=args.device, fit_long_side=args.fit_long_side,
                        atlas_resolution=args.atlas_resolution)
    stages = {
        "stop_after": args.stop_after, "atlas": atlas,
        "filter": FilterConfig(weights_path=args.filter_weights, device=args.device),
        "refine": RefineConfig(weights_path=args.refine_weights, device=args.device),
        "shots": ShotConfig(scene_cuts=not args.no_scene_cuts, cut_sensitivity=args.cut_sensitivity,
                         max_segment_frames=args.max_segment_frames,
                         segment_overlap=args.segment_overlap),
        "seams": SeamConfig(enabled=args.remove_seams),
        "intermediate_dtype": args.intermediate_dtype, "in_place": True,  # the decoded frames are ours
        "confidence": bool(getattr(args, "save_confidence", None))}
    if args.faithful:
        window = flicker_window_frames(args.flicker_window, fps)
        return PipelineConfig.faithful(window, args.strength, **stages)
    config = PipelineConfig(**stages)
    if args.strength != 1.0:
        config.filter = replace(config.filter, flicker=replace(config.filter.flicker,
                                                               strength=args.strength))
        config.refine = replace(config.refine, strength=args.strength)
    return config


def _cmd_deflicker(args: argparse.Namespace) -> int:
    # Everything that can be checked is checked before decoding and fitting.
    from .video_io import probe_clip

    config = pipeline_config_from_args(args, float(probe_clip(args.input).fps))
    parse_thread_count(args.threads, "--threads")  # a bad count fails before the work
    # The whole pipeline streams (the same output, bit for bit, in the memory of one
    # segment) unless it needs the whole clip at once: see streaming.streaming_unsupported.
    uses_masks = bool(args.masks or args.sam_checkpoint)
    not_streamed_because = streaming_unsupported(config, masks=True if uses_masks else None)
    streaming = not_streamed_because is None
    job = check_deflicker_job(
        args.input, config, args.output, args.save_atlas_frames, args.save_texture,
        save_confidence=args.save_confidence,
        other_inputs={"--masks": args.masks, "--sam-checkpoint": args.sam_checkpoint,
                      "--filter-weights": args.filter_weights,
                      "--refine-weights": args.refine_weights},
        must_exist=("--masks", "--sam-checkpoint"), overwrite=args.overwrite,
        memory_limit_gb=args.memory_limit, streaming=streaming,
        not_streamed_because=not_streamed_because)
    targets = job.targets
    if args.sam_checkpoint:
        check_range("--sam-frame", args.sam_frame, 0, job.info.frames - 1, " (a frame of INPUT)")
    make_masks = _foreground_masks(args)  # also refuses SAM prompts without a checkpoint
    if streaming:
        return _deflicker_streamed(args, config, targets)

    clip = _read_input(args.input, args)
    t, h, w, _ = clip.frames.shape
    print(f"read {args.input}: {t} frames, {w}x{h}, {float(clip.fps):.3f} fps", file=sys.stderr)
    # Chosen after decoding: the load is measured over the decoding, with no extra wait.
    threads = choose_threads(args.threads, warn=_warn)
    if not args.quiet:
        print(threads.describe(), file=sys.stderr)
    with threads.applied():
        masks = make_masks(clip.frames)
    progress = TerminalProgress("deflicker", enabled=not args.quiet)
    result = run_pipeline(clip.frames, config, progress, masks=masks, threads=threads)
    outputs: OutputTransaction = args.outputs
    outputs.write(targets["OUTPUT"], result.frames, clip.fps)
    if args.save_atlas_frames:
        outputs.write(targets["--save-atlas-frames"], result.atlas_frames, clip.fps)
    if args.save_texture:
        _write_texture(outputs, targets["--save-texture"], result.atlas.texture_preview(),
                       clip.fps)
    if args.save_confidence:
        mask = result.confidence.mask()
        outputs.write(targets["--save-confidence"], mask[..., None].expand(-1, -1, -1, 3),
                      clip.fps)
    written = outputs.commit()
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if config.seams.enabled:
        print(describe_seams(result.seams), file=sys.stderr)
    summary = {"output": str(written[0]), "frames": t, "width": w, "height": h,
               "fps": float(clip.fps), "shot_starts": result.atlas.shot_starts,
               "chunk_seams": [seam.frame for seam in result.seams],
               "segments": result.atlas.segment_ranges(),
               "layers": max(seg.atlas.num_layers for seg in result.atlas.segments),
               "seconds": result.seconds_per_stage}
    print(json.dumps(summary))
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _use_threads(args: argparse.Namespace) -> None:
    """The pack's thread count for a command that runs in this process from start to end."""
    set_threads(choose_threads(args.threads, warn=_warn).count)


def add_threads_option(parser: argparse.ArgumentParser, per_worker: bool = False) -> None:
    """--threads: the one thread option of every command (see threads.py)."""
    what = ("torch/OpenCV threads per worker; auto (default) = the CPUs not busy with other "
            "work, divided by --workers (1 per Ray task)" if per_worker else
            "torch/OpenCV threads; auto (default) = the CPUs not busy with other work")
    parser.add_argument("--threads", default=None, metavar="N",
                        help=f"{what}; 0 = auto; also set by the {THREADS_ENV_VAR} environment "
                             "variable")


def _deflicker_streamed(args: argparse.Namespace, config: PipelineConfig, targets) -> int:
    """`deflicker` as a stream: a first pass over INPUT for its cuts, then segment by segment
    into the outputs' temporaries (committed together at the end, as in the whole-clip run)."""
    from .preflight import longest_segment
    from .video_io import FrameStream, probe_clip

    source = FrameStream(args.input, allow_truncated=args.allow_truncated)
    analysis = analyse_clip(source, config.shots)  # decodes once: truncation is found here
    t, (h, w) = analysis.num_frames, analysis.frame_hw
    if source.declared_frames and source.declared_frames > t:
        print(f"warning: INPUT {args.input} is truncated: read {t} of the "
              f"{source.declared_frames} frames it declares (--allow-truncated)", file=sys.stderr)
    segment = longest_segment(replace(probe_clip(args.input), frames=t), config)
    held = stream_frames_held(config, (h, w), segment, t)
    print(f"read {args.input}: {t} frames, {w}x{h}, {float(source.fps):.3f} fps; streaming: at "
          f"most {held['input']} input frames in memory at once (segments of up to {segment})",
          file=sys.stderr)
    # Chosen after the first pass: the load is measured over its decoding, with no extra wait.
    threads = choose_threads(args.threads, warn=_warn)
    if not args.quiet:
        print(threads.describe(), file=sys.stderr)
    outputs: OutputTransaction = args.outputs
    progress = TerminalProgress("deflicker", enabled=not args.quiet)
    with contextlib.ExitStack() as writers, threads.applied():
        output = writers.enter_context(outputs.open(targets["OUTPUT"], source.fps, t))
        atlas = None
        if args.save_atlas_frames:
            atlas = writers.enter_context(outputs.open(targets["--save-atlas-frames"],
                                                       source.fps, t)).write
        result = stream_pipeline(source, config, output.write, write_atlas_frames=atlas,
                                 keep_textures=bool(args.save_texture), analysis=analysis,
                                 on_progress=progress)
    if args.save_texture:
        _write_texture(outputs, targets["--save-texture"], result.textures, source.fps)
    written = outputs.commit()
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    print(json.dumps({"output": str(written[0]), "frames": t, "width": w, "height": h,
                      "fps": float(source.fps), "shot_starts": result.shot_starts,
                      "segments": result.segments, "layers": result.layers,
                      "seconds": result.seconds_per_stage, "streamed": True,
                      "frames_held": result.peak_frames_held}))
    return 0


def _write_texture(outputs: OutputTransaction, target, texture, fps) -> None:
    """--save-texture: one image per segment (a single image: one above another)."""
    if target.kind == "image":
        texture = texture.reshape(1, -1, *texture.shape[2:])
    outputs.write(target, texture, fps)


def _foreground_masks(args: argparse.Namespace):
    """How the foreground MASK batch [T,H,W] for a two-layer atlas is made, checked before
    decoding: a function frames -> masks (or None: one layer). Masks are read from --masks (a
    video or a folder of images, white = foreground; any size, one frame = every frame) or
    segmented with Segment Anything from --sam-checkpoint (loaded now, so a bad file fails
    before the work) and prompts on --sam-frame."""
    prompts = (args.sam_points, args.sam_negative_points, args.sam_box)
    if args.masks and args.sam_checkpoint:
        raise DeflickerInputError("Give either --masks or --sam-checkpoint, not both.")
    if args.masks:
        return lambda frames: _read_input(args.masks, args, "--masks").frames.mean(dim=-1)
    if not args.sam_checkpoint:
        if any(prompts):
            raise DeflickerInputError("--sam-points/--sam-negative-points/--sam-box need "
                                      "--sam-checkpoint (a Segment Anything .pth file).")
        return lambda frames: None
    from .sam import load_sam, masks_from_prompts, parse_box, parse_points

    positive = parse_points(args.sam_points, "--sam-points")
    negative = parse_points(args.sam_negative_points, "--sam-negative-points")
    box = parse_box(args.sam_box)
    if not positive and box is None:
        raise DeflickerInputError("Segment Anything needs a prompt: --sam-points \"x,y; x,y\" "
                                  "and/or --sam-box \"x0,y0,x1,y1\" (pixels of --sam-frame).")
    sam = load_sam(args.sam_checkpoint, args.device)
    return lambda frames: masks_from_prompts(
        sam, frames, args.sam_frame, positive, negative, box,
        on_progress=TerminalProgress("segment", enabled=not args.quiet))


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .evaluation.metrics import compute_warp_reference, flicker_index, psnr, warping_error

    _use_threads(args)
    clip = _read_input(args.input, args).frames
    report = {"frames": int(clip.shape[0]), "flicker_index": flicker_index(clip)}
    ref_clip = _read_input(args.reference, args, "--reference").frames if args.reference else None
    flow_clip = (_read_input(args.flow_from, args, "--flow-from").frames if args.flow_from
                 else ref_clip)
    for name, other in (("--reference", ref_clip), ("--flow-from", flow_clip)):
        if other is not None and other.shape != clip.shape:
            raise DeflickerInputError(
                f"{name} has shape {tuple(other.shape)} but INPUT has {tuple(clip.shape)}.")
    if clip.shape[0] >= 2:
        flow_source = flow_clip if flow_clip is not None else clip
        report["warping_error"] = warping_error(clip, compute_warp_reference(flow_source))
    if ref_clip is not None:
        report["psnr_to_reference"] = psnr(clip, ref_clip)
    print(json.dumps(report, indent=2))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .evaluation.compare import compare_frames
    from .evaluation.plots import metrics_plot
    from .evaluation.report import measure
    from .video_io import probe_clip

    frames = probe_clip(args.before).frames
    targets = plan_outputs({"OUTPUT": (args.output, frames), "--plot": (args.plot, 1)},
                           {"BEFORE": args.before, "AFTER": args.after}, overwrite=args.overwrite)
    probe_clip(args.after)
    _use_threads(args)
    before, after = _read_input(args.before, args, "BEFORE"), _read_input(args.after, args, "AFTER")
    report = measure(after.frames, before.frames, flow_from="compare_to")
    sheet = compare_frames(before.frames, after.frames, layout=args.layout)
    outputs: OutputTransaction = args.outputs
    outputs.write(targets["OUTPUT"], sheet, before.fps)
    if args.plot:
        outputs.write(targets["--plot"], metrics_plot(report, names=("after", "before")),
                      before.fps)
    print(f"wrote {', '.join(str(p) for p in outputs.commit())}", file=sys.stderr)
    a, b = report.images, report.compare_to
    print(json.dumps({"flicker_index": {"before": b.flicker_index, "after": a.flicker_index},
                      "warping_error": {"before": b.warping_error, "after": a.warping_error},
                      "units": "8-bit levels, flow from BEFORE; lower is steadier"}, indent=2))
    return 0


def _cmd_flicker(args: argparse.Namespace) -> int:
    from .evaluation.synthetic import add_synthetic_flicker
    from .video_io import probe_clip

    check_range("--window", args.window, 1, None, " frames")
    check_range("--strength", args.strength, 0.0, 10.0)
    targets = plan_outputs({"OUTPUT": (args.output, probe_clip(args.input).frames)},
                           {"INPUT": args.input}, overwrite=args.overwrite)
    _use_threads(args)
    clip = _read_input(args.input, args)
    flickered = add_synthetic_flicker(clip.frames, window=args.window, seed=args.seed,
                                      gain_sigma=args.strength * 0.15,
                                      gamma_sigma=args.strength * 0.10,
                                      offset_sigma=args.strength * 0.03,
                                      local_sigma=args.strength * 0.15)
    args.outputs.write(targets["OUTPUT"], flickered, clip.fps)
    print(f"wrote {', '.join(str(p) for p in args.outputs.commit())}", file=sys.stderr)
    return 0


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """The options that configure the pipeline: `deflicker` and `batch` share them."""
    parser.add_argument("--stop-after", choices=STAGES, default=DEFAULT_STOP_AFTER,
                        help="last stage to run: atlas (the atlas reconstruction), filter (atlas + "
                             "neural filter) or refine (+ local refinement); default %(default)s")
    parser.add_argument("--preset", choices=PRESETS, default="fast",
                        help="atlas preset: 'fast' (default, our explicit-texture atlas) or "
                             "'paper' (the public MLP configuration; very slow on a CPU)")
    parser.add_argument("--iterations", type=int, default=0,
                        help="atlas optimisation steps; 0 = the preset's default (fast: until "
                             "the fit converges, at most 300; paper 10001)")
    parser.add_argument("--fit-long-side", type=int, default=AtlasConfig.fit_long_side,
                        help="long side in pixels at which the fast atlas is fitted "
                             "(default %(default)s)")
    parser.add_argument("--atlas-resolution", type=int, default=AtlasConfig.atlas_resolution,
                        help="maximum long side of the atlas texture in texels "
                             "(default %(default)s)")
    parser.add_argument("--no-scene-cuts", action="store_true",
                        help="do not look for scene cuts: fit the whole clip as one shot")
    parser.add_argument("--cut-sensitivity", type=float, default=ShotConfig.cut_sensitivity,
                        help="0..1, higher finds subtler cuts (default %(default)s)")
    parser.add_argument("--max-segment-frames", type=int, default=ShotConfig.max_segment_frames,
                        help="longer shots are fitted in overlapping segments of at most this many "
                             "frames; 0 = never split (default %(default)s)")
    parser.add_argument("--segment-overlap", type=int, default=ShotConfig.segment_overlap,
                        help="frames shared (and cross-faded) by neighbouring segments "
                             "(default %(default)s)")
    parser.add_argument("--intermediate-dtype", choices=list(INTERMEDIATE_DTYPES), default="uint8",
                        help="storage of the atlas frames between atlas and filter (default "
                             "%(default)s: a quarter of float32's memory)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same output")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--filter-weights", default=None,
                        help="neural filter weights (.safetensors); default: the shipped weights")
    parser.add_argument("--refine-weights", default=None,
                        help="local refinement weights (.safetensors); default: the shipped "
                             "weights")
    parser.add_argument("--faithful", action="store_true",
                        help="faithful colour: take the atlas's colour only where the atlas "
                             "shows the frame's content (its confidence) and keep changes longer "
                             "than --flicker-window (the scene's own light); for generated clips "
                             "with turning characters, appearing objects, lamps or fades")
    parser.add_argument("--flicker-window", default="10",
                        help="with --faithful: frames (or seconds, e.g. 0.5s) a change must last "
                             "to count as the scene's own light; 0 = keep no persistent change "
                             "(removes chunk seams of sliding-window generators); default "
                             "%(default)s")
    parser.add_argument("--remove-seams", action="store_true",
                        help="first remove the chunk seams of a sliding-window generator (Wan "
                             "and others): colour steps from one frame to the next that stay; "
                             "a light switched on at one frame is removed too")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="0..1: how much of the correction to apply (0 = the input "
                             "unchanged); default %(default)s")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deflicker_impl",
        description="Blind video deflickering with a neural atlas, a neural filter and a "
                    "local refinement.")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "deflicker", help="deflicker a video or a folder of frames",
        description="Deflicker INPUT into OUTPUT. Both are a video file (.mp4 .mov .mkv .webm "
                    ".avi .gif .webp) or a folder of frames. The output keeps the input's frame "
                    "count, frame size and frame rate.")
    d.add_argument("input", help="input video file or folder of frames")
    d.add_argument("output", help="output video file (by extension) or folder for PNG frames")
    add_pipeline_options(d)
    add_threads_option(d)
    d.add_argument("--masks", default=None,
                   help="foreground masks (video or folder of images, white = object): "
                        "fit a two-layer atlas (foreground + background)")
    d.add_argument("--sam-checkpoint", default=None,
                   help="Segment Anything checkpoint (sam_vit_b/l/h .pth): segment the "
                        "foreground from the prompts below and fit a two-layer atlas")
    d.add_argument("--sam-points", default=None, help='object points "x,y; x,y" (pixels)')
    d.add_argument("--sam-negative-points", default=None,
                   help='background points "x,y; x,y" (pixels)')
    d.add_argument("--sam-box", default=None, help='object box "x0,y0,x1,y1" (pixels)')
    d.add_argument("--sam-frame", type=int, default=0, help="frame the prompts refer to")
    d.add_argument("--save-atlas-frames", default=None,
                   help="also write the atlas reconstruction of every frame here")
    d.add_argument("--save-texture", default=None,
                   help="also write the atlas texture as an image (e.g. atlas.png)")
    d.add_argument("--save-confidence", default=None,
                   help="also write the atlas confidence (white: the atlas shows the frame's "
                        "content, black: it does not) as a video or frame folder")
    d.add_argument("--memory-limit", type=float, default=None, metavar="GB",
                   help="refuse, before decoding, a run whose estimated peak memory exceeds "
                        "this (default: the memory available now; 0 = no check)")
    add_safety_options(d)
    d.set_defaults(func=_cmd_deflicker)

    b = sub.add_parser(
        "batch", help="deflicker many clips into one folder (resumable)",
        description="Deflicker every clip that INPUTS name into --out DIR: each output has its "
                    "input's name (plus --suffix), with a JSON report per clip in DIR/reports, "
                    "DIR/summary.csv and DIR/manifest.json. Rerunning the same command skips "
                    "finished clips and redoes failed or unfinished ones. Exit status 0: all "
                    "clips done; 1: some failed (see the summary); 2: nothing was done "
                    "(a mistake in the command); 130: interrupted.")
    b.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a video file, a folder of frames, a folder of clips, a glob pattern "
                        "(quoted) or a .txt file listing any of these (one a line)")
    b.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created if missing); the books of the batch live there")
    add_pipeline_options(b)
    b.add_argument("--suffix", default="",
                   help="appended to each output's name, e.g. _deflickered (default: none)")
    b.add_argument("--ext", choices=OUTPUT_FORMATS, default="same",
                   help="output format: same (as the input, default), folder (PNG frames) or "
                        "a video extension")
    b.add_argument("--workers", type=int, default=1,
                   help="clips processed at once on this machine, one process each "
                        "(default %(default)s)")
    add_threads_option(b, per_worker=True)
    b.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the clips as Ray tasks on an existing cluster: its head's "
                        "host:port or 'auto' (needs the [ray] extra; paths must be reachable "
                        "from every node)")
    b.add_argument("--max-clip-gb", type=float, default=0.0,
                   help="refuse (as failed) a clip whose processing would need more memory; "
                        "0 = the free memory divided by --workers")
    add_safety_options(b)
    b.set_defaults(func=run_batch_command)

    m = sub.add_parser("metrics", help="flicker index and warping error of a clip",
                       description="Print the global flicker index and the warping error of "
                                   "INPUT (flow from --reference if given, else from INPUT).")
    m.add_argument("input")
    m.add_argument("--reference", default=None,
                   help="a clean clip of the same shape: flow source, and PSNR against it")
    m.add_argument("--flow-from", default=None,
                   help="clip of the same shape whose motion defines the warping error (e.g. the "
                        "input of a deflicker run, to compare input and output on equal terms)")
    add_threads_option(m)
    add_safety_options(m, writes=False)
    m.set_defaults(func=_cmd_metrics)

    c = sub.add_parser("compare", help="before/after comparison video, metrics and plot",
                       description="Write BEFORE and AFTER (same frame count) side by side into "
                                   "OUTPUT and print both clips' flicker index and warping error "
                                   "(flow from BEFORE).")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("output", help="comparison video file or folder of frames")
    c.add_argument("--layout", choices=("side_by_side", "split", "stacked"),
                   default="side_by_side")
    c.add_argument("--plot", default=None,
                   help="also write the per-frame metrics plot as an image (e.g. plot.png)")
    add_threads_option(c)
    add_safety_options(c)
    c.set_defaults(func=_cmd_compare)

    f = sub.add_parser("flicker", help="add synthetic flicker to a clean clip (for testing)",
                       description="Write INPUT with seeded synthetic flicker to OUTPUT.")
    f.add_argument("input")
    f.add_argument("output")
    f.add_argument("--window", type=int, default=1, help="frames sharing one flicker pattern")
    f.add_argument("--strength", type=float, default=1.0, help="scales every flicker component")
    f.add_argument("--seed", type=int, default=0)
    add_threads_option(f)
    add_safety_options(f)
    f.set_defaults(func=_cmd_flicker)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand: exit 0, 2 with one line on bad input, 130 with one line on Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        # From here Ctrl-C is a KeyboardInterrupt again (during start-up, the package's own
        # handler exits 130 at once: see deflicker_impl/__init__.py).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    LOAD_MONITOR.sample()  # starts the window over which other work's load is measured
    outputs = OutputTransaction()
    try:
        args = build_parser().parse_args(argv)
        args.outputs = outputs
        with outputs:
            return args.func(args)
    except DeflickerInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupt_message(outputs)}", file=sys.stderr)
        return 130
