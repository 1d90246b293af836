"""The generative benchmark's inputs: every kind of row, and a mild flicker that really is mild."""

from __future__ import annotations

import torch
from synthetic_clips import panning_clip

from bench.generative_bench import (
    EVENT_WINDOW,
    MILD_AMPLITUDE,
    clip_inputs,
    parse_args,
    seed_index,
    summarize,
)
from bench.generative_data import SPLITS, template_path
from deflicker_impl.evaluation.metrics import psnr


def test_the_splits_share_no_clip_and_every_clip_is_in_the_pinned_media():
    stems = [stem for split in SPLITS.values() for stem, _ in split.values()]
    names = [name for split in SPLITS.values() for name in split]
    assert len(set(stems)) == len(stems) and len(set(names)) == len(names)
    assert set(SPLITS) == {"dev", "extra", "heldout"}
    missing = [stem for stem in stems if template_path(stem) is None]
    assert not missing, f"not in .venv/bench-media (run scripts/setup_env.sh): {missing}"


def test_a_clip_subset_gets_the_same_flicker_as_the_full_run():
    subset = parse_args(["--split", "heldout", "--clips", "bride_flowers"])
    assert subset.clips == ["bride_flowers"]
    assert seed_index("heldout", "bride_flowers") == 105  # its place in the split, not in --clips
    assert seed_index("dev", "wan_turn") == 0 and seed_index("extra", "curtains") == 7


def test_every_clip_gives_clean_flicker_light_seam_and_mild_rows():
    clean = panning_clip(frames=12, h=32, w=40, speed=1.0)
    rows = clip_inputs("pan", clean, index=0)
    assert [r.label for r in rows] == ["clean", "W=1", "W=3", "W=10", "step", "ramp", "seam",
                                       "mild"]
    mild = rows[-1]
    w3 = next(r for r in rows if r.label == "W=3")
    assert mild.window == EVENT_WINDOW and torch.equal(mild.reference, clean)
    # The same pattern at MILD_AMPLITUDE of its spreads: the error shrinks about as much.
    err_mild = (mild.frames - clean).abs().mean()
    err_w3 = (w3.frames - clean).abs().mean()
    assert 0.5 * MILD_AMPLITUDE < float(err_mild / err_w3) < 1.5 * MILD_AMPLITUDE
    assert psnr(mild.frames, clean) > psnr(w3.frames, clean) + 6.0


def test_summary_counts_the_mild_clips_a_method_made_worse_than_its_input():
    rows = [{"method": "ours", "kind": "mild", "psnr": p, "input_psnr": 35.0, "clip": c,
             "window": EVENT_WINDOW, "ewarp_ratio": 1.0, "seconds_per_frame": 0.0}
            for c, p in (("a", 33.0), ("b", 36.0), ("c", 34.9))]
    summary = summarize(rows, ["ours"])["ours"]
    assert summary["mild_worse_than_input"] == 2 and summary["mild_clips"] == 3
    assert abs(summary["mild_psnr"] - (33.0 + 36.0 + 34.9) / 3) < 1e-9


def test_the_clean_clip_itself_scores_the_floor_and_is_steady_on_reliable_flow(monkeypatch):
    """Each row carries the clean clip's own E_warp ratio (what a result that keeps every
    frame's content can reach) and the ratio on flow-reliable pixels; the clean clip returned
    as the result scores exactly the floor, and far below the input on reliable pixels."""
    import argparse

    from bench import generative_bench as gb

    clean = panning_clip(frames=8, h=32, w=40, speed=1.0)
    w3 = next(r for r in clip_inputs("pan", clean, index=0) if r.label == "W=3")
    monkeypatch.setitem(gb.METHODS, "truth", ("the clean clip", lambda f, c, a: w3.reference))
    rows, _ = gb.run([w3], ["input", "truth"], argparse.Namespace(), log=lambda *_: None)
    by = {r["method"]: r for r in rows}
    assert by["input"]["ewarp_ratio"] == 1.0 and by["input"]["ewarp_ratio_reliable"] == 1.0
    assert by["truth"]["ewarp_ratio"] == by["truth"]["clean_ewarp_ratio"] \
        == by["input"]["clean_ewarp_ratio"] < 1.0
    assert by["truth"]["ewarp_ratio_reliable"] < 0.3
    summary = summarize(rows, ["input", "truth"])
    assert summary["truth"]["synthetic_ewarp_ratio_reliable"] == by["truth"]["ewarp_ratio_reliable"]


def test_the_seam_remover_runs_on_seam_and_clean_rows_only_and_takes_the_seam_out():
    """`seams` (remove_chunk_seams, then faithful colour) on the seam row leaves under 2 levels
    (the issue's target) and finds one seam; on the clean row it finds none; it skips the rest."""
    import argparse

    from bench import generative_bench as gb

    clean = panning_clip(frames=16, h=48, w=64, speed=0.5)
    inputs = [r for r in clip_inputs("pan", clean, index=0) if r.label in ("clean", "W=3", "seam")]
    args = argparse.Namespace(filter_weights=None, faithful_smooth_nodes=None)
    rows, _ = gb.run(inputs, ["input", "seams"], args, log=lambda *_: None)
    ours = {r["label"]: r for r in rows if r["method"] == "seams"}
    assert set(ours) == {"clean", "seam"}
    assert ours["seam"]["seams_found"] == 1 and ours["seam"]["seam_levels"] < 2.0
    assert ours["clean"]["seams_found"] == 0
    inp = next(r for r in rows if r["method"] == "input" and r["label"] == "seam")
    assert inp["seam_levels"] > 12
