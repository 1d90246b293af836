"""Generated clips for the generative-video benchmark (bench/generative_bench.py).

Animated WebP clips from the ComfyUI template media packages on PyPI
(`comfyui-workflow-templates-media-video` and `-media-other`, MIT; the versions pinned in
requirements-bench-media.txt), chosen for
what atlases find hard: turning characters, things that appear, camera flights, fast non-rigid
motion, a morph, the scene's own light changes. Split once, by hand, before any tuning into a
development half (`DEV`, used while designing) and a held-out half (`HELD_OUT`, only measured;
never tuned on); `EXTRA` is a later, second development set.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from .datasets import resize_long_side

PACKAGES = ("comfyui_workflow_templates_media_video", "comfyui_workflow_templates_media_other")
# The benchmark's clips are those of the versions pinned in requirements-bench-media.txt. They
# are newer than the ones ComfyUI's own template package pins (which lack several of the clips),
# so scripts/setup_env.sh unpacks them into this folder instead of the environment.
MEDIA_DIR = Path(__file__).resolve().parents[1] / ".venv" / "bench-media"

# name -> (template file stem, what makes it hard)
DEV = {
    "wan_turn": ("image_to_video_wan-1", "Wan i2v: a character turns from front to back"),
    "paper_plane_city": ("video_hunyuan_video_1.5_720p_t2v-1",
                         "HunyuanVideo t2v: camera flight over a city, parallax"),
    "boxing": ("api_kling_v3_video-1", "Kling: fast punches, then a camera change to the ring"),
    "night_car": ("video_wan_vace_14B_t2v-1", "Wan VACE: a car driving through neon, lights move"),
    "florist": ("api_wan2_7_t2v-1", "Wan 2.7: hands and flowers in motion, a face appears"),
    "portrait_relight": ("template_character_portrait_relighting-1",
                         "relighting: the light on a face changes (its own light)"),
}
HELD_OUT = {
    "ltx_fox": ("ltxv_image_to_video-1", "LTX-Video i2v: a fox dives into snow"),
    "guitar_station": ("video_wan2_2_5B_ti2v-1", "Wan 2.2: people walk in front of a guitarist"),
    "vangogh_astronaut": ("video_wan2_2_14B_flf2v-1", "Wan 2.2 first-last frame: a morph"),
    "dinosaur": ("video_hunyuan_video_1.5_720p_i2v-1", "HunyuanVideo i2v: a walking dinosaur"),
    "mars_camera": ("video_wan2_2_14B_fun_camera-1", "Wan 2.2 fun camera: a camera move, rovers"),
    "bride_flowers": ("api_happyhorse1_1_t2v-1", "HappyHorse t2v: a bride, flowers pass the lens"),
}
# A second development set (`--split extra`), added when the development half no longer showed
# the harm to clean clips that users meet: eight more template clips, used while tuning like DEV
# (never held out), chosen for variety before they were measured.
EXTRA = {
    "horse_lean": ("api_happyhorse1_1_i2v-1", "HappyHorse i2v: a woman leans on a black horse"),
    "white_horse": ("api_kling_o3_flf2v-1",
                    "Kling first-last frame: a rider, a white horse, the view changes"),
    "queen": ("video_ltx2_3_i2v-1", "LTX-2.3 i2v: a queen in a headdress, a crowd behind"),
    "tiger_charge": ("api_luma_ray3_3_t2v-1", "Luma Ray3 t2v: a rider on a tiger, dust, an army"),
    "visor": ("api_grok_video-1", "Grok: a helmet's visor opens, a face appears"),
    "neon_drive": ("api_vidu_q3_text_to_video-1",
                   "Vidu Q3 t2v: a cut from the driver to a car racing through neon"),
    "style_transition": ("template_ltx2_3_style_transition-1",
                         "LTX-2.3: a photo turns into a watercolour (its own fast grade)"),
    "curtains": ("api_seedance2_0_t2v-1", "Seedance 2 t2v: a dancer among blowing curtains"),
}
SPLITS = {"dev": DEV, "extra": EXTRA, "heldout": HELD_OUT}


def template_path(stem: str) -> Path | None:
    """Path of `<stem>.webp` in the pinned media packages (MEDIA_DIR), or else in the installed
    ones, or None."""
    for package in PACKAGES:
        path = MEDIA_DIR / package / "templates" / f"{stem}.webp"
        if path.is_file():
            return path
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / "templates" / f"{stem}.webp"
        if path.is_file():
            return path
    return None


def load_generated_clip(stem: str, num_frames: int, long_side: int) -> torch.Tensor:
    """First `num_frames` frames of an animated WebP template, resized -> [T,h,w,3] in 0..1."""
    from PIL import Image

    path = template_path(stem)
    if path is None:
        raise FileNotFoundError(
            f"{stem}.webp not found in {MEDIA_DIR}; run scripts/setup_env.sh (it unpacks the "
            "media packages pinned in requirements-bench-media.txt there).")
    arrays = []
    with Image.open(path) as image:
        for index in range(min(num_frames, getattr(image, "n_frames", 1))):
            image.seek(index)
            arrays.append(np.asarray(image.convert("RGB")))
    frames = torch.from_numpy(np.stack(arrays)).float().div_(255.0)
    return resize_long_side(frames, long_side)
