"""Optical flow: a known motion recovered, occlusions flagged, the same answer however many
threads compute it."""

from __future__ import annotations

import torch
from synthetic_clips import panning_clip

from deflicker_impl.flow import compute_flow, flow_with_occlusion, occlusion_mask


def test_dis_flow_recovers_a_pan_and_flags_the_border_that_leaves_the_frame():
    clip = panning_clip(frames=2, h=64, w=96, speed=3.0)
    flow, mask = flow_with_occlusion(clip[0], clip[1])
    interior = mask[8:-8, 8:-8].bool()
    # Content moves left by 3 px as the camera pans right.
    assert abs(float(flow[8:-8, 8:-8, 0][interior].median()) + 3.0) < 0.3
    assert abs(float(flow[8:-8, 8:-8, 1][interior].median())) < 0.3
    assert float(mask[:, :2].mean()) < 0.2  # the left columns leave the frame
    assert float(mask[:, 10:-10].mean()) > 0.9


def test_the_two_directions_computed_side_by_side_equal_the_one_thread_answer_exactly():
    clip = panning_clip(frames=2, h=96, w=128, speed=2.5)
    fw = compute_flow(clip[0], clip[1], normalise=True)
    bw = compute_flow(clip[1], clip[0], normalise=True)
    expected = occlusion_mask(fw[None], bw[None])[0]
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            for _ in range(3):  # the background thread is reused between calls
                flow, mask = flow_with_occlusion(clip[0], clip[1], normalise=True)
                assert torch.equal(flow, fw)
                assert torch.equal(mask, expected)
    finally:
        torch.set_num_threads(threads)
