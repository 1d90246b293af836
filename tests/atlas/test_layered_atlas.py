"""Two-layer atlas: with foreground masks a moving object gets its own layer and stops ghosting.

The clip is a textured ellipse crossing a panning background (tests/synthetic_clips.py), with
mean-preserving synthetic flicker; its true masks are known.
"""

from __future__ import annotations

import pytest
import torch
from synthetic_clips import moving_object_clip

from deflicker_impl import AtlasConfig, DeflickerInputError, fit_atlas, render_atlas_frames
from deflicker_impl.evaluation.metrics import compute_warp_reference, psnr, warping_error
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker

FAST = AtlasConfig(iterations=120, fit_long_side=64, device="cpu")
T, H, W = 12, 48, 64


@pytest.fixture(scope="module")
def composite():
    clean, masks = moving_object_clip(frames=T, h=H, w=W, pan=1.0, speed=2.5)
    flickered = add_synthetic_flicker(clean, window=1, seed=3)
    one = fit_atlas(flickered, FAST)
    two = fit_atlas(flickered, FAST, masks=masks)
    return clean, masks, flickered, one, two, render_atlas_frames(one), render_atlas_frames(two)


def test_two_layers_reconstruct_the_moving_object_far_better_than_one(composite):
    clean, _, _flickered, one, two, frames_one, frames_two = composite

    assert (one.num_layers, two.num_layers) == (1, 2)
    gain = psnr(frames_two, clean) - psnr(frames_one, clean)
    assert gain > 6.0, f"two layers {psnr(frames_two, clean):.2f} dB, one {psnr(frames_one, clean):.2f}"
    assert psnr(frames_two, clean) > 28.0


def test_two_layers_stay_as_steady_as_the_clean_clip(composite):
    clean, _, flickered, _, _, _, frames_two = composite
    ref = compute_warp_reference(clean)
    e_in = warping_error(flickered, ref)

    ratio_two = warping_error(frames_two, ref) / e_in
    ratio_clean = warping_error(clean, ref) / e_in  # occlusion edges: even clean is not 0

    assert ratio_two < ratio_clean + 0.05, f"two layers {ratio_two:.3f}, clean {ratio_clean:.3f}"


def test_alpha_is_bootstrapped_from_the_masks_and_stays_near_them(composite):
    _, masks, _, _, two, _, _ = composite
    alpha = two.model.render_alpha(0, T, (H, W))[:, 0]
    assert alpha.shape == masks.shape
    assert float((alpha - masks).abs().mean()) < 0.05


def test_preview_shows_foreground_and_background_side_by_side(composite):
    _, _, _, one, two, _, _ = composite
    preview = two.texture_preview()
    fg, bg = (t.texture.shape[-1] for t in two.model.textures)
    assert preview.shape[0] == 1 and preview.shape[-1] == 3
    assert preview.shape[2] > max(fg, bg)  # both layers, not one
    assert one.texture_preview().shape[2] == one.model.texture.texture.shape[-1]


def test_two_layer_fit_is_deterministic_for_a_seed(composite):
    _, masks, flickered, _, _, _, frames_two = composite
    again = render_atlas_frames(fit_atlas(flickered, FAST, masks=masks))
    assert torch.equal(again, frames_two)


# -- masks as other nodes give them ------------------------------------------------------------

SMALL = AtlasConfig(iterations=10, fit_long_side=32, device="cpu")


@pytest.fixture(scope="module")
def small_clip():
    clean, masks = moving_object_clip(frames=4, h=24, w=32, speed=2.0)
    return clean, masks


@pytest.mark.parametrize("shape", ["HW", "1HW", "THW1", "T1HW", "half_res", "uint8"])
def test_mask_layouts_other_nodes_produce_give_two_layers(small_clip, shape):
    clip, masks = small_clip
    given = {
        "HW": masks[0], "1HW": masks[:1], "THW1": masks[..., None], "T1HW": masks[:, None],
        "half_res": masks[:, ::2, ::2], "uint8": (masks * 255).to(torch.uint8),
    }[shape]

    atlas = fit_atlas(clip, SMALL, masks=given)

    assert atlas.num_layers == 2
    assert render_atlas_frames(atlas).shape == clip.shape


def test_masks_at_another_resolution_are_resized_not_refused(small_clip):
    clip, masks = small_clip
    big = torch.nn.functional.interpolate(masks[:, None], scale_factor=3, mode="nearest")[:, 0]
    same = render_atlas_frames(fit_atlas(clip, SMALL, masks=masks))
    resized = render_atlas_frames(fit_atlas(clip, SMALL, masks=big))
    assert psnr(resized, same) > 35.0


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_empty_or_full_masks_fall_back_to_one_layer_with_a_note(small_clip, fill, caplog):
    clip, masks = small_clip

    with caplog.at_level("WARNING"):
        atlas = fit_atlas(clip, SMALL, masks=torch.full_like(masks, fill))

    assert atlas.num_layers == 1
    assert "one layer fitted" in atlas.stats["layers_note"]
    assert "nothing to separate" in caplog.text
    plain = render_atlas_frames(fit_atlas(clip, SMALL))
    assert torch.equal(render_atlas_frames(atlas), plain)


@pytest.mark.parametrize("bad, says", [
    ("batch3", "3 masks for a clip of 4 frames"),
    ("image", "IMAGE batch"),
    ("aspect", "another aspect ratio"),
    ("nan", "NaN"),
    ("5d", "shape"),
])
def test_masks_that_cannot_fit_the_clip_are_refused_clearly(small_clip, bad, says):
    clip, masks = small_clip
    given = {
        "batch3": masks[:3], "image": masks[..., None].expand(-1, -1, -1, 3),
        "aspect": masks[:, :, :12], "nan": masks.clone().fill_(float("nan")),
        "5d": masks[None, None],
    }[bad]
    with pytest.raises(DeflickerInputError, match=says):
        fit_atlas(clip, SMALL, masks=given)


def test_paper_preset_refuses_masks(small_clip):
    clip, masks = small_clip
    with pytest.raises(DeflickerInputError, match="'fast' preset"):
        fit_atlas(clip, AtlasConfig(preset="paper", iterations=1), masks=masks)


def test_layered_fit_works_under_inference_mode(small_clip):
    clip, masks = small_clip
    with torch.inference_mode():
        atlas = fit_atlas(clip.clone(), SMALL, masks=masks.clone())
        assert render_atlas_frames(atlas).shape == clip.shape
