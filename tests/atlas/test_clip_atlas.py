"""Clip-level atlas: one atlas per shot, long shots in seamless segments, stages restart at cuts."""

from __future__ import annotations

import itertools

import pytest
import torch
from stage_nets import scrambled_refine_net as scrambled_net
from synthetic_clips import panning_clip

from deflicker_impl.atlas import AtlasConfig, ClipAtlas, fit_atlas, fit_clip_atlas
from deflicker_impl.atlas import render_atlas_frames as render
from deflicker_impl.atlas.clip_atlas import segment_layout
from deflicker_impl.errors import DeflickerInputError
from deflicker_impl.evaluation.metrics import compute_warp_reference
from deflicker_impl.evaluation.synthetic import add_synthetic_flicker
from deflicker_impl.filter.global_colour import stabilise_global_colour
from deflicker_impl.refine.apply import apply_local_refine
from deflicker_impl.shots import ShotConfig

FAST = AtlasConfig(iterations=60, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # one torch thread, see conftest.py


def two_shots() -> tuple[torch.Tensor, int]:
    a = panning_clip(10, 40, 56, speed=1.0, seed=21, detail=16)
    b = panning_clip(8, 40, 56, speed=-1.0, seed=22, detail=16)
    return add_synthetic_flicker(torch.cat((a, b)), window=1, seed=3), 10


@pytest.mark.parametrize("n,max_frames,overlap", [(100, 40, 8), (41, 40, 8), (400, 150, 16),
                                                  (17, 8, 3)])
def test_segments_cover_the_shot_with_the_overlap_and_size_asked(n, max_frames, overlap):
    layout = segment_layout(5, 5 + n, max_frames, overlap)
    assert layout[0][0] == 5 and layout[-1][1] == 5 + n
    assert all(b - a <= max_frames for a, b in layout)
    assert all(p[1] - s[0] >= overlap for p, s in itertools.pairwise(layout))
    assert segment_layout(0, n, 0, overlap) == [(0, n)]


def test_each_shot_gets_its_own_atlas_and_nothing_leaks_across_the_cut():
    clip, cut = two_shots()
    atlas = fit_clip_atlas(clip, FAST)
    assert isinstance(atlas, ClipAtlas)
    assert atlas.shot_starts == [0, cut]
    assert atlas.segment_ranges() == [(0, cut), (cut, len(clip))]
    frames = render(atlas)
    assert frames.shape == clip.shape
    # The second shot's atlas frames are exactly those of the second shot fitted on its own.
    alone = render(fit_atlas(clip[cut:], FAST))
    assert torch.equal(frames[cut:], alone)


def test_scene_cuts_off_fits_one_atlas():
    clip, _ = two_shots()
    atlas = fit_clip_atlas(clip, FAST, ShotConfig(scene_cuts=False))
    assert atlas.shot_starts == [0] and atlas.segment_ranges() == [(0, len(clip))]


def _pair_warp_errors(clip: torch.Tensor, reference) -> torch.Tensor:
    """Short-term warping error of every pair (t-1, t) -> [T-1]."""
    from deflicker_impl.clip import to_nchw
    from deflicker_impl.flow import warp_with_flow

    cur, prev = to_nchw(clip[1:]), to_nchw(clip[:-1])
    warped = warp_with_flow(prev, reference.flow_prev)
    diff = (cur - warped).abs().mean(1) * reference.mask_prev
    return diff.flatten(1).sum(1) / reference.mask_prev.flatten(1).sum(1).clamp_min(1)


def test_long_shot_segments_blend_without_a_seam():
    """In an overlap the blend of two segments is as steady as either segment on its own (the
    cross-fade adds no seam), and the colour does not step there."""
    clean = panning_clip(48, 40, 56, speed=1.0, seed=7)
    clip = add_synthetic_flicker(clean, window=1, seed=4)
    atlas = fit_clip_atlas(clip, FAST, ShotConfig(max_segment_frames=24, segment_overlap=10))
    ranges = atlas.segment_ranges()
    assert len(ranges) == 3 and atlas.shot_starts == [0]
    frames = render(atlas)
    errors = _pair_warp_errors(frames, compute_warp_reference(clean))
    for (a0, stop), (start, b1) in itertools.pairwise(ranges):
        pairs = slice(start, stop - 1)  # pairs (t, t+1) with both frames in the overlap
        own = []
        for a, b in ((a0, stop), (start, b1)):
            seg_frames = render(next(s.atlas for s in atlas.segments if s.start == a))
            seg_errors = _pair_warp_errors(seg_frames, compute_warp_reference(clean[a:b]))
            own.append(seg_errors[start - a:stop - 1 - a].mean())
        blended = errors[pairs].mean()
        assert blended <= 1.05 * max(own), (float(blended), [float(o) for o in own])
    means = frames.mean((1, 2))
    step = (means[1:] - means[:-1]).abs().sum(1)
    in_overlap = torch.zeros(len(step), dtype=torch.bool)
    for (_, stop), (start, _) in itertools.pairwise(ranges):
        in_overlap[start - 1:stop] = True
    assert step[in_overlap].max() <= 1.5 * step[~in_overlap].max()


def test_refinement_restarts_at_each_shot():
    gen = torch.Generator().manual_seed(2)
    clip = torch.rand(7, 16, 20, 3, generator=gen)
    net = scrambled_net()
    joined = apply_local_refine(clip, net=net, shot_starts=[0, 4])
    assert torch.equal(joined[4:], apply_local_refine(clip[4:], net=net))
    assert torch.equal(joined[:4], apply_local_refine(clip[:4], net=net))
    # without the cut the second shot depends on the first
    assert float((apply_local_refine(clip, net=net)[4] - joined[4]).abs().max()) > 1e-4


def test_refinement_can_write_in_place():
    gen = torch.Generator().manual_seed(3)
    clip = torch.rand(5, 12, 14, 3, generator=gen)
    net = scrambled_net()
    expected = apply_local_refine(clip, net=net, shot_starts=[0, 2])
    same = clip.clone()
    out = apply_local_refine(same, net=net, shot_starts=[0, 2], out=same)
    assert out.data_ptr() == same.data_ptr() and torch.equal(out, expected)
    with pytest.raises(DeflickerInputError, match="out must be"):
        apply_local_refine(clip, net=net, out=torch.zeros(5, 12, 14, 3, dtype=torch.float16))


def test_global_colour_pass_restarts_at_each_shot():
    gen = torch.Generator().manual_seed(4)
    atlas = torch.rand(16, 8, 8, 3, generator=gen)
    atlas[8:] *= 0.3  # the second shot is much darker
    filtered = (atlas * (1 + 0.1 * torch.rand(16, 1, 1, 3, generator=gen))).clamp(0, 1)
    joined = stabilise_global_colour(filtered.clone(), atlas, 5, shot_starts=[0, 8])
    alone = stabilise_global_colour(filtered[8:].clone(), atlas[8:], 5)
    assert torch.allclose(joined[8:], alone, atol=1e-6)
