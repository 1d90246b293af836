"""Specification of the refinement's smooth-change option (refine/smooth_change.py,
RefineConfig.smooth_nodes): the net's change survives as a smooth gain field, a ghost does not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from stage_nets import local_flicker
from synthetic_clips import panning_clip, smooth_texture

from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.metrics import compute_warp_reference, psnr, warping_error
from deflicker_impl.pipeline import PipelineConfig
from deflicker_impl.refine.apply import RefineConfig, apply_local_refine
from deflicker_impl.refine.smooth_change import keep_smooth_change

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_gain(h: int, w: int) -> torch.Tensor:
    """[1,3,h,w] a gain that varies smoothly over the frame (0.8..1.2, per channel)."""
    coarse = torch.tensor([[[0.8, 1.1], [1.0, 1.2]], [[1.1, 0.9], [1.2, 1.0]],
                           [[1.0, 1.0], [0.85, 1.15]]])[None]
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)


def test_a_smooth_change_is_kept_and_a_ghost_is_dropped():
    frame = smooth_texture(96, 128, seed=4, detail=16)[None]
    wanted = frame * smooth_gain(96, 128)
    refined = wanted.clone()
    # A ghost: a patch of colour carried along a wrong flow, 16 x 16 pixels.
    ghost = (slice(None), slice(None), slice(40, 56), slice(60, 76))
    refined[ghost] = frame[..., 0:16, 0:16]

    out = keep_smooth_change(frame, refined, nodes_long_side=3)

    assert out.shape == frame.shape
    assert psnr(out, wanted) > 35.0 and psnr(refined, wanted) < 30.0
    left = (out[ghost] - wanted[ghost]).abs().mean()
    made = (refined[ghost] - wanted[ghost]).abs().mean()
    assert left < 0.2 * made, (float(left), float(made))


def test_an_unchanged_frame_stays_unchanged():
    frame = smooth_texture(48, 64, seed=1)[None]
    assert torch.allclose(keep_smooth_change(frame, frame, 6), frame, atol=1e-4)


def test_shipped_weights_still_steady_local_flicker_with_a_smooth_change():
    # The same clip as test_local_refine's check of the shipped weights: the training's local
    # flicker is smooth in space, so the smooth change keeps most of the net's steadying
    # (measured: warping error ratio 0.77 and 29.73 -> 31.39 dB with 6 nodes; per pixel 0.67
    # and 31.76 dB).
    clean = panning_clip(12, 64, 96, speed=1.0, seed=3, detail=16)
    flickered = local_flicker(clean)
    reference = compute_warp_reference(clean)
    per_pixel = apply_local_refine(flickered, RefineConfig(device="cpu"))
    smooth = apply_local_refine(flickered, RefineConfig(device="cpu", smooth_nodes=6))

    before = warping_error(flickered, reference)
    assert warping_error(smooth, reference) / before < 0.8
    assert psnr(smooth, clean) > psnr(flickered, clean) + 1.0
    assert not torch.equal(smooth, per_pixel)


def test_faithful_colour_uses_it():
    assert PipelineConfig.faithful().refine.smooth_nodes >= 2
    assert PipelineConfig().refine.smooth_nodes == 0


@pytest.mark.parametrize("bad", [1, -2, 2.5, True, "6"])
def test_a_bad_node_count_is_refused_in_one_line(bad):
    with pytest.raises(DeflickerInputError, match="smooth_nodes must be 0"):
        RefineConfig(smooth_nodes=bad)
