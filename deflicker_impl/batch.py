"""Many clips: `python -m deflicker_impl batch INPUTS... --out DIR [deflicker options]`.

Every clip goes through the same function, `process_clip` (read, deflicker, measure, write the
output and its report), run in this process (`--workers 1`), in a pool of local processes
(`--workers N`) or as Ray tasks on an existing cluster (`--ray ADDRESS`). The scheduling is the
executor's own (concurrent.futures, Ray); this module only plans the jobs and keeps the books.

What lands in DIR:
- one output per clip, named like its input (plus `--suffix`, in `--ext`'s format);
- reports/<output name>.json per clip: frames, size, fps, shots, seconds per stage, flicker index
  and warping error before/after, or the error that stopped it;
- summary.csv: one row per clip of the last run (done, skipped, failed);
- manifest.json: what is finished, keyed by output name, with the input's fingerprint (size and
  mtime) and the options' fingerprint. A rerun skips a clip only when both are unchanged and the
  output is still there; failed and unfinished clips are redone.

Only the parent process writes the manifest and the summary; a worker writes its own clip's
output and report. The batch writes through the one output-safety path of every command
(output_safety): outputs are checked before any work (kind, writability, collisions between
all clips' outputs and inputs, existing frame folders only replaced with --overwrite or when
this batch made them), each clip's up-front checks are the deflicker command's own
(preflight.check_deflicker_job: options, device, weights, the clip's header, memory), and every
file is written to a hidden sibling and renamed into place, so a killed run leaves complete
files or none (a hidden leftover is removed by the next run).
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from .errors import DeflickerCancelled, DeflickerInputError
from .output_safety import (
    OutputTransaction,
    check_output_collisions,
    output_target,
    remove_leftovers,
    write_text_atomically,
)
from .pipeline import PipelineConfig
from .preflight import (
    GIB,
    available_memory_bytes,
    check_deflicker_job,
    check_pipeline_config,
    load_stage_networks,
)
from .threads import choose_threads, parse_thread_count, set_threads
from .video_io import ANIMATED_IMAGE_SUFFIXES, FRAME_SUFFIXES, VIDEO_SUFFIXES

MANIFEST_NAME = "manifest.json"
SUMMARY_NAME = "summary.csv"
REPORTS_DIR = "reports"
CLIP_SUFFIXES = VIDEO_SUFFIXES + ANIMATED_IMAGE_SUFFIXES
LIST_SUFFIXES = (".txt", ".list")
OUTPUT_FORMATS = ("same", "folder", ".mp4", ".mov", ".mkv", ".webm", ".gif", ".webp")
SUMMARY_COLUMNS = ("clip", "status", "error", "input", "output", "frames", "width", "height",
                   "fps", "shots", "seconds", "seconds_atlas", "seconds_filter", "seconds_refine",
                   "flicker_index_before", "flicker_index_after", "warping_error_before",
                   "warping_error_after")


@dataclass(frozen=True)
class ClipJob:
    """One clip of a batch; all paths absolute (workers may run elsewhere on a shared disk)."""

    name: str  # the output's file or folder name, unique in the batch: the manifest's key
    input: str
    output: str
    report: str
    overwrite: bool = False  # an existing frame folder at `output` may be replaced


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs besides its clip (picklable: it travels to processes and Ray)."""

    config: PipelineConfig
    threads: int  # torch/OpenCV threads per worker
    max_clip_bytes: int  # refuse a clip whose estimated peak memory exceeds this; 0 = no limit
    run_id: str  # marks the reports this run started (to tell which clip a dead worker held)
    show_clip_progress: bool = False  # a progress bar per clip (only when run in this process)
    allow_truncated: bool = False  # read a truncated video (with a warning in its report)
    memory_option: str = "--max-clip-gb"  # how the memory limit is named in a refusal


@dataclass
class BatchResult:
    """Counts of one run and where its books are."""

    total: int
    done: int
    skipped: int
    failed: int
    out_dir: Path

    @property
    def all_succeeded(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict:
        return {"clips": self.total, "done": self.done, "skipped": self.skipped,
                "failed": self.failed, "summary": str(self.out_dir / SUMMARY_NAME),
                "manifest": str(self.out_dir / MANIFEST_NAME)}


# -- inputs ------------------------------------------------------------------------------------

def _is_frame_folder(path: Path) -> bool:
    return any(p.suffix.lower() in FRAME_SUFFIXES and p.is_file() for p in path.iterdir())


def _clips_in_folder(path: Path) -> list[Path]:
    """A folder of frames is one clip; any other folder holds clips (video files and folders
    of frames, one level deep)."""
    if _is_frame_folder(path):
        return [path]
    found = sorted(p for p in path.iterdir()
                   if (p.is_file() and p.suffix.lower() in CLIP_SUFFIXES)
                   or (p.is_dir() and not p.name.startswith(".") and _is_frame_folder(p)))
    if not found:
        raise DeflickerInputError(
            f"Folder {path} holds no clips (video files {', '.join(CLIP_SUFFIXES)} or folders "
            "of frames); point at the clips themselves or at a folder that holds them.")
    return found


def _expand_one(item: str, base: Path, source: str) -> list[Path]:
    path = Path(item).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(ch in item for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not matches:
            raise DeflickerInputError(f"Pattern {item!r} ({source}) matches nothing; check it "
                                      "(quote it so that the shell does not expand it).")
        return [clip for match in matches for clip in
                (_clips_in_folder(match) if match.is_dir() else [match])]
    if not path.exists():
        raise DeflickerInputError(f"Input {path} ({source}) does not exist; fix the path or "
                                  "remove it from the inputs.")
    if path.is_dir():
        return _clips_in_folder(path)
    if path.suffix.lower() in LIST_SUFFIXES:
        return _read_list(path)
    return [path]


def _read_list(path: Path) -> list[Path]:
    """A text file naming one input per line (paths relative to the file; globs allowed; blank
    lines and lines starting with # ignored)."""
    clips = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        item = line.strip()
        if item and not item.startswith("#"):
            clips += _expand_one(item, path.parent, f"line {number} of {path}")
    return clips


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """The clips that INPUTS name, in order, each once: video files, folders of frames, folders
    of clips, glob patterns and text files listing any of these."""
    clips: list[Path] = []
    seen = set()
    for item in inputs:
        for clip in _expand_one(item, Path.cwd(), "command line"):
            key = clip.resolve()
            if key not in seen:
                seen.add(key)
                clips.append(key)
    if not clips:
        raise DeflickerInputError("No inputs given: name video files, folders, globs or a list.")
    return clips


def output_name(clip: Path, suffix: str, output_format: str) -> str:
    """The output's name for a clip: its own name plus `suffix`, in `output_format` ("same":
    the input's format; "folder": a folder of PNG frames; or a file extension)."""
    is_folder = clip.is_dir()
    stem = clip.name if is_folder else clip.stem
    if output_format == "same":
        ext = "" if is_folder else clip.suffix
    elif output_format == "folder":
        ext = ""
    else:
        ext = output_format
    return f"{stem}{suffix}{ext}"


def plan_jobs(clips: list[Path], out_dir: Path, suffix: str = "",
              output_format: str = "same", overwrite: bool = False,
              batch_outputs: Iterable[str] = (),
              other_inputs: dict[str, str | os.PathLike | None] | None = None) -> list[ClipJob]:
    """One job per clip; refuses (before any work) outputs that collide or overwrite an input.

    Besides the batch's own naming rules, every output goes through output_safety's checks, as
    the deflicker command's do: its kind, its folder's writability, an existing frame folder
    (replaced only with `overwrite` or when it is one of `batch_outputs`, the names this batch
    wrote before), and no output colliding with another or with any input (every clip, and
    `other_inputs` such as the weights files), through links and relative paths too."""
    if output_format not in OUTPUT_FORMATS:
        raise DeflickerInputError(f"Unknown output format {output_format!r}; choose one of "
                                  f"{', '.join(OUTPUT_FORMATS)}.")
    out_dir = out_dir.resolve()
    inputs = {clip.resolve() for clip in clips}
    by_name: dict[str, Path] = {}
    owned = set(batch_outputs)
    jobs = []
    for clip in clips:
        name = output_name(clip, suffix, output_format)
        if name in (MANIFEST_NAME, SUMMARY_NAME, REPORTS_DIR):
            raise DeflickerInputError(f"Input {clip} would write {out_dir / name}, which the "
                                      "batch keeps its books in; rename the input or use --suffix.")
        if name in by_name:
            raise DeflickerInputError(
                f"Inputs {by_name[name]} and {clip} would both write {out_dir / name}; rename one, "
                "or run them into different --out folders.")
        by_name[name] = clip
        output = out_dir / name
        if output in inputs:
            raise DeflickerInputError(f"Output {output} would overwrite the input; give another "
                                      "--out folder or a --suffix.")
        jobs.append(ClipJob(name, str(clip), str(output),
                            str(out_dir / REPORTS_DIR / f"{name}.json"),
                            overwrite=overwrite or name in owned))
    targets = [output_target(f"output of {Path(job.input).name}", job.output, None,
                             job.overwrite) for job in jobs]
    inputs = {f"input {number}": clip for number, clip in enumerate(clips, start=1)}
    check_output_collisions(targets, {**inputs, **(other_inputs or {})})
    return jobs


def check_out_dir(out_dir: Path) -> None:
    """Refuse, without creating anything, a DIR that is a file or lies below a file or a folder
    that cannot be written."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise DeflickerInputError(f"--out {out_dir} is a file; give a folder (it is created if "
                                  "missing).")
    ancestor = out_dir.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DeflickerInputError(f"--out {out_dir} cannot be written ({ancestor} is a file); "
                                  "choose a folder you can write to.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DeflickerInputError(f"--out {out_dir} cannot be written (folder {ancestor} is "
                                  "not writable); choose a folder you can write to.")


def prepare_out_dir(out_dir: Path) -> Path:
    """Create DIR (and its reports/ folder) or fail with what is wrong with it."""
    out_dir = Path(out_dir).expanduser()
    check_out_dir(out_dir)
    try:
        (out_dir / REPORTS_DIR).mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DeflickerInputError(f"--out {out_dir} cannot be written ({exc.strerror or exc}); "
                                  "choose a folder you can write to.") from exc
    return out_dir.resolve()


# -- fingerprints and the manifest -------------------------------------------------------------

def input_fingerprint(path: str | os.PathLike) -> str:
    """Changes when the clip changes: size and modification time of the file, or of every file
    of a folder of frames (names included)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        listing = "\n".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    else:
        stat = path.stat()
        listing = f"{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def options_fingerprint(config: PipelineConfig) -> str:
    """Changes when anything that shapes the output changes: the pipeline configuration, the
    weights files it reads and the library's version."""
    from . import __version__

    weights = []
    for stage in (config.filter, config.refine):
        path = stage.resolved_weights_path()
        stat = path.stat() if path.is_file() else None
        weights.append([str(path), stat and stat.st_size, stat and stat.st_mtime_ns])
    text = json.dumps([__version__, dataclasses.asdict(config), weights], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Manifest:
    """DIR/manifest.json: per output name, the status of the last attempt and the fingerprints
    it was made with. Saved (atomically) after every change."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST_NAME
        self.clips: dict[str, dict] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self.clips = dict(data["clips"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DeflickerInputError(
                    f"{self.path} is damaged ({exc}); delete it to redo every clip.") from exc

    def is_done(self, job: ClipJob, input_key: str, options_key: str) -> bool:
        entry = self.clips.get(job.name, {})
        return (entry.get("status") == "done" and entry.get("input") == job.input
                and entry.get("input_fingerprint") == input_key
                and entry.get("options_fingerprint") == options_key
                and Path(job.output).exists() and Path(job.report).is_file())

    def record(self, job: ClipJob, status: str, input_key: str, options_key: str,
               error: str | None = None, save: bool = True) -> None:
        self.clips[job.name] = {"status": status, "input": job.input, "output": job.output,
                                "report": job.report, "input_fingerprint": input_key,
                                "options_fingerprint": options_key, "error": error,
                                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if save:
            self.save()

    def save(self) -> None:
        write_text_atomically(self.path, json.dumps({"version": 1, "clips": self.clips},
                                                     indent=1))


# -- one clip ----------------------------------------------------------------------------------

def _write_report(job: ClipJob, report: dict) -> None:
    Path(job.report).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(job.report, json.dumps(report, indent=1))


def process_clip(job: ClipJob, settings: BatchSettings) -> dict:
    """Deflicker one clip into job.output and write its report; return the report.

    Failures of the clip (corrupt, unreadable, too large, anything raised while processing it)
    come back as a report with status "failed" and the error; only an interruption propagates.
    """
    from .evaluation.report import measure
    from .pipeline import run_pipeline
    from .video_io import read_clip

    start = time.perf_counter()
    report: dict = {"clip": job.name, "input": job.input, "output": job.output,
                    "status": "running", "run_id": settings.run_id,
                    "worker": {"host": socket.gethostname(), "pid": os.getpid(),
                               "threads": settings.threads}}
    _write_report(job, report)  # tells the parent which clip a worker held if it dies
    try:
        # The deflicker command's up-front checks, for this clip: its header, its output, its
        # memory (with the second decoding for the report), options, device and weights.
        limit = settings.max_clip_bytes / GIB if settings.max_clip_bytes else None
        checked = check_deflicker_job(job.input, settings.config, job.output,
                                      overwrite=job.overwrite, memory_limit_gb=limit,
                                      memory_option=settings.memory_option, measure_input=True)
        clip = read_clip(job.input, allow_truncated=settings.allow_truncated)
        if clip.missing_frames:
            report["warning"] = (f"truncated input: read {clip.num_frames} of the "
                                 f"{clip.declared_frames} frames it declares (--allow-truncated)")
        t, h, w, _ = clip.frames.shape
        on_progress = None
        if settings.show_clip_progress:
            from .progress import TerminalProgress

            on_progress = TerminalProgress(f"  {job.name}")
        result = run_pipeline(clip.frames, dataclasses.replace(settings.config, in_place=True),
                              on_progress, threads=settings.threads)
        # The decoded input was overwritten by the output: decode it again to measure.
        before = read_clip(job.input, allow_truncated=settings.allow_truncated).frames
        scores = measure(result.frames, before, flow_from="compare_to")
        with OutputTransaction() as outputs:
            outputs.write(checked.targets["OUTPUT"], result.frames, clip.fps)
            outputs.commit()
        report.update({
            "status": "done", "frames": t, "width": w, "height": h, "fps": float(clip.fps),
            "fps_exact": str(clip.fps), "shot_starts": result.atlas.shot_starts,
            "shots": len(result.atlas.shot_starts), "segments": result.atlas.segment_ranges(),
            "seconds_per_stage": result.seconds_per_stage,
            "flicker_index": {"before": scores.compare_to.flicker_index,
                              "after": scores.images.flicker_index},
            "warping_error": {"before": scores.compare_to.warping_error,
                              "after": scores.images.warping_error},
            "metrics_units": "8-bit levels, flow from the input; lower is steadier",
        })
    except DeflickerCancelled:
        raise KeyboardInterrupt from None  # a stop request, not a failure of the clip
    except DeflickerInputError as exc:
        report.update(status="failed", error=str(exc))
    except MemoryError:
        report.update(status="failed", error="ran out of memory; use fewer --workers or a "
                                             "smaller --max-clip-gb so that it is refused early.")
    except Exception as exc:  # noqa: BLE001  (one bad clip must not stop the batch)
        report.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    from .weights import networks_loaded

    report["worker"]["networks_loaded"] = networks_loaded()
    report["seconds"] = time.perf_counter() - start
    _write_report(job, report)
    return report


# -- executors ---------------------------------------------------------------------------------

Outcome = Callable[[ClipJob, dict], None]


class _Terminated(SystemExit):
    """Raised in a worker by SIGTERM: unwinds the clip (its hidden partial files are removed)."""


def _on_sigterm(signum, frame):
    raise _Terminated(128 + signum)


def _start_worker(settings: BatchSettings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, _on_sigterm)
    set_threads(settings.threads)
    load_stage_networks(settings.config)


def _clip_in_worker(job: ClipJob, settings: BatchSettings) -> dict:
    try:
        return process_clip(job, settings)
    except _Terminated as stop:
        # Stopped by the parent (Ctrl-C, or the pool shutting down after another worker died):
        # say so, so that the clip is not taken for the one that killed its worker.
        _write_report(job, {"clip": job.name, "status": "interrupted",
                            "run_id": settings.run_id})
        os._exit(stop.code)  # not back into the pool's loop: the parent is shutting it down


def _run_here(jobs: list[ClipJob], settings: BatchSettings, on_outcome: Outcome,
              on_start: Callable[[int, ClipJob], None]) -> None:
    set_threads(settings.threads)
    for number, job in enumerate(jobs, start=1):
        on_start(number, job)
        on_outcome(job, process_clip(job, settings))


def _report_of_run(job: ClipJob, run_id: str, status: str) -> dict | None:
    """The clip's report when this run wrote it with `status`, else None (none, unreadable,
    another run's or another status)."""
    try:
        report = json.loads(Path(job.report).read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("run_id") == run_id and report.get("status") == status else None


def _finished_report(job: ClipJob, run_id: str) -> dict | None:
    """The report of a clip this run finished (its output is in place), or None."""
    report = _report_of_run(job, run_id, "done")
    return report if report is not None and Path(job.output).is_file() else None


def _crashed_report(job: ClipJob, run_id: str) -> dict | None:
    """The report of a clip a worker had started in this run and never finished, or None."""
    report = _report_of_run(job, run_id, "running")
    if report is not None:
        output = Path(job.output)
        remove_leftovers(output.parent, output.name)
        report.update(status="failed", error="the worker process died while processing this "
                      "clip (killed by the system, e.g. out of memory); try it alone with "
                      "--workers 1 or lower --max-clip-gb to refuse such clips early.")
        _write_report(job, report)
        return report
    return None


def _run_in_processes(jobs: list[ClipJob], settings: BatchSettings, workers: int,
                      on_outcome: Outcome) -> None:
    context = multiprocessing.get_context("spawn")  # no forked copies of torch's thread pools
    todo = list(jobs)
    while todo:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(settings,))
        futures = {pool.submit(_clip_in_worker, job, settings): job for job in todo}
        unfinished = list(todo)
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    continue  # sorted out below, once every future has failed
                except Exception as exc:  # noqa: BLE001  (e.g. its report could not be written)
                    outcome = {"status": "failed", "clip": job.name,
                               "error": f"{type(exc).__name__}: {exc}"}
                unfinished.remove(job)
                on_outcome(job, outcome)
        except BaseException:
            _stop_workers()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        # A worker died (the OOM killer, a crash in native code): the clips it held fail, the
        # others go to a fresh pool.
        todo = []
        for job in unfinished:
            crashed = _crashed_report(job, settings.run_id)
            if crashed is not None:
                on_outcome(job, crashed)
            else:
                todo.append(job)
        if todo and len(todo) == len(unfinished):
            for job in todo:  # nothing identifiable was running: do not loop forever
                on_outcome(job, {"status": "failed", "clip": job.name, "error":
                                 "the worker processes could not start or died at once; run "
                                 "with --workers 1 to see why."})
            todo = []


def _stop_workers() -> None:
    """Terminate this process's worker processes (SIGTERM: each removes its partial files)."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)


def connect_ray(address: str):
    """Connect to an existing Ray cluster (`auto` or the head's host:port), or fail with one line
    that says what to do. Returns the `ray` module."""
    try:
        import ray
    except ImportError as exc:
        raise DeflickerInputError(
            "--ray needs the Ray package: pip install 'comfyui-neural-atlas-deflicker[ray]' "
            "(or pip install ray) in this environment and on the cluster.") from exc
    if address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise DeflickerInputError(f"--ray {address!r} is not an address: give the head "
                                      "node's host:port (e.g. 10.0.0.5:6379) or 'auto'.")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise DeflickerInputError(
                f"Cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with "
                "`ray start --head` or give its head's host:port (or 'auto').") from exc
    # The workers import this package from where it lies here (a shared disk or the same path
    # on every node), unless it is installed there.
    package_root = str(Path(__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    try:
        ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
                 logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DeflickerInputError(f"Cannot connect to the Ray cluster at {address}: "
                                  f"{first_line}; check the address (`ray status` on the "
                                  "head prints it).") from exc
    return ray


def _clip_in_ray_task(job: ClipJob, settings: BatchSettings) -> dict:
    # A Ray worker process runs many tasks: threads are set and networks loaded once per process.
    set_threads(settings.threads)
    load_stage_networks(settings.config)
    return process_clip(job, settings)


def _run_on_ray(jobs: list[ClipJob], settings: BatchSettings, ray, on_outcome: Outcome) -> None:
    task = ray.remote(num_cpus=settings.threads, max_retries=0)(_clip_in_ray_task)
    refs = {task.remote(job, settings): job for job in jobs}
    pending = list(refs)
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                job = refs[ref]
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001  (a worker that died, say)
                    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    outcome = _crashed_report(job, settings.run_id) or {
                        "status": "failed", "clip": job.name, "error": f"Ray task failed: "
                        f"{first_line}"}
                on_outcome(job, outcome)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


# -- the batch ---------------------------------------------------------------------------------

def default_threads(workers: int, warn: Callable[[str], None] | None = None) -> int:
    """Threads per worker when --threads is not given: DEFLICKER_THREADS, else the pack's
    automatic choice (the CPUs not busy with other work) shared by the workers, at least 1."""
    choice = choose_threads(None, warn=warn)
    return max(1, choice.count // workers) if choice.automatic else choice.count


def _summary_row(job: ClipJob, report: dict, status: str) -> dict:
    def rounded(value, digits: int):
        return round(value, digits) if isinstance(value, float) else ("" if value is None
                                                                      else value)

    seconds = report.get("seconds_per_stage") or {}
    flicker, warp = report.get("flicker_index") or {}, report.get("warping_error") or {}
    return {"clip": job.name, "status": status, "error": report.get("error") or "",
            "input": job.input, "output": job.output if status != "failed" else "",
            "frames": report.get("frames", ""), "width": report.get("width", ""),
            "height": report.get("height", ""), "fps": rounded(report.get("fps"), 3),
            "shots": report.get("shots", ""), "seconds": rounded(report.get("seconds"), 2),
            **{f"seconds_{stage}": rounded(seconds.get(stage), 2) for stage in
               ("atlas", "filter", "refine")},
            "flicker_index_before": rounded(flicker.get("before"), 4),
            "flicker_index_after": rounded(flicker.get("after"), 4),
            "warping_error_before": rounded(warp.get("before"), 4),
            "warping_error_after": rounded(warp.get("after"), 4)}


def _write_summary(out_dir: Path, rows: dict[str, dict], order: list[ClipJob]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for job in order:
        if job.name in rows:
            writer.writerow(rows[job.name])
    write_text_atomically(out_dir / SUMMARY_NAME, buffer.getvalue())


def run_batch(inputs: Iterable[str], out_dir: str | os.PathLike, config: PipelineConfig, *,
              suffix: str = "", output_format: str = "same", workers: int = 1,
              threads: int | str | None = 0, ray_address: str | None = None, max_clip_gb: float = 0.0,
              overwrite: bool = False, allow_truncated: bool = False,
              log: Callable[[str], None] | None = None, clip_progress: bool = False
              ) -> BatchResult:
    """Deflicker every clip that `inputs` name into `out_dir` (see the module docstring).

    Everything that can be checked before the work is (paths, collisions, the output folder,
    weights, the Ray address): such a mistake raises DeflickerInputError and changes nothing.
    A clip that fails is recorded and the batch goes on.
    """
    log = log or (lambda line: None)
    if workers < 1:
        raise DeflickerInputError(f"--workers must be at least 1 (got {workers}): the number of "
                                  "clips processed at once on this machine.")
    if ray_address is not None and workers != 1:
        raise DeflickerInputError("--workers is for this machine; with --ray the cluster's CPUs "
                                  "decide how many clips run at once (see --threads).")
    threads = parse_thread_count(threads, "--threads")
    if max_clip_gb < 0:
        raise DeflickerInputError(f"--max-clip-gb must be 0 (automatic) or more, got "
                                  f"{max_clip_gb}.")
    if os.sep in suffix or "/" in suffix:
        raise DeflickerInputError(f"--suffix {suffix!r} must be part of a file name, without "
                                  "a folder separator.")
    check_pipeline_config(config)  # option ranges and devices, as the deflicker command does
    clips = expand_inputs(inputs)
    out_dir = Path(out_dir).expanduser()
    check_out_dir(out_dir)
    earlier = Manifest(out_dir.resolve()).clips if out_dir.is_dir() else {}
    jobs = plan_jobs(clips, out_dir, suffix, output_format, overwrite=overwrite,
                     batch_outputs=earlier,
                     other_inputs={"--filter-weights": config.filter.weights_path,
                                   "--refine-weights": config.refine.weights_path})
    load_stage_networks(config)  # a missing weights file fails here, before any clip
    ray = connect_ray(ray_address) if ray_address is not None else None
    out = prepare_out_dir(Path(out_dir))
    threads = threads or (1 if ray is not None else default_threads(
        workers, warn=lambda message: log(f"warning: {message}")))
    if max_clip_gb:
        max_clip_bytes = int(max_clip_gb * GIB)
    else:  # local: what is free now, shared by the workers; Ray: each node judges its own
        max_clip_bytes = 0 if ray is not None else (available_memory_bytes() or 0) // workers
    memory_option = ("--max-clip-gb" if max_clip_gb else
                     "--max-clip-gb (default: the memory available now divided by --workers)")
    settings = BatchSettings(config, threads, max_clip_bytes, uuid.uuid4().hex,
                             show_clip_progress=clip_progress and workers == 1 and ray is None,
                             allow_truncated=allow_truncated, memory_option=memory_option)
    lock = _BatchLock(out)
    try:
        return _run_locked(jobs, out, settings, workers=workers, ray=ray,
                           ray_address=ray_address, log=log)
    finally:
        if ray is not None:
            ray.shutdown()
        lock.release()


def _run_locked(jobs: list[ClipJob], out: Path, settings: BatchSettings, *, workers: int, ray,
                ray_address: str | None, log: Callable[[str], None]) -> BatchResult:
    manifest = Manifest(out)
    for folder in (out, out / REPORTS_DIR):  # of a run killed outright (SIGKILL, power cut)
        remove_leftovers(folder)
    options_key = options_fingerprint(settings.config)
    threads = settings.threads

    rows: dict[str, dict] = {}
    todo: list[ClipJob] = []
    input_keys = {}
    for job in jobs:
        input_keys[job.name] = input_fingerprint(job.input)
        if manifest.is_done(job, input_keys[job.name], options_key):
            report = json.loads(Path(job.report).read_text())
            rows[job.name] = _summary_row(job, report, "skipped")
        else:
            todo.append(job)
    counts = {"done": 0, "failed": 0}
    where = (f"Ray cluster {ray_address}, {threads} thread(s) per task" if ray is not None
             else f"{workers} worker(s) x {threads} thread(s)")
    log(f"batch: {len(jobs)} clips, {len(rows)} finished earlier, {len(todo)} to do on {where}")
    _write_summary(out, rows, jobs)

    def on_outcome(job: ClipJob, report: dict) -> None:
        status = "done" if report.get("status") == "done" else "failed"
        counts[status] += 1
        manifest.record(job, status, input_keys[job.name], options_key, report.get("error"))
        rows[job.name] = _summary_row(job, report, status)
        _write_summary(out, rows, jobs)
        finished = counts["done"] + counts["failed"]
        left = [j.name for j in todo if j.name not in rows]
        line = f"[{finished}/{len(todo)}] {job.name}: "
        if status == "done":
            line += (f"done in {report.get('seconds', 0):.1f} s, flicker index "
                     f"{report['flicker_index']['before']:.2f} -> "
                     f"{report['flicker_index']['after']:.2f}")
        else:
            line += f"FAILED: {report.get('error')}"
        if left and (workers > 1 or ray is not None):
            line += f" | working on: {', '.join(left[:workers if ray is None else 4])}"
            line += " ..." if len(left) > (workers if ray is None else 4) else ""
        log(line)

    def on_start(number: int, job: ClipJob) -> None:
        log(f"[{number}/{len(todo)}] {job.name} ...")

    for job in todo:
        manifest.record(job, "pending", input_keys[job.name], options_key, save=False)
    manifest.save()
    previous_sigterm = None
    if _in_main_thread():
        # SIGTERM unwinds like Ctrl-C: workers are stopped, partial files removed.
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if not todo:
            pass
        elif ray is not None:
            _run_on_ray(todo, settings, ray, on_outcome)
        elif workers == 1:
            _run_here(todo, settings, on_outcome, on_start)
        else:
            _run_in_processes(todo, settings, workers, on_outcome)
    except KeyboardInterrupt:
        # A clip may have been finished (output committed, report written) just before the
        # stop reached its outcome: book it, so that the folder's outputs are the clips done.
        for job in todo:
            if job.name not in rows:
                report = _finished_report(job, settings.run_id)
                if report is not None:
                    on_outcome(job, report)
        raise
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return BatchResult(len(jobs), counts["done"], len(jobs) - len(todo), counts["failed"], out)


class _BatchLock:
    """DIR/.batch.lock, held while a batch writes DIR: two batches must not share the books."""

    def __init__(self, out_dir: Path):
        import fcntl

        self._file = open(out_dir / ".batch.lock", "a+")  # noqa: SIM115  (held until release)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            raise DeflickerInputError(f"Another batch is writing to {out_dir}; wait for it to "
                                      "finish or give another --out folder.") from exc

    def release(self) -> None:
        self._file.close()  # closing drops the lock


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_batch_command(args) -> int:
    """`batch` subcommand: exit 0 when every clip succeeded (or was already done), 1 when some
    failed (see summary.csv), 2 for a mistake found before the work, 130 when interrupted."""
    from .cli import pipeline_config_from_args

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        result = run_batch(args.inputs, args.out, pipeline_config_from_args(args),
                           suffix=args.suffix, output_format=args.ext, workers=args.workers,
                           threads=args.threads, ray_address=args.ray,
                           max_clip_gb=args.max_clip_gb, overwrite=args.overwrite,
                           allow_truncated=args.allow_truncated, log=log,
                           clip_progress=not args.quiet)
    except KeyboardInterrupt:
        print("\ninterrupted: finished clips are kept (see manifest.json); run the same command "
              "again to do the rest", file=sys.stderr)
        return 130
    log(f"batch: {result.done} done, {result.skipped} skipped (finished earlier), "
        f"{result.failed} failed; summary: {result.out_dir / SUMMARY_NAME}")
    print(json.dumps(result.as_dict()))
    return 0 if result.all_succeeded else 1
