"""The only module of the pack that touches ComfyUI: its node schema (comfy_api), devices,
progress and Cancel (comfy.*), model folders and the input folder (folder_paths).

The node modules import the schema (`io`, `ui`, `ComfyExtension`) from here, so that a change
of the host's API is met in one place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import comfy.model_management as mm
import comfy.utils
import folder_paths
from comfy_api.latest import ComfyExtension, io, ui

__all__ = ["ComfyExtension", "io", "ui"]  # re-exported for the node modules

PACK_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS_DIR = PACK_ROOT / "weights"
MODEL_FOLDER = "deflicker"  # models/deflicker, relocatable with extra_model_paths.yaml
CATEGORY = "video/deflicker"


def node_schema(node: type, node_id: str, display_name: str, *, description: str | None = None,
                **fields) -> io.Schema:
    """The schema of one of the pack's nodes: in the pack's category, described in the editor by
    the class's docstring (one paragraph) unless a description is given."""
    if description is None:  # (no docstrings under python -OO: then no description either)
        description = " ".join((node.__doc__ or "").split())
    return io.Schema(node_id=node_id, display_name=display_name, category=CATEGORY,
                     description=description, **fields)


def check_choices(node: type[io.ComfyNode], **values) -> bool | str:
    """A node's validate_inputs for its combo inputs: True, or what is wrong.

    ComfyUI 0.3.75 refuses a V1 combo value that is not among its options before anything
    runs, but lets a schema Combo's through to execute(); this keeps the refusal up front.
    A linked input has no value yet at validation (None): it is checked when it arrives.
    """
    for spec in node.define_schema().inputs:
        value = values.get(spec.id)
        if isinstance(spec, io.Combo.Input) and value is not None and value not in spec.options:
            return f"{value!r} is not one of {', '.join(map(str, spec.options))}"
    return True


def compute_device() -> str:
    """ComfyUI's compute device as a string the core understands ('cpu', 'cuda:0', ...)."""
    return str(mm.get_torch_device())


def progress_callback():
    """A core-style on_progress(done, total) that moves ComfyUI's bar and honours Cancel."""
    bar = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        mm.throw_exception_if_processing_interrupted()
        if bar is None or bar.total != total:
            bar = comfy.utils.ProgressBar(total)
        bar.update_absolute(done, total)

    return report


def finish(images):
    """Return a result on ComfyUI's intermediate device and release cached GPU memory."""
    mm.soft_empty_cache()
    return images.to(mm.intermediate_device())


def _register_folder(name: str) -> None:
    """Make models/<name> known to folder_paths unless another pack or the user already did
    (users relocate model folders with extra_model_paths.yaml)."""
    if name not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))


def weight_choices(default_name: str, prefix: str) -> list[str]:
    """The shipped default first, then matching files found in models/deflicker."""
    _register_folder(MODEL_FOLDER)
    found = [f for f in folder_paths.get_filename_list(MODEL_FOLDER)
             if f.endswith(".safetensors") and os.path.basename(f).startswith(prefix)]
    return [default_name] + sorted(f for f in found if f != default_name)


def resolve_weights(choice: str, default_name: str) -> Path:
    """A combo choice -> a file path: models/deflicker first, then the pack's weights/."""
    _register_folder(MODEL_FOLDER)
    path = folder_paths.get_full_path(MODEL_FOLDER, choice)
    if path is not None:
        return Path(path)
    return SHIPPED_WEIGHTS_DIR / (choice if choice else default_name)


DEMO_CLIP = PACK_ROOT / "example_workflows" / "demo_flicker.mp4"


def provide_demo_clip() -> None:
    """Copy the demo clip into ComfyUI's input folder (once), so that the example workflows,
    whose LoadVideo reads it, run as soon as they are opened. Never overwrites; never fails."""
    try:
        target = Path(folder_paths.get_input_directory()) / DEMO_CLIP.name
        if DEMO_CLIP.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DEMO_CLIP, target)
    except OSError:  # a read-only input folder only costs the convenience
        pass


# -- Segment Anything checkpoints (models/sams, the folder other SAM packs use too) -------------

SAM_FOLDER = "sams"
SAM_EXTENSIONS = (".pth", ".pt", ".safetensors")


def sam_folders() -> list[str]:
    _register_folder(SAM_FOLDER)
    return list(folder_paths.get_folder_paths(SAM_FOLDER))


def sam_checkpoint_choices() -> list[str]:
    """SAM checkpoint files found in every models/sams folder (relative names)."""
    _register_folder(SAM_FOLDER)
    return sorted(f for f in folder_paths.get_filename_list(SAM_FOLDER)
                  if f.lower().endswith(SAM_EXTENSIONS))


def resolve_sam_checkpoint(choice: str) -> Path | None:
    _register_folder(SAM_FOLDER)
    path = folder_paths.get_full_path(SAM_FOLDER, choice)
    return Path(path) if path is not None else None
