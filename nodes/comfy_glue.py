"""The only place where the pack touches ComfyUI internals: devices, progress/cancel, model paths."""

from __future__ import annotations

import os
from pathlib import Path

import comfy.model_management as mm
import comfy.utils
import folder_paths

PACK_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS_DIR = PACK_ROOT / "weights"
MODEL_FOLDER = "deflicker"  # models/deflicker, relocatable with extra_model_paths.yaml
CATEGORY = "video/deflicker"


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


def shot_starts_of(images, atlas=None) -> list[int]:
    """Shot starts from a connected NEURAL_ATLAS of the same clip, else detected on `images`."""
    from ..deflicker_impl.shots import detect_scene_cuts

    starts = getattr(atlas, "shot_starts", None)
    if starts is not None and getattr(atlas, "num_frames", None) == images.shape[0]:
        return list(starts)
    return detect_scene_cuts(images)


def register_model_folder() -> None:
    """Make models/deflicker known to folder_paths (users may relocate it)."""
    if MODEL_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(
            MODEL_FOLDER, os.path.join(folder_paths.models_dir, MODEL_FOLDER)
        )


def weight_choices(default_name: str, prefix: str) -> list[str]:
    """The shipped default first, then matching files found in models/deflicker."""
    register_model_folder()
    found = [f for f in folder_paths.get_filename_list(MODEL_FOLDER)
             if f.endswith(".safetensors") and os.path.basename(f).startswith(prefix)]
    return [default_name] + sorted(f for f in found if f != default_name)


def resolve_weights(choice: str, default_name: str) -> Path:
    """A combo choice -> a file path: models/deflicker first, then the pack's weights/."""
    register_model_folder()
    path = folder_paths.get_full_path(MODEL_FOLDER, choice)
    if path is not None:
        return Path(path)
    return SHIPPED_WEIGHTS_DIR / (choice if choice else default_name)


def preview_images(images, prefix: str) -> list[dict]:
    """Save images [B,H,W,3] as PNGs in ComfyUI's temp folder; return {"ui": {"images": ...}}
    entries, which the browser shows on the node (as PreviewImage does)."""
    import numpy as np
    from PIL import Image

    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    stem = f"deflicker_{prefix}_{os.urandom(5).hex()}"
    entries = []
    for i, image in enumerate(images):
        name = f"{stem}_{i:05d}.png"
        pixels = (image.detach().cpu().float().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, name), compress_level=1)
        entries.append({"filename": name, "subfolder": "", "type": "temp"})
    return entries


DEMO_CLIP = PACK_ROOT / "example_workflows" / "demo_flicker.mp4"


def provide_demo_clip() -> None:
    """Copy the demo clip into ComfyUI's input folder (once), so that the example workflows,
    whose LoadVideo reads it, run as soon as they are opened. Never overwrites; never fails."""
    import shutil

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


def register_sam_folder() -> None:
    """Make models/sams known to folder_paths unless another pack or the user already did."""
    if SAM_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(
            SAM_FOLDER, os.path.join(folder_paths.models_dir, SAM_FOLDER)
        )


def sam_folders() -> list[str]:
    register_sam_folder()
    return list(folder_paths.get_folder_paths(SAM_FOLDER))


def sam_checkpoint_choices() -> list[str]:
    """SAM checkpoint files found in every models/sams folder (relative names)."""
    register_sam_folder()
    return sorted(f for f in folder_paths.get_filename_list(SAM_FOLDER)
                  if f.lower().endswith(SAM_EXTENSIONS))


def resolve_sam_checkpoint(choice: str) -> Path | None:
    register_sam_folder()
    path = folder_paths.get_full_path(SAM_FOLDER, choice)
    return Path(path) if path is not None else None
