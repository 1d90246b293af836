"""Specification of the neural filter's synthetic training pairs (deflicker_impl/train/pairs.py).

The frame input must keep the clean image's structure (only colours change), the atlas input must
keep its colours (only structure changes), and both must be reproducible from a seed.
"""

from __future__ import annotations

import pytest
import torch

from deflicker_impl.train.image_bank import ImageBank
from deflicker_impl.train.pairs import (
    WRONG_CONTENT_KINDS,
    ColourDistortionConfig,
    StructureDistortionConfig,
    distort_colour,
    distort_structure,
    gaussian_blur,
    make_training_pair,
    warp,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py


def clean_batch(n: int = 16, h: int = 96, w: int = 112, seed: int = 0) -> torch.Tensor:
    bank = ImageBank.procedural(n, h, w, seed=seed)
    return torch.stack([im.permute(2, 0, 1).float() / 255 for im in bank.images])


def gradient_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] correlation of the image gradients (x and y, all channels) of two batches."""
    def grads(x):
        return torch.cat([x.diff(dim=-1).flatten(1), x.diff(dim=-2).flatten(1)], dim=1)

    ga, gb = grads(a), grads(b)
    ga = ga - ga.mean(1, keepdim=True)
    gb = gb - gb.mean(1, keepdim=True)
    return (ga * gb).sum(1) / (ga.norm(dim=1) * gb.norm(dim=1) + 1e-12)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -10 * torch.log10(((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-12))


def test_pairs_keep_shape_range_and_target():
    clean = clean_batch(4, 37, 53)
    pair = make_training_pair(clean, torch.Generator().manual_seed(0))
    for x in (pair.frame, pair.atlas):
        assert x.shape == clean.shape and x.dtype == torch.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.equal(pair.target, clean)


def test_same_seed_same_pairs_other_seed_other_pairs():
    clean = clean_batch(4)
    a = make_training_pair(clean, torch.Generator().manual_seed(7))
    b = make_training_pair(clean, torch.Generator().manual_seed(7))
    c = make_training_pair(clean, torch.Generator().manual_seed(8))
    assert torch.equal(a.frame, b.frame) and torch.equal(a.atlas, b.atlas)
    assert not torch.allclose(a.frame, c.frame) and not torch.allclose(a.atlas, c.atlas)


def test_frame_input_keeps_structure_but_changes_colour():
    clean = clean_batch(32)
    cfg = ColourDistortionConfig(identity_prob=0.0)
    frame = distort_colour(clean, torch.Generator().manual_seed(1), cfg)
    corr = gradient_correlation(frame, clean)
    assert float(corr.median()) > 0.9 and float(corr.min()) > 0.6
    # ... and the colours really are off: a filter cannot just pass the frame through.
    assert float(psnr(frame, clean).median()) < 25.0


def test_atlas_input_keeps_colour_but_damages_structure():
    clean = clean_batch(32)
    # Wrong content (tested below) shows other colours in its blobs on purpose.
    atlas = distort_structure(clean, torch.Generator().manual_seed(2),
                              StructureDistortionConfig(wrong_content_prob=0.0))
    mean_error = (atlas.mean((2, 3)) - clean.mean((2, 3))).abs()
    assert float(mean_error.max()) < 0.06 and float(mean_error.mean()) < 0.02
    corr = gradient_correlation(atlas, clean)
    frame = distort_colour(clean, torch.Generator().manual_seed(1),
                           ColourDistortionConfig(identity_prob=0.0))
    assert float(corr.median()) < 0.7 < float(gradient_correlation(frame, clean).median())


def test_identity_probability_leaves_some_frames_clean():
    clean = clean_batch(64, 32, 32)
    frame = distort_colour(clean, torch.Generator().manual_seed(3),
                           ColourDistortionConfig(identity_prob=0.25))
    untouched = ((frame - clean).abs().flatten(1).max(1).values < 1e-6).float().mean()
    assert 0.1 < float(untouched) < 0.45


def test_warp_with_zero_flow_is_identity_and_integer_shift_moves_pixels():
    clean = clean_batch(2, 24, 24)
    flow = torch.zeros(2, 2, 24, 24)
    assert torch.allclose(warp(clean, flow), clean, atol=1e-5)
    flow[:, 0] = 3.0  # sample 3 px to the right
    assert torch.allclose(warp(clean, flow)[..., :, :-3], clean[..., :, 3:], atol=1e-5)


def test_gaussian_blur_zero_sigma_is_identity_and_blur_preserves_mean():
    clean = clean_batch(2, 40, 40)
    same = gaussian_blur(clean, torch.tensor([0.0, 0.0]), radius=6)
    assert torch.allclose(same, clean, atol=1e-5)
    blurred = gaussian_blur(clean, torch.tensor([2.0, 1.0]), radius=6)
    assert torch.allclose(blurred.mean((2, 3)), clean.mean((2, 3)), atol=0.01)
    assert float(gradient_correlation(blurred, clean).max()) < 0.95


def test_distortions_work_on_tiny_images():
    clean = clean_batch(3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    pair = make_training_pair(clean, gen, structure=StructureDistortionConfig(blur_sigma=3.0))
    assert pair.frame.shape == pair.atlas.shape == (3, 3, 8, 8)
    assert torch.isfinite(pair.atlas).all() and torch.isfinite(pair.frame).all()


def _only_wrong_content(kind: str) -> StructureDistortionConfig:
    """Every structural damage off but wrong content of one kind, in every sample."""
    return StructureDistortionConfig(
        warp_px=0.0, fine_warp_px=0.0, tear_prob=0.0, ghost_prob=0.0, blur_prob=0.0,
        lowres_prob=0.0, smear_prob=0.0, colour_error_sigma=0.0, offset_error_sigma=0.0,
        wrong_content_prob=1.0, wrong_content_kinds=(kind,))


@pytest.mark.parametrize("kind", sorted(WRONG_CONTENT_KINDS))
def test_each_wrong_content_kind_replaces_blobs_of_the_image(kind):
    clean = clean_batch(8)
    atlas = distort_structure(clean, torch.Generator().manual_seed(3), _only_wrong_content(kind))
    changed = (atlas - clean).abs().amax(1) > 2 / 255  # [N,H,W]: visibly changed
    fraction = changed.flatten(1).float().mean(1)
    # Blobs of 2-30 % of the image (a small one can stay below visibility): never the whole.
    assert float(fraction.max()) < 0.7 and float(fraction.mean()) > 0.08
    assert int((fraction > 0.01).sum()) >= 6


@pytest.mark.parametrize("kind", ["mirrored", "other"])
def test_mirrored_and_other_image_content_is_that_view_blended_in(kind):
    """Inside the blobs the atlas lies between the clean image and the kind's source."""
    clean = clean_batch(8)
    source = clean.flip(-1) if kind == "mirrored" else clean.roll(1, dims=0)
    atlas = distort_structure(clean, torch.Generator().manual_seed(4), _only_wrong_content(kind))
    direction = source - clean
    norm = (direction ** 2).sum(1, keepdim=True)
    weight = ((atlas - clean) * direction).sum(1, keepdim=True) / norm.clamp_min(1e-8)
    residual = atlas - (clean + weight * direction)
    assert float(residual.abs().max()) < 1e-4
    weight = weight[norm > 1e-3]  # where the two views differ enough to tell the weight
    assert float(weight.min()) > -1e-3 and float(weight.max()) < 1 + 1e-3
    assert float(weight.max()) > 0.95  # the blob's core is the other view itself


def test_unknown_wrong_content_kind_is_refused():
    with pytest.raises(ValueError, match="unknown wrong-content kind 'flipped'"):
        distort_structure(clean_batch(2), torch.Generator().manual_seed(0),
                          _only_wrong_content("flipped"))
