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
from ..deflicker_impl.sam.propagate import mask_preview
from ..deflicker_impl.threads import with_pack_threads
from .host import (
    check_choices,
    compute_device,
    finish,
    io,
    node_schema,
    progress_callback,
    resolve_sam_checkpoint,
    sam_checkpoint_choices,
    sam_folders,
)
from .inputs import SamType

NO_CHECKPOINT = "(no checkpoint in models/sams)"
_FILES = ", ".join(CHECKPOINT_FILES.values())


class DeflickerSAMLoader(io.ComfyNode):
    """Load a Segment Anything checkpoint from models/sams (vit_b, vit_l or vit_h)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        choices = sam_checkpoint_choices() or [NO_CHECKPOINT]
        description = (  # names the checkpoint files of the core, so not the docstring
            "Loads a Segment Anything (SAM) checkpoint from models/sams for the video mask "
            "node. vit_b, vit_l and vit_h are recognised from the file's contents. Nothing "
            f"is downloaded: put {_FILES} into models/sams (from the segment-anything "
            "repository's Model Checkpoints section).")
        return node_schema(cls, "DeflickerSAMLoader", "SAM Loader (deflicker)", inputs=[
            io.Combo.Input(
                "checkpoint", options=choices, default=choices[0],
                tooltip=f"A SAM checkpoint in models/sams: {_FILES} (.pth or "
                        ".safetensors)."),
            io.Combo.Input(
                "device", options=["auto", "cpu"], default="auto",
                tooltip="auto: ComfyUI's device (the GPU when there is one). SAM is slow on "
                        "a CPU (vit_b: tens of seconds per frame)."),
        ], outputs=[
            SamType.Output(display_name="sam",
                           tooltip="The loaded SAM, for 'SAM Video Mask (deflicker)'."),
        ], description=description)

    @classmethod
    def execute(cls, checkpoint, device) -> io.NodeOutput:
        path = resolve_sam_checkpoint(checkpoint) if checkpoint != NO_CHECKPOINT else None
        if path is None:
            folders = " or ".join(sam_folders())
            message = missing_checkpoint_message(folders)
            if checkpoint != NO_CHECKPOINT:
                message = f"{checkpoint} is not in {folders}. " + message
            raise WeightsError(message)
        return io.NodeOutput(load_sam(path, compute_device() if device == "auto" else "cpu"))

    @classmethod
    def validate_inputs(cls, checkpoint, device) -> bool | str:
        return check_choices(cls, checkpoint=checkpoint, device=device)


class DeflickerSAMVideoMask(io.ComfyNode):
    """Turns prompts on one frame (positive/negative points and/or a box, in pixels) into a MASK
    for every frame: SAM segments the chosen frame, then the object is carried forwards and
    backwards frame by frame (the previous mask moved by optical flow re-prompts SAM). Connect
    the MASK to FitNeuralAtlas for a two-layer atlas."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "DeflickerSAMVideoMask", "SAM Video Mask (deflicker)", inputs=[
            SamType.Input("sam", tooltip="From 'SAM Loader (deflicker)'."),
            io.Image.Input("images", tooltip="The video frames (an IMAGE batch)."),
            io.Int.Input("frame_index", default=0, min=0, max=100000,
                         tooltip="The frame the prompts are placed on (0 = first)."),
            io.String.Input(
                "positive_points", default="", multiline=False,
                tooltip="Points on the object, in pixels of that frame: 'x,y; x,y' or JSON "
                        "[[x,y],...] / [{\"x\":..,\"y\":..}]."),
            io.String.Input(
                "negative_points", default="", multiline=False,
                tooltip="Points NOT on the object (same format); may be empty."),
            io.String.Input(
                "box", default="", multiline=False,
                tooltip="Optional box around the object: 'x0,y0,x1,y1' in pixels (top-left, "
                        "bottom-right). Give a box or at least one positive point."),
        ], outputs=[
            io.Mask.Output(display_name="masks",
                           tooltip="One mask per frame (1 = the object)."),
            io.Image.Output(
                display_name="preview",
                tooltip="The frames with the mask tinted red, to check the masks."),
        ])

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, sam, images, frame_index, positive_points, negative_points, box
                ) -> io.NodeOutput:
        masks = masks_from_prompts(
            sam, images, frame_index, parse_points(positive_points, "positive_points"),
            parse_points(negative_points, "negative_points"), parse_box(box),
            on_progress=progress_callback())
        return io.NodeOutput(finish(masks), finish(mask_preview(images, masks)))
