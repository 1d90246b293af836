"""bench/faithful_variants.py: the faithful tail on stored stage outputs is the benchmark's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from synthetic_clips import panning_clip

from bench import generative_bench as gb
from bench.faithful_variants import (
    cache_folder,
    faithful_output,
    parse_args,
    parse_variant,
    stage_outputs,
)
from deflicker_impl.errors import DeflickerInputError


@pytest.fixture(scope="module")
def flickered():
    clean = panning_clip(frames=12, h=48, w=64, speed=1.0)
    return next(r for r in gb.clip_inputs("pan", clean, index=0) if r.label == "W=3")


def test_stored_outputs_give_exactly_the_benchmarks_faithful_rows(flickered, tmp_path):
    """The first row of the tool is the benchmark's `ours`, a variant the pipeline with that
    setting (here the release before the straight pieces: `faithful_previous`), bit for bit,
    and a second run reads what the first stored."""
    args = SimpleNamespace(filter_weights=None, faithful_smooth_nodes=None)
    path = tmp_path / "pan_W=3.pt"
    stored = stage_outputs(flickered, path)
    assert path.exists() and not list(tmp_path.glob("*.partial"))
    cache: dict = {}
    for variant, settings in (("ours", {}), ("faithful_previous", gb.PREVIOUS_FAITHFUL)):
        torch.manual_seed(0)
        expected = gb._pipelines(flickered.frames, cache, variant, args)
        assert torch.equal(faithful_output(flickered, stored, settings), expected)
    again = stage_outputs(flickered, path)
    assert torch.equal(again["filtered"], stored["filtered"])
    assert torch.equal(faithful_output(flickered, again, {}), faithful_output(flickered, stored,
                                                                              {}))


def test_a_variant_names_fields_of_the_flicker_config_and_the_held_out_half_is_refused():
    assert parse_variant("floor:noise_floor=0.03,light_pieces=0") == (
        "floor", {"noise_floor": 0.03, "light_pieces": 0})
    with pytest.raises(SystemExit, match="FIELD one of"):
        parse_variant("x:no_such_field=1")
    with pytest.raises(DeflickerInputError, match="light_pieces must be a whole number"):
        parse_variant("x:light_pieces=-1")
    with pytest.raises(SystemExit):
        parse_args(["--split", "heldout"])
    assert [name for name, _ in parse_args(["--variant", "a:light_pieces=1"]).variants] == [
        "this release", "a"]


def test_other_filter_weights_get_their_own_cache_folder(tmp_path):
    shipped = parse_args(["--cache", str(tmp_path)])
    copy = tmp_path / "mine.safetensors"
    copy.write_bytes(b"not the shipped weights")
    mine = parse_args(["--cache", str(tmp_path), "--filter-weights", str(copy)])
    assert cache_folder(shipped) == tmp_path / "faithful_dev_32f_320px"
    before = cache_folder(mine)
    assert before.name.startswith("faithful_dev_32f_320px_filter_")
    copy.write_bytes(b"re-exported")  # same name, new content: not the stored outputs
    assert cache_folder(mine) != before
