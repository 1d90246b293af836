"""Segment Anything nodes: a checkpoint loader and prompts -> a MASK batch for a whole clip.

Ids and the type name are prefixed ("Deflicker...", "DEFLICKER_SAM") so that they never clash
with other SAM packs (Impact Pack owns "SAMLoader" and "SAM_MODEL").
"""

from __future__ import annotations

from ..deflicker_impl.errors import WeightsError
from ..deflicker_impl.sam import (
    CHECKPOINT_FILES,
    load_sam,
    masks_from_prompts,
    missing_checkpoint_message,
    parse_box,
    parse_points,
)
from ..deflicker_impl.threads import with_pack_threads
from .comfy_glue import (
    CATEGORY,
    compute_device,
    finish,
    progress_callback,
    resolve_sam_checkpoint,
    sam_checkpoint_choices,
    sam_folders,
)

SAM_TYPE = "DEFLICKER_SAM"
NO_CHECKPOINT = "(no checkpoint in models/sams)"


class DeflickerSAMLoader:
    """Load a Segment Anything checkpoint from models/sams (vit_b, vit_l or vit_h)."""

    DESCRIPTION = (
        "Loads a Segment Anything (SAM) checkpoint from models/sams for the video mask node. "
        "vit_b, vit_l and vit_h are recognised from the file's contents. Nothing is downloaded: "
        f"put {', '.join(CHECKPOINT_FILES.values())} into models/sams (from the "
        "segment-anything repository's Model Checkpoints section)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (SAM_TYPE,)
    RETURN_NAMES = ("sam",)
    OUTPUT_TOOLTIPS = ("The loaded SAM, for 'SAM Video Mask (deflicker)'.",)

    @classmethod
    def INPUT_TYPES(cls):
        choices = sam_checkpoint_choices() or [NO_CHECKPOINT]
        return {
            "required": {
                "checkpoint": (choices, {
                    "default": choices[0],
                    "tooltip": "A SAM checkpoint in models/sams: "
                               f"{', '.join(CHECKPOINT_FILES.values())} (.pth or .safetensors)."}),
                "device": (["auto", "cpu"], {
                    "default": "auto",
                    "tooltip": "auto: ComfyUI's device (the GPU when there is one). SAM is slow "
                               "on a CPU (vit_b: tens of seconds per frame)."}),
            },
        }

    def load(self, checkpoint, device):
        path = resolve_sam_checkpoint(checkpoint) if checkpoint != NO_CHECKPOINT else None
        if path is None:
            folders = " or ".join(sam_folders())
            message = missing_checkpoint_message(folders)
            if checkpoint != NO_CHECKPOINT:
                message = f"{checkpoint} is not in {folders}. " + message
            raise WeightsError(message)
        return (load_sam(path, compute_device() if device == "auto" else "cpu"),)


class DeflickerSAMVideoMask:
    """Segment one object through a whole clip from points and/or a box on one frame."""

    DESCRIPTION = (
        "Turns prompts on one frame (positive/negative points and/or a box, in pixels) into a "
        "MASK for every frame: SAM segments the chosen frame, then the object is carried "
        "forwards and backwards frame by frame (the previous mask moved by optical flow "
        "re-prompts SAM). Connect the MASK to FitNeuralAtlas for a two-layer atlas."
    )
    CATEGORY = CATEGORY
    FUNCTION = "segment"
    RETURN_TYPES = ("MASK", "IMAGE")
    RETURN_NAMES = ("masks", "preview")
    OUTPUT_TOOLTIPS = ("One mask per frame (1 = the object).",
                       "The frames with the mask tinted red, to check the masks.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "sam": (SAM_TYPE, {"tooltip": "From 'SAM Loader (deflicker)'."}),
                "images": ("IMAGE", {"tooltip": "The video frames (an IMAGE batch)."}),
                "frame_index": ("INT", {
                    "default": 0, "min": 0, "max": 100000,
                    "tooltip": "The frame the prompts are placed on (0 = first)."}),
                "positive_points": ("STRING", {
                    "default": "", "multiline": False,
                    "tooltip": "Points on the object, in pixels of that frame: 'x,y; x,y' or "
                               "JSON [[x,y],...] / [{\"x\":..,\"y\":..}]."}),
                "negative_points": ("STRING", {
                    "default": "", "multiline": False,
                    "tooltip": "Points NOT on the object (same format); may be empty."}),
                "box": ("STRING", {
                    "default": "", "multiline": False,
                    "tooltip": "Optional box around the object: 'x0,y0,x1,y1' in pixels "
                               "(top-left, bottom-right). Give a box or at least one positive "
                               "point."}),
            },
        }

    @with_pack_threads  # the pack's thread count; the host's is restored after
    def segment(self, sam, images, frame_index, positive_points, negative_points, box):
        masks = masks_from_prompts(
            sam, images, frame_index, parse_points(positive_points, "positive_points"),
            parse_points(negative_points, "negative_points"), parse_box(box),
            on_progress=progress_callback())
        frames = images[..., :3].float().cpu()
        if frames.shape[-1] == 1:
            frames = frames.expand(-1, -1, -1, 3)
        tint = masks[..., None] * 0.5
        red = frames.new_tensor([1.0, 0.0, 0.0])
        preview = (frames * (1 - tint) + red * tint).clamp(0, 1)
        return (finish(masks), finish(preview))
