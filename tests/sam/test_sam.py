"""Segment Anything core: checkpoints recognised from their tensors, prompts, masks for a clip.

No real SAM weights exist offline: the loading path is exercised with randomly initialised
checkpoints (a tiny encoder of the same family for everything that runs the network, the real
vit_b for the loader only, marked slow).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from sam_checkpoints import encoder_only_state, tiny_sam_checkpoint
from synthetic_clips import moving_object_clip

from deflicker_impl.errors import DeflickerCancelled, DeflickerInputError, WeightsError
from deflicker_impl.sam import load_sam, masks_from_prompts, parse_box, parse_points
from deflicker_impl.sam.checkpoint import CHECKPOINT_FILES, recognise_architecture
from deflicker_impl.sam.propagate import _Carrier


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    return load_sam(tiny_sam_checkpoint(tmp_path_factory.mktemp("sam") / "tiny.pth"), "cpu")


@pytest.fixture(scope="module")
def object_clip():
    return moving_object_clip(frames=3, h=32, w=48)


# -- checkpoints -------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_random_checkpoint_loads_through_the_real_path(tmp_path, suffix):
    path = tiny_sam_checkpoint(tmp_path / f"renamed_anything{suffix}")

    sam = load_sam(path, "cpu")

    assert sam.kind == "custom"
    assert (sam.arch.embed_dim, sam.arch.depth, sam.arch.num_heads) == (32, 2, 2)
    assert sam.arch.global_attn_indexes == (1,)
    assert next(sam.model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("kind, dim, depth, head_dim", [
    ("vit_b", 768, 12, 64), ("vit_l", 1024, 24, 64), ("vit_h", 1280, 32, 80)])
def test_published_encoders_are_recognised_from_their_tensors(kind, dim, depth, head_dim):
    arch = recognise_architecture(encoder_only_state(dim, depth, head_dim, depth // 4))

    assert arch.kind == kind
    assert arch.num_heads == {"vit_b": 12, "vit_l": 16, "vit_h": 16}[kind]
    assert len(arch.global_attn_indexes) == 4


@pytest.mark.slow
def test_vit_b_checkpoint_under_a_wrong_name_loads_as_vit_b(tmp_path):
    from segment_anything import sam_model_registry

    path = tmp_path / "sam_vit_h_4b8939.pth"  # the name lies: the tensors decide
    torch.save(sam_model_registry["vit_b"](checkpoint=None).state_dict(), path)

    sam = load_sam(path, "cpu")

    assert sam.kind == "vit_b" and sam.arch.global_attn_indexes == (2, 5, 8, 11)


@pytest.mark.parametrize("content, says", [
    (b"\x00" * 64, "cannot be read"),
    (None, "not an original Segment Anything"),
])
def test_corrupt_or_foreign_files_name_the_file_and_the_problem(tmp_path, content, says):
    path = tmp_path / "broken_sam.pth"
    if content is None:
        torch.save({"model.weight": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)

    with pytest.raises(WeightsError, match=says) as failure:
        load_sam(path, "cpu")
    assert "broken_sam.pth" in str(failure.value)


def test_truncated_checkpoint_is_a_weights_error(tmp_path):
    good = tiny_sam_checkpoint(tmp_path / "good.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    with pytest.raises(WeightsError, match="cut.pth"):
        load_sam(cut, "cpu")


def test_missing_checkpoint_says_where_to_get_one(tmp_path):
    from deflicker_impl.sam import missing_checkpoint_message

    with pytest.raises(WeightsError, match="does not exist"):
        load_sam(tmp_path / "nope.pth")
    message = missing_checkpoint_message(tmp_path)
    assert str(tmp_path) in message and "segment-anything" in message
    assert all(name in message for name in CHECKPOINT_FILES.values())


# -- prompts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, points", [
    ("", []),
    ("10,20", [(10.0, 20.0)]),
    ("10, 20; 30.5,40 ;", [(10.0, 20.0), (30.5, 40.0)]),
    ("[[1, 2], [3, 4]]", [(1.0, 2.0), (3.0, 4.0)]),
    ('[{"x": 5, "y": 6}]', [(5.0, 6.0)]),
])
def test_points_are_read_in_the_formats_users_type(text, points):
    assert parse_points(text) == points


@pytest.mark.parametrize("text", ["10", "a,b", "1,2,3", "[[1,2,3]]", "[oops"])
def test_unreadable_points_are_refused(text):
    with pytest.raises(DeflickerInputError):
        parse_points(text)


def test_box_is_read_and_checked():
    assert parse_box("") is None
    assert parse_box("1,2,30,40") == (1.0, 2.0, 30.0, 40.0)
    with pytest.raises(DeflickerInputError, match="x1 must exceed x0"):
        parse_box("30,2,1,40")
    with pytest.raises(DeflickerInputError, match="4 numbers"):
        parse_box("1,2,3")


# -- masks for a clip --------------------------------------------------------------------------

def test_masks_cover_every_frame_are_binary_and_deterministic(tiny_sam, object_clip):
    clip, _ = object_clip
    seen = []

    masks = masks_from_prompts(tiny_sam, clip, 1, [(14, 16)], [(44, 3)], (2, 3, 26, 29),
                               on_progress=lambda d, t: seen.append((d, t)))
    again = masks_from_prompts(tiny_sam, clip, 1, [(14, 16)], [(44, 3)], (2, 3, 26, 29))

    assert masks.shape == (3, 32, 48) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks, again)
    # One step per encoder block and per decode: 3 frames x (2 blocks + 1).
    assert seen[-1] == (9, 9) and all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
    assert next(tiny_sam.model.parameters()).device.type == "cpu"


def test_cancel_stops_within_a_frame(tiny_sam, object_clip):
    calls = []

    def cancel(done, total):
        calls.append(done)
        if done >= 2:
            raise DeflickerCancelled("stop")

    with pytest.raises(DeflickerCancelled):
        masks_from_prompts(tiny_sam, object_clip[0], 0, [(14, 16)], on_progress=cancel)
    assert calls == [1, 2]


@pytest.mark.parametrize("kwargs, says", [
    ({"frame_index": 3, "positive_points": [(1, 1)]}, "outside the clip"),
    ({"positive_points": [(60, 5)]}, "outside the 48x32 frame"),
    ({"negative_points": [(5, 5)]}, "at least one positive point or a box"),
    ({"box": (50, 40, 60, 50)}, "outside the 48x32 frame"),
])
def test_bad_prompts_are_refused_before_sam_runs(tiny_sam, object_clip, kwargs, says):
    with pytest.raises(DeflickerInputError, match=says):
        masks_from_prompts(tiny_sam, object_clip[0], **kwargs)


def test_the_carried_mask_follows_the_moving_object():
    clip, truth = moving_object_clip(frames=4, h=96, w=128, pan=1.0, speed=5.0)
    carrier = _Carrier(clip)
    logits = torch.zeros(1, 256, 256)

    def iou(a, b):
        a, b = a > 0.5, b > 0.5
        return float((a & b).sum() / (a | b).sum())

    moved, moved_logits = carrier.move(1, 2, truth[1], logits)

    assert moved_logits.shape == (1, 256, 256)
    assert iou(moved, truth[2]) > 0.9 > iou(truth[1], truth[2]) + 0.05
