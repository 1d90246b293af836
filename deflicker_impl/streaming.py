"""Any length in bounded memory: the pipeline as a stream over the clip's segments.

`run_pipeline` holds the whole clip (and its atlas frames) in memory. `stream_pipeline` runs
the same stages on a clip that is decoded frame by frame (`video_io.FrameStream`) and hands
every finished frame to a writer, so its peak memory is set by the segment length and the
frame size, not by the clip length:

1. A first, cheap pass over the clip (`analyse_clip`) keeps only a few numbers per frame: the
   flicker-blind frame differences for the scene cuts and each frame's mean brightness (for
   the atlas's fade trend). From them come the shots and the segment layout
   (atlas/clip_atlas.py), exactly as the whole-clip path finds them.
2. The second pass decodes the clip again into a sliding window that holds the segment being
   fitted plus the few frames the later stages have not finished. Segment after segment: fit
   its atlas (`fit_segment`, linked to the one before it by its colour gain), render the frames
   whose blend is complete (an overlap waits for the next segment), run the neural filter on
   them, the global colour pass (its 9-frame window per shot: a frame is final once the frames
   within window // 2 after it are filtered, or its shot has ended), the local refinement
   (its recurrent state and previous frames carried across segment boundaries; restarted at a
   cut) and the refinement's global bound (its 5-frame median, likewise), and write the frames.

Every stage computes a frame from the same inputs with the same functions and the same chunk
boundaries as the whole-clip path (filter chunks and render chunks on the same grid from frame
0, cut decisions and per-shot temporal windows on the same values), so the output is identical,
bit for bit, to `run_pipeline`'s (tests/test_streaming.py checks it).

Not streamed (`streaming_unsupported` says why; the CLI runs those whole-clip): faithful
colour and --save-confidence (the atlas confidence is normalised by the whole clip's median
residual, known only after every segment is fitted), a refinement with flicker_window > 0
(faithful colour sets it), and foreground masks (a two-layer atlas).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from .atlas.clip_atlas import (
    AtlasSegment,
    ClipAtlas,
    clip_layout,
    fit_segment,
    frame_brightness,
    stack_texture_previews,
)
from .atlas.neural_atlas import render_as, render_chunk_frames
from .device import resolve_device
from .errors import DeflickerInputError
from .filter.apply import filter_chunk, filter_chunk_frames, load_neural_filter
from .filter.global_colour import global_colour_log_gains
from .pipeline import INTERMEDIATE_DTYPES, STAGES, PipelineConfig
from .preflight import check_pipeline_config, load_stage_networks
from .progress import ProgressFn
from .refine.apply import RefineStepper, load_local_refine
from .refine.global_bound import bounded_change_log_gains
from .shots import (
    FLAT,
    ShotConfig,
    cuts_from_differences,
    differences_from_maps,
    shot_ranges,
    structure_maps,
)
from .temporal import apply_log_gains, frame_means

FrameSink = Callable[[torch.Tensor], None]  # receives finished frames [n,H,W,3] in order
PAIRS_PER_BLOCK = 32  # frame pairs compared at a time by the cut detection (as shots.py does)


class TensorFrames:
    """A clip already in memory [T,H,W,3] as a frame source (tests, library callers)."""

    def __init__(self, frames: torch.Tensor):
        from .clip import prepare_clip

        self.frames = prepare_clip(frames, "frames")

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.frames)


@dataclass
class ClipAnalysis:
    """What the first pass learns: frame count and size, shot starts, per-frame brightness."""

    num_frames: int
    frame_hw: tuple[int, int]
    shot_starts: list[int]
    brightness: torch.Tensor  # [T] mean luma (atlas/clip_atlas.frame_brightness)
    seconds: float = 0.0


def analyse_clip(source: Iterable[torch.Tensor], shots: ShotConfig) -> ClipAnalysis:
    """First pass over a clip given frame by frame ([H,W,3] float32 0..1): its scene cuts (the
    decision of shots.detect_scene_cuts, on the same frame differences, compared in the same
    blocks of PAIRS_PER_BLOCK pairs) and brightness.

    Memory: one block of thumbnails, and per frame three numbers kept as Python values, not
    as tensors: millions of tiny tensors kept between the frames' large temporaries fragment
    the C heap (measured: 0.7 MB of lost memory per frame of 512x288)."""
    t0 = time.perf_counter()
    block = None  # the structure maps of frames [first, first + filled)
    filled = 0
    differences: list[float] = []
    flat: list[bool] = []
    brightness: list[float] = []
    frame_hw = None
    for frame in source:
        if frame_hw is None:
            frame_hw = tuple(frame.shape[:2])
        brightness.append(float(frame_brightness(frame[None])[0]))
        if shots.scene_cuts:
            m, rms = structure_maps(frame[None])
            if block is None:
                block = torch.empty(PAIRS_PER_BLOCK + 1, m.shape[1])
            block[filled] = m[0]
            filled += 1
            flat.append(bool(rms[0] < FLAT))
            if filled == PAIRS_PER_BLOCK + 1:  # its 32 pairs are complete
                differences += differences_from_maps(block, rms)[0].tolist()
                block[0] = block[-1]
                filled = 1
    num = len(brightness)
    if num == 0:
        raise DeflickerInputError("The clip has no frames.")
    starts = [0]
    if shots.scene_cuts and num >= 2:
        if filled > 1:
            differences += differences_from_maps(block[:filled], rms)[0].tolist()
        starts = cuts_from_differences(torch.tensor(differences, dtype=torch.float32),
                                       torch.tensor(flat), shots.cut_sensitivity)
    return ClipAnalysis(num, frame_hw, starts, torch.tensor(brightness, dtype=torch.float32),
                        time.perf_counter() - t0)


def streaming_unsupported(config: PipelineConfig, masks: object = None) -> str | None:
    """Why `config` (with foreground `masks`) cannot be streamed, or None when it can."""
    stages = STAGES[: STAGES.index(config.stop_after) + 1]
    if masks is not None:
        return "foreground masks (a two-layer atlas)"
    if config.seams.enabled:
        return "chunk-seam removal (its steps are measured over the whole clip)"
    if config.confidence:
        return "the atlas confidence output (normalised by the whole clip)"
    if "filter" in stages and config.filter.faithful:
        return "faithful colour (its atlas confidence is normalised by the whole clip)"
    if "refine" in stages and config.refine.flicker_window > 0:
        return "a refinement flicker_window > 0 (its persistent-change pass)"
    return None


def stream_frames_held(config: PipelineConfig, frame_hw: tuple[int, int],
                       max_segment: int, num_frames: int | None = None) -> dict[str, int]:
    """The most frames each buffer of `stream_pipeline` holds at once (full size), for a
    longest segment of `max_segment` frames (of a clip of `num_frames`, when known): the input
    window (float32), the rendered atlas frames waiting for the filter (intermediate dtype),
    the filtered frames waiting for the global colour pass and the refined frames waiting for
    their bound (float32)."""
    render = config.render_chunk or render_chunk_frames(frame_hw)
    chunk = filter_chunk_frames(config.filter, frame_hw)
    held = {"input": max_segment + render + chunk,
            "atlas": render + chunk,
            "filtered": chunk + config.filter.global_window // 2 + 1,
            "refined": config.refine.global_window // 2 + 2}
    return {name: min(n, num_frames) if num_frames else n for name, n in held.items()}


@dataclass
class StreamResult:
    """What a streamed run reports (its frames went to the sinks)."""

    num_frames: int
    frame_hw: tuple[int, int]
    shot_starts: list[int]
    segments: list[tuple[int, int]]
    layers: int
    seconds_per_stage: dict[str, float]
    textures: torch.Tensor | None = None  # [S,h,w,3] one per segment, when asked for
    peak_frames_held: dict[str, int] = field(default_factory=dict)


class _InputWindow:
    """Decoded input frames [base, base + count) in one preallocated float32 buffer, filled
    from the source on demand and released from the front."""

    def __init__(self, source: Iterator[torch.Tensor], capacity: int, frame_hw: tuple[int, int]):
        self.source, self.capacity = source, capacity
        self.buffer = torch.empty(capacity, *frame_hw, 3)
        self.base = self.count = 0
        self.peak = 0

    def ensure(self, stop: int) -> None:
        while self.base + self.count < stop:
            if self.count == self.capacity:
                raise RuntimeError("stream input window overflow")  # a bug, not bad input
            try:
                self.buffer[self.count] = next(self.source)
            except StopIteration:
                raise DeflickerInputError(
                    f"The clip ended after {self.base + self.count} frames on its second "
                    "reading but had more on its first; it changed while it was processed."
                ) from None
            self.count += 1
            self.peak = max(self.peak, self.count)

    def release(self, before: int) -> None:
        drop = min(self.count, before - self.base)
        if drop <= 0:
            return
        for i in range(self.count - drop):  # forward copy: the target lies before the source
            self.buffer[i] = self.buffer[i + drop]
        self.base += drop
        self.count -= drop

    def view(self, start: int, stop: int) -> torch.Tensor:
        return self.buffer[start - self.base:stop - self.base]


class _ShotWindowedGains:
    """Per-frame log gains that depend on a centred window of `half` frames each side within
    the frame's shot (the global colour pass, the refinement's bound). The frames and their
    per-frame statistics arrive in order; a frame leaves, its gain applied, once the frames up
    to `half` after it have arrived or its shot has ended. `gains(stats_a, stats_b)` maps the
    statistics [n,3] of a run of frames of one shot to their log gains [n,3] (the whole-clip
    function, on the frames that matter); None: the frames pass unchanged."""

    MIN_RUN = 3  # the whole-clip functions leave shots of fewer frames as they are

    def __init__(self, shot_ranges_: list[tuple[int, int]], half: int,
                 gains: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None):
        self.shot_end = {a: b for a, b in shot_ranges_}
        self.half, self.gains = half, gains
        self.shot_start = 0
        self.stats_a: list[torch.Tensor] = []  # [3] per frame of the current shot, from base
        self.stats_b: list[torch.Tensor] = []
        self.base = 0
        self.frames: dict[int, torch.Tensor] = {}  # waiting for their gain
        self.next = 0  # the first frame without its gain

    def add(self, index: int, frame: torch.Tensor, a: torch.Tensor, b: torch.Tensor
            ) -> list[tuple[int, torch.Tensor]]:
        """Add frame `index` ([H,W,3]) with its statistics; returns the frames now final."""
        if self.gains is None:
            self.next = index + 1
            return [(index, frame)]
        if index in self.shot_end:
            self.shot_start = self.base = index
            self.stats_a, self.stats_b = [], []
        self.frames[index] = frame
        self.stats_a.append(a)
        self.stats_b.append(b)
        known = index + 1
        shot_end = self.shot_end[self.shot_start]
        last = known if known == shot_end else known - self.half
        if last <= self.next or (known < shot_end and known - self.shot_start < self.MIN_RUN):
            return []
        # Frames [next, last) need the statistics from `half` before them (or the shot's
        # start) to `half` after them (or the shot's end): a slice of the shot's. Its own edges
        # (replicated by the temporal filters) lie `half` or more from every frame released.
        lo = max(self.shot_start, self.next - self.half)
        rows = slice(lo - self.base, known - self.base)
        gains = self.gains(torch.stack(self.stats_a[rows]), torch.stack(self.stats_b[rows]))
        done = []
        for i in range(self.next, last):
            frame = self.frames.pop(i)
            apply_log_gains(frame[None], gains[i - lo][None])
            done.append((i, frame))
        self.next = last
        # What a later slice needs: from `half` before the next frame on.
        drop = max(0, self.next - self.half - self.base)
        if drop > 4 * (self.half + 1):  # trim now and then (the lists are small anyway)
            self.stats_a, self.stats_b = self.stats_a[drop:], self.stats_b[drop:]
            self.base += drop
        return done


def stream_pipeline(
    source: Iterable[torch.Tensor],
    config: PipelineConfig | None = None,
    write_output: FrameSink | None = None,
    *,
    write_atlas_frames: FrameSink | None = None,
    keep_textures: bool = False,
    analysis: ClipAnalysis | None = None,
    on_progress: ProgressFn | None = None,
) -> StreamResult:
    """Deflicker a clip given as a re-iterable frame source (`video_io.FrameStream`,
    `TensorFrames`: each iteration yields its frames [H,W,3] float32 0..1 from the first) into
    `write_output`, frame runs in order; the same output as `run_pipeline` (module docstring).

    `write_atlas_frames` receives the atlas frames (in the config's intermediate dtype, float32
    when the run stops after the atlas), `keep_textures` keeps every segment's texture preview
    (StreamResult.textures). `analysis`: the first pass, when the caller has run it already.
    """
    cfg = config or PipelineConfig()
    check_pipeline_config(cfg)  # config.in_place does not apply: there is no clip to overwrite
    reason = streaming_unsupported(cfg)
    if reason is not None:
        raise DeflickerInputError(f"Streaming does not support {reason}; use run_pipeline.")
    stages = STAGES[: STAGES.index(cfg.stop_after) + 1]
    load_stage_networks(cfg)
    timer = _StageTimer()
    with timer("atlas"):
        analysis = analysis or analyse_clip(source, cfg.shots)
    run = _Stream(cfg, stages, analysis, write_output, write_atlas_frames, on_progress, timer)
    run.keep_textures = keep_textures
    run.run(iter(source))
    return StreamResult(
        analysis.num_frames, analysis.frame_hw, analysis.shot_starts, run.layout,
        max(run.layers) if run.layers else 1, timer.seconds,
        stack_texture_previews(run.textures) if keep_textures else None, run.peaks())


class _StageTimer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[stage] = timer.seconds.get(stage, 0.0) + time.perf_counter() \
                    - self.t0

        return _Span()


class _Stream:
    """The state of one streamed run: the buffers between the stages and their positions."""

    def __init__(self, cfg: PipelineConfig, stages: tuple[str, ...], analysis: ClipAnalysis,
                 write_output: FrameSink | None, write_atlas: FrameSink | None,
                 on_progress: ProgressFn | None, timer: _StageTimer):
        self.cfg, self.stages, self.analysis, self.timer = cfg, stages, analysis, timer
        self.write_output = write_output or (lambda frames: None)
        self.write_atlas, self.on_progress = write_atlas, on_progress
        t, hw = analysis.num_frames, analysis.frame_hw
        self.t, self.hw = t, hw
        self.layout = clip_layout(analysis.shot_starts, t, cfg.shots)
        self.shots = shot_ranges(analysis.shot_starts, t)
        self.shot_starts = set(analysis.shot_starts)
        self.atlas_dtype = torch.float32 if stages == ("atlas",) \
            else INTERMEDIATE_DTYPES[cfg.intermediate_dtype]
        self.render_device = resolve_device(cfg.atlas.device)
        self.render_chunk = cfg.render_chunk or render_chunk_frames(hw)
        self.filter_chunk = filter_chunk_frames(cfg.filter, hw)
        self.layers: list[int] = []
        self.keep_textures = False
        self.textures: list[torch.Tensor] = []
        self.segments: list[AtlasSegment] = []  # the ones a render may still need
        self.rendered = 0  # frames [0, rendered) are rendered
        self.filtered = 0  # ... filtered
        self.atlas_frames: dict[int, torch.Tensor] = {}  # rendered, not yet filtered
        self.peak = {"atlas": 0, "filtered": 0, "refined": 0}
        self.written = 0
        if "filter" in stages:
            self.filter_net = load_neural_filter(cfg.filter)
            strength, window = cfg.filter.flicker.strength, cfg.filter.global_window
            # As in apply_neural_filter / stabilise_global_colour: no colour pass at strength 0,
            # with a window <= 1 or on a clip of fewer than 3 frames.
            active = strength != 0.0 and window > 1 and t >= 3
            self.colour_pass = _ShotWindowedGains(
                self.shots, window // 2,
                (lambda means, atlas, window=window: global_colour_log_gains(
                    means, atlas, window, strength=strength)) if active else None)
        if "refine" in stages:
            self.stepper = RefineStepper(load_local_refine(cfg.refine), cfg.refine, hw)
            window = cfg.refine.global_window
            active = cfg.refine.strength != 0.0 and window > 1 and t >= 2
            self.bound = _ShotWindowedGains(
                self.shots, window // 2,
                (lambda means, reference, window=window: bounded_change_log_gains(
                    means, reference, window))
                if active else None)
        max_segment = max(b - a for a, b in self.layout)
        held = stream_frames_held(cfg, hw, max_segment, t)
        self.window_capacity = held["input"]
        fit_frames = sum(b - a for a, b in self.layout)
        self.work_total = 3 * fit_frames + 2 * t
        self.fit_done = 0

    # Progress: the fit counts 3 per frame, every frame written 2.
    def _report(self) -> None:
        if self.on_progress is not None:
            done = 3 * self.fit_done + 2 * self.written
            self.on_progress(min(1000, round(1000 * done / self.work_total)), 1000)

    def peaks(self) -> dict[str, int]:
        return {"input": self.window.peak, **self.peak}

    def run(self, frames: Iterator[torch.Tensor]) -> None:
        self.window = _InputWindow(frames, self.window_capacity, self.hw)
        for k, (a, b) in enumerate(self.layout):
            # The input frames still needed: this segment's, and those not yet filtered.
            self.window.release(min(a, self.filtered) if "filter" in self.stages else a)
            with self.timer("atlas"):
                self.window.ensure(b)
                previous = self.segments[-1] if self.segments else None
                segment = fit_segment(self.window.view(a, b), a, self.cfg.atlas,
                                      self.analysis.brightness[a:b], previous,
                                      lambda d, t, n=b - a: self._report_fit(d, t, n))
            self.fit_done += b - a
            self.layers.append(segment.atlas.num_layers)
            if self.keep_textures:
                self.textures.append(segment.atlas.texture_preview())
            # A render may still need the segments that end after the frames rendered so far.
            self.segments = [s for s in self.segments if s.stop > self.rendered] + [segment]
            nxt = self.layout[k + 1] if k + 1 < len(self.layout) else None
            # Frames shared with the next segment are blended with it: they wait for its fit.
            self._advance(nxt[0] if nxt is not None and nxt[0] < b else b)
        if self.written != self.t:
            raise RuntimeError(f"stream wrote {self.written} of {self.t} frames")  # a bug

    def _report_fit(self, d: int, t: int, size: int) -> None:
        if self.on_progress is not None:
            part = size * (d / t if t else 1.0)
            done = 3 * (self.fit_done + part) + 2 * self.written
            self.on_progress(min(1000, round(1000 * done / self.work_total)), 1000)

    def _advance(self, final: int) -> None:
        """Render frames up to `final` (whole render chunks), then run the later stages as far
        as their inputs allow."""
        view = ClipAtlas(self.cfg.atlas, self.cfg.shots, self.t, self.hw,
                         self.analysis.shot_starts, self.segments)
        while self.rendered < final:
            start = self.rendered
            stop = min(start + self.render_chunk, self.t)
            if stop > final:
                break
            with self.timer("atlas"):
                part = render_as(view, start, stop, self.render_device, self.atlas_dtype)
            if self.write_atlas is not None:
                self.write_atlas(part)
            if self.stages == ("atlas",):
                self._write(part)
            else:
                for i in range(start, stop):
                    self.atlas_frames[i] = part[i - start]
                self.peak["atlas"] = max(self.peak["atlas"], len(self.atlas_frames))
            self.rendered = stop
            if "filter" in self.stages:
                self._filter()  # at once: rendered frames wait for less than a filter chunk

    def _filter(self) -> None:
        while self.filtered < self.rendered:
            start = self.filtered
            stop = min(start + self.filter_chunk, self.t)
            if stop > self.rendered:
                break
            with self.timer("filter"):
                atlas = torch.stack([self.atlas_frames.pop(i) for i in range(start, stop)])
                # A normal tensor (the net's output is an inference tensor): gains apply in place.
                filtered = filter_chunk(self.filter_net, self.window.view(start, stop), atlas,
                                        0, stop - start, self.cfg.filter).clone()
                means, atlas_means = frame_means(filtered), frame_means(atlas)
                ready = []
                for i in range(start, stop):
                    ready += self.colour_pass.add(i, filtered[i - start], means[i - start],
                                                  atlas_means[i - start])
                self.peak["filtered"] = max(self.peak["filtered"],
                                            len(self.colour_pass.frames) + len(ready))
            self.filtered = stop
            for i, frame in ready:
                if "refine" in self.stages:
                    self._refine(i, frame)
                else:
                    self._write(frame[None])

    def _refine(self, index: int, frame: torch.Tensor) -> None:
        with self.timer("refine"):
            refined, input_means, _ = self.stepper.step(frame[None], 0, index in self.shot_starts,
                                                        lambda: None)
            refined = refined.clone()  # a normal tensor, as above
            ready = self.bound.add(index, refined, frame_means(refined[None])[0], input_means)
            self.peak["refined"] = max(self.peak["refined"], len(self.bound.frames) + len(ready))
        for _, out in ready:
            self._write(out[None])

    def _write(self, frames: torch.Tensor) -> None:
        self.write_output(frames)
        self.written += frames.shape[0]
        self._report()
