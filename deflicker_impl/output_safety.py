"""Output safety: no command ever overwrites, mixes or half-writes a user's files.

Every command that writes files goes through this module (the CLI's subcommands and the batch
command alike):

1. `plan_outputs` runs before any work. It turns each output path into an `OutputTarget`
   (its kind: video, animated image, single image or frame folder), and refuses, with the
   user's own path in the message:
   - an unknown suffix, a single-image suffix (.png ...) for more than one frame;
   - an output that is, or resolves to (through symbolic or hard links, `..`, relative paths),
     one of the command's inputs; a frame folder output that contains an input; an image
     output inside an input frame folder (it would become one of its frames);
   - two outputs that collide (same file, or one inside the other's frame folder);
   - an output folder that already holds frames, unless `overwrite` (then it is replaced as a
     whole, and only when it holds nothing but frames: other files are never deleted);
   - an output whose folder cannot be created or written.
2. `OutputTransaction` writes every output to a temporary sibling (a hidden file or folder next
   to the target) and moves them all into place in `commit()`, with Ctrl-C held back for the
   few renames. An error or an interrupt before the commit removes the temporaries, so the
   previous state is left exactly; `interrupt_message` says truthfully what was written.
3. `write_text_atomically` writes small text files (the batch's reports, manifest, summary) by
   the same hidden-sibling-and-rename, and `remove_leftovers` deletes the temporaries of a
   process that was killed outright.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Self

from .errors import DeflickerInputError
from .video_io import ANIMATED_IMAGE_SUFFIXES, FRAME_SUFFIXES, VIDEO_SUFFIXES, ClipWriter

# Signals that stop a run: Ctrl-C, and SIGTERM (which the batch turns into an interruption).
# Both are held back during a commit's renames, so none falls between them.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
SINGLE_IMAGE_SUFFIXES = tuple(s for s in FRAME_SUFFIXES if s not in ANIMATED_IMAGE_SUFFIXES)
OUTPUT_KINDS = ("video", "animated", "image", "folder")


@dataclass(frozen=True)
class OutputTarget:
    """One output of a command, checked: `label` names it in messages (e.g. "OUTPUT",
    "--save-texture"), `path` is as the user gave it, `kind` one of OUTPUT_KINDS, and
    `replace_folder` says that an existing frame folder is to be replaced (--overwrite)."""

    label: str
    path: Path
    kind: str
    replace_folder: bool = False

    @property
    def resolved(self) -> Path:
        return resolve_path(self.path)


def resolve_path(path: str | os.PathLike) -> Path:
    """The absolute path with every symbolic link, `~`, `.` and `..` resolved (also for a
    path that does not exist yet: its existing part is resolved)."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name the same file or folder (links and hard links included)."""
    ra, rb = resolve_path(a), resolve_path(b)
    if ra == rb:
        return True
    try:
        return ra.exists() and rb.exists() and os.path.samefile(ra, rb)
    except OSError:
        return False


def _is_inside(path: Path, folder: Path) -> bool:
    """True when resolved `path` lies somewhere inside resolved `folder` (not equal to it)."""
    return path != folder and folder in path.parents


def _frame_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]


def output_kind(path: str | os.PathLike, label: str = "OUTPUT") -> str:
    """The kind of output a path asks for: an existing folder or a path without a suffix is a
    frame folder; otherwise the suffix decides. Unknown suffixes are refused."""
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in ANIMATED_IMAGE_SUFFIXES:
        return "animated"
    if suffix in SINGLE_IMAGE_SUFFIXES:
        return "image"
    raise DeflickerInputError(
        f"Unknown output type {suffix!r} for {label} {path}. Use a video ({', '.join(VIDEO_SUFFIXES)}),"
        f" an animated image ({', '.join(ANIMATED_IMAGE_SUFFIXES)}), an image for a single frame,"
        " or a folder path (no suffix) for PNG frames.")


def _check_writable(label: str, path: Path) -> None:
    """The nearest existing folder above `path` must be a folder we may write into."""
    if path.exists() and not path.is_dir() and path.suffix == "":
        raise DeflickerInputError(
            f"{label} {path} exists and is a file, not a folder; give a folder path for frames "
            "or a file name with a video suffix such as .mp4.")
    ancestor = resolve_path(path).parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DeflickerInputError(
            f"Cannot create the folder for {label} {path}: {ancestor} is a file. Choose another "
            "output path.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DeflickerInputError(
            f"{label} {path} cannot be written: folder {ancestor} is not writable. Choose another "
            "output path or fix the folder's permissions.")


def output_target(label: str, path: str | os.PathLike, frames: int | None = None,
                  overwrite: bool = False) -> OutputTarget:
    """Check one output before the work: its kind (for `frames` frames, when known), that its
    folder is writable, and that an existing frame folder is only replaced with `overwrite`."""
    path = Path(path)
    kind = output_kind(path, label)
    if kind == "image" and frames is not None and frames != 1:
        raise DeflickerInputError(
            f"{label} {path} is a single-image file but there are {frames} frames: give a video "
            f"file (e.g. {path.with_suffix('.mp4').name}) or a folder path instead.")
    _check_writable(label, path)
    replace = False
    if kind == "folder" and path.is_dir():
        entries = list(path.iterdir())
        frame_files = _frame_files(path)
        others = [p for p in entries if p not in frame_files]
        if frame_files and not overwrite:
            raise DeflickerInputError(
                f"{label} folder {path} already holds {len(frame_files)} frame(s); new frames "
                "would mix with them. Choose a new or empty folder, or pass --overwrite to "
                "replace that folder of frames.")
        if frame_files and others:
            raise DeflickerInputError(
                f"{label} folder {path} holds other things besides frames (e.g. "
                f"{others[0].name}); --overwrite only replaces a folder of frames. Choose a new "
                "or empty folder.")
        replace = bool(frame_files)
    return OutputTarget(label, path, kind, replace)


def check_output_collisions(targets: Iterable[OutputTarget],
                            inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuse an output that is (or holds, or would become a frame of) one of the inputs, and
    two outputs that collide. `inputs` maps labels ("INPUT", "--masks") to paths (None: unused)."""
    targets = list(targets)
    given = {label: Path(p) for label, p in inputs.items() if p is not None and str(p) != ""}
    for target in targets:
        out = target.resolved
        for label, source in given.items():
            src = resolve_path(source)
            if same_path(target.path, source):
                raise DeflickerInputError(
                    f"{target.label} {target.path} is {label} ({source}): an output must differ "
                    "from every input, inputs are never overwritten. Choose another output path.")
            if target.kind == "folder" and _is_inside(src, out):
                raise DeflickerInputError(
                    f"{target.label} folder {target.path} contains {label} ({source}); writing "
                    "there could replace it. Choose another output folder.")
            if (src.is_dir() and _is_inside(out, src)
                    and target.path.suffix.lower() in FRAME_SUFFIXES):
                raise DeflickerInputError(
                    f"{target.label} {target.path} lies inside the frame folder {label} "
                    f"({source}) and would become one of its frames. Write it elsewhere.")
    for i, first in enumerate(targets):
        for second in targets[i + 1:]:
            a, b = first.resolved, second.resolved
            inside = ((first.kind == "folder" and _is_inside(b, a))
                      or (second.kind == "folder" and _is_inside(a, b)))
            if same_path(first.path, second.path) or inside:
                raise DeflickerInputError(
                    f"{first.label} {first.path} and {second.label} {second.path} collide (one "
                    "would overwrite or mix into the other). Give them separate paths.")


def plan_outputs(outputs: Mapping[str, tuple[str | os.PathLike | None, int | None]],
                 inputs: Mapping[str, str | os.PathLike | None],
                 overwrite: bool = False) -> dict[str, OutputTarget]:
    """All the up-front output checks of one command: `outputs` maps labels to (path or None,
    the number of frames that will be written or None when unknown); unused outputs (None) are
    left out of the result. Returns label -> OutputTarget."""
    targets = {label: output_target(label, path, frames, overwrite)
               for label, (path, frames) in outputs.items()
               if path is not None and str(path) != ""}
    check_output_collisions(targets.values(), inputs)
    return targets


# Tags of the hidden temporaries: ".<stem>.partial-<token><suffix>" while an output is written,
# ".<stem>.replaced-<token><suffix>" for the old frame folder during its replacement.
TEMPORARY_TAGS = ("partial", "replaced")


def _hidden_sibling(path: Path, tag: str) -> Path:
    """A fresh hidden name next to `path` that keeps its suffix (writers choose by suffix)."""
    token = secrets.token_hex(4)
    return path.with_name(f".{path.stem}.{tag}-{token}{path.suffix}")


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write a small text file (a report, a manifest, a summary) the way outputs are written:
    into a hidden sibling, then renamed over `path`, so a reader (or a killed run) sees the old
    file or the new one, never half of one."""
    path = Path(path)
    real = resolve_path(path)  # through a link: the link stays, what it points to is replaced
    tmp = _hidden_sibling(real, "partial")
    try:
        tmp.write_text(text)
        os.replace(tmp, real)
    except OSError as exc:
        raise DeflickerInputError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def remove_leftovers(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the hidden temporaries that a process killed outright (SIGKILL, a power cut: no
    chance to abort) left in `folder`; only those of the output called `name` when given.
    Returns what was removed. Call it only where no other writer is at work."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    if name is None:
        patterns = [f".*.{tag}-*" for tag in TEMPORARY_TAGS]
    else:
        stem, suffix = Path(name).stem, Path(name).suffix
        patterns = [f".{glob_escape(stem)}.{tag}-*{glob_escape(suffix)}" for tag in TEMPORARY_TAGS]
    removed = []
    for pattern in patterns:
        for leftover in folder.glob(pattern):
            _remove(leftover)
            removed.append(leftover)
    return removed


class OutputTransaction:
    """Writes outputs to temporary siblings and moves them into place together on `commit()`.

    Use as a context manager: leaving it by an exception (an error, Ctrl-C) before `commit()`
    deletes every temporary and every folder it created, so the disk is as it was before.
    `committed` lists the outputs moved into place (for an honest interrupt message).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[OutputTarget, Path]] = []
        self._created_dirs: list[Path] = []
        self.committed: list[Path] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()

    def _make_parent(self, path: Path) -> None:
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except OSError as exc:
                raise DeflickerInputError(f"Cannot create output folder {folder}: {exc}.") from exc
            self._created_dirs.append(folder)

    def write(self, target: OutputTarget, frames, fps) -> None:
        """Write frames [T,H,W,3] for `target` into its temporary sibling (not yet in place)."""
        with self.open(target, fps, frames.shape[0]) as writer:
            writer.write(frames)

    def open(self, target: OutputTarget, fps, num_frames: int | None = None) -> OutputWriter:
        """A writer of `target`'s frames a few at a time (video_io.ClipWriter) into its
        temporary sibling; close it (or leave its `with` block) before `commit()`. An error or
        an interrupt before the commit removes what it wrote, like any other output."""
        real = target.resolved  # through a link: the link stays, what it points to is replaced
        self._make_parent(real)
        tmp = _hidden_sibling(real, "partial")
        self._pending.append((target, tmp))
        if target.kind == "folder":
            tmp.mkdir()  # an existing folder makes the writer write frames whatever the name
        return OutputWriter(target.path, tmp, fps, num_frames)

    def commit(self) -> list[Path]:
        """Move every written output into place; returns their paths. Ctrl-C and SIGTERM are
        held back during the renames (they take effect right after), so either all or none are
        in place, and a frame folder being replaced is never left set aside."""
        previous_mask = _block_stop_signals()
        try:
            for target, tmp in self._pending:
                _move_into_place(tmp, target)
                self.committed.append(target.path)
            self._pending.clear()
            self._created_dirs.clear()
        finally:
            if previous_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        return list(self.committed)

    def abort(self) -> None:
        """Delete what was written but not committed, and the folders created for it."""
        for _, tmp in self._pending:
            _remove(tmp)
        self._pending.clear()
        for folder in reversed(self._created_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty any more: something else was put there; leave it
        self._created_dirs.clear()


class OutputWriter:
    """A ClipWriter into an output's temporary sibling whose errors name the user's path."""

    def __init__(self, path: Path, tmp: Path, fps, num_frames: int | None):
        self.path, self.tmp = path, tmp
        self._writer = self._named(lambda: ClipWriter(tmp, fps, num_frames))

    def _named(self, action):
        try:
            return action()
        except DeflickerInputError as exc:
            # Name the user's path, not the hidden temporary one.
            raise DeflickerInputError(str(exc).replace(str(self.tmp), str(self.path))) from exc

    def write(self, frames) -> None:
        self._named(lambda: self._writer.write(frames))

    def close(self) -> None:
        self._named(self._writer.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._writer.__exit__(exc_type, exc, tb)


def _block_stop_signals() -> set | None:
    """Block STOP_SIGNALS in the main thread; returns the mask to restore (None: not blocked)."""
    if (hasattr(signal, "pthread_sigmask")
            and threading.current_thread() is threading.main_thread()):
        return signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _move_into_place(tmp: Path, target: OutputTarget) -> None:
    path = target.resolved
    if target.kind == "folder" and path.is_dir():
        # os.replace cannot replace a non-empty folder: set the old one aside, move the new one
        # in, then delete the old one (put back if the second rename fails).
        old = _hidden_sibling(path, "replaced")
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except OSError:
            os.rename(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def add_safety_options(parser: argparse.ArgumentParser, writes: bool = True) -> None:
    """The command-line options every subcommand shares (batch too): --allow-truncated for
    reading and, for commands that write (`writes`), --overwrite."""
    parser.add_argument("--allow-truncated", action="store_true",
                        help="read a video that decodes to fewer frames than its container "
                             "declares (a warning says how many), instead of refusing it")
    if writes:
        parser.add_argument("--overwrite", action="store_true",
                            help="replace an output frame folder that already holds frames "
                                 "(as a whole, once the new frames are complete); without it "
                                 "such a folder is refused. Output files are always replaced "
                                 "atomically; inputs are never overwritten")


def interrupt_message(transaction: OutputTransaction | None) -> str:
    """The one line printed after Ctrl-C: what was (not) written, truthfully."""
    if transaction is None or not transaction.committed:
        return "interrupted: no output was written (existing files are unchanged)"
    done = ", ".join(str(p) for p in transaction.committed)
    return f"interrupted after the outputs were written: {done}"
