"""The README for users stays true: node reference up to date, pictures and files it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_picture_in_the_readme_exists_and_is_small():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(pictures) >= 3
    for picture in pictures:
        path = ROOT / picture
        assert path.is_file(), picture
        if picture != "bench/figures/demo_before_after.png":  # older figure, not ours to shrink
            assert path.stat().st_size < 300_000, picture


def test_every_example_workflow_is_described():
    for path in (ROOT / "example_workflows").glob("*.json"):
        assert f"`{path.name}`" in README, path.name


def test_user_sections_are_there():
    for heading in ("Before and after", "Install", "Example workflows", "Recipes", "Nodes",
                    "Troubleshooting", "Benchmark", "Weights and training", "License"):
        assert re.search(rf"(?m)^## {re.escape(heading)}", README), heading


@pytest.mark.comfy
def test_node_reference_matches_the_nodes(comfy):
    from scripts import node_reference

    comfy.require_pack()
    expected = node_reference.reference_markdown()

    assert node_reference.readme_section(README) == expected, (
        "README.md's node reference is out of date: run "
        "`.venv/bin/python scripts/node_reference.py --write`")
