"""The SAM nodes inside the real ComfyUI 0.3.75 host: checkpoint from models/sams, prompts ->
MASK batch -> two-layer FitNeuralAtlas, and the error a user without a checkpoint sees.

The checkpoint is a tiny randomly initialised SAM (tests/sam_checkpoints.py): its masks are
arbitrary, so the test checks the plumbing and that the node returns exactly what the core does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import read_images
from sam_checkpoints import tiny_sam_checkpoint

from tools.comfy_host import ComfyError, PromptBuilder

pytestmark = pytest.mark.comfy

LOADER, VIDEO_MASK = "DeflickerSAMLoader", "DeflickerSAMVideoMask"
CHECKPOINT = "sam_tiny_test.pth"
FRAMES, WIDTH, HEIGHT = 3, 48, 32
PROMPTS = {"frame_index": 1, "positive_points": "14,16", "negative_points": "44,3",
           "box": "2,3,26,29"}


def test_sam_nodes_are_registered_with_their_own_type(comfy):
    loader, video = comfy.node_class(LOADER), comfy.node_class(VIDEO_MASK)
    assert loader is not None and video is not None
    assert list(loader.RETURN_TYPES) == ["DEFLICKER_SAM"]
    assert list(video.RETURN_TYPES) == ["MASK", "IMAGE"]
    assert video.INPUT_TYPES()["required"]["sam"][0] == "DEFLICKER_SAM"
    for node in (loader, video):
        required = node.INPUT_TYPES()["required"]
        assert all(len(spec) > 1 and spec[1].get("tooltip") for spec in required.values())
    masks = comfy.node_class("FitNeuralAtlas").INPUT_TYPES()["optional"]["masks"]
    assert masks[0] == "MASK" and masks[1]["tooltip"]


def test_loader_without_a_checkpoint_names_folder_files_and_source(comfy):
    from_pack = comfy.node_class(LOADER)
    placeholder = "(no checkpoint in models/sams)"

    with pytest.raises(Exception) as failure:
        from_pack.execute(checkpoint=placeholder, device="cpu")

    message = str(failure.value)
    assert type(failure.value).__name__ == "WeightsError"
    assert str(comfy.base / "models" / "sams") in message
    for name in ("sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth"):
        assert name in message
    assert "github.com/facebookresearch/segment-anything" in message


@pytest.fixture(scope="module")
def sam_graph_run(comfy):
    tiny_sam_checkpoint(comfy.base / "models" / "sams" / CHECKPOINT)
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=FRAMES, width=WIDTH, height=HEIGHT)
    sam = p.add(LOADER, checkpoint=CHECKPOINT, device="cpu")
    masks = p.add(VIDEO_MASK, sam=p.out(sam), images=p.out(images), **PROMPTS)
    as_image = p.add("MaskToImage", mask=p.out(masks))
    save_masks = p.add("SaveImage", images=p.out(as_image), filename_prefix="sam_masks")
    p.add("PreviewImage", images=p.out(masks, 1))
    fit = p.add("FitNeuralAtlas", images=p.out(images), masks=p.out(masks), preset="fast",
                iterations=10, atlas_resolution=128, fit_resolution=48, seed=0)
    save_atlas = p.add("SaveImage", images=p.out(fit, 1), filename_prefix="layered_atlas")
    texture = p.add("PreviewImage", images=p.out(fit, 2))
    ids = {"masks": masks, "save_masks": save_masks, "save_atlas": save_atlas,
           "texture": texture}
    return ids, comfy.run(p.build())


def test_prompts_give_one_mask_per_frame_equal_to_the_core(comfy, sam_graph_run):
    ids, result = sam_graph_run
    saved = read_images(result.image_files(ids["save_masks"]))[..., 0]

    assert saved.shape == (FRAMES, HEIGHT, WIDTH)
    assert set(np.unique(saved)) <= {0, 255}
    # The same as the core library on the same frames (DeflickerTestImages' seeded noise).
    from deflicker_impl.sam import load_sam, masks_from_prompts

    g = torch.Generator().manual_seed(0)
    frames = torch.rand(FRAMES, HEIGHT, WIDTH, 3, generator=g) * 0.6 + 0.2
    sam = load_sam(comfy.base / "models" / "sams" / CHECKPOINT, "cpu")
    core = masks_from_prompts(sam, frames, 1, [(14, 16)], [(44, 3)], (2, 3, 26, 29))
    assert np.array_equal(saved, (core.numpy() * 255).astype(np.uint8))


def test_mask_node_moves_the_progress_bar(sam_graph_run):
    ids, result = sam_graph_run
    steps = result.progress(ids["masks"])
    assert len(steps) >= FRAMES and steps[-1]["value"] == steps[-1]["max"]


def test_masks_feed_a_two_layer_atlas_of_the_input_size(sam_graph_run):
    ids, result = sam_graph_run
    frames = read_images(result.image_files(ids["save_atlas"]))
    texture = read_images(result.image_files(ids["texture"]))[0]

    assert frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    # Two textures side by side with a white gap column between them.
    assert (texture == 255).all(axis=(0, 2)).any()


def test_unknown_checkpoint_name_is_refused_before_execution(comfy):
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=2, width=24, height=16)
    sam = p.add(LOADER, checkpoint="sam_vit_q_missing.pth", device="cpu")
    masks = p.add(VIDEO_MASK, sam=p.out(sam), images=p.out(images), frame_index=0,
                  positive_points="5,5", negative_points="", box="")
    p.add("PreviewImage", images=p.out(masks, 1))

    with pytest.raises(ComfyError) as failure:
        comfy.run(p.build())
    assert failure.value.stage == "validation" and "checkpoint" in str(failure.value)
