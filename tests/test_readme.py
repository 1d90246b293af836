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


DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "weights").glob("*.md")),
        *sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run"]


def test_every_python_command_in_the_docs_and_scripts_names_something_that_exists():
    # `python -m scripts.x` and `python path/to/x.py` lines: a moved module breaks the Quick start
    # (scripts/demo.sh) long before a test that imports the module directly would notice.
    import importlib.util

    modules, paths = set(), set()
    for doc in DOCS:
        text = doc.read_text()
        modules |= set(re.findall(r"python3?\S* -m ([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", text))
        paths |= set(re.findall(r"python3?\S* ((?:scripts|bench|tools)/[\w/]+\.py)", text))
    assert {"deflicker_impl", "bench.deflicker_bench", "scripts.run_workflow"} <= modules
    ours = {m for m in modules if m.split(".")[0] in {"deflicker_impl", "bench", "scripts", "tools"}}
    missing = sorted(m for m in ours if importlib.util.find_spec(m) is None)
    assert not missing, f"modules named in the docs but not found: {missing}"
    assert not [p for p in paths if not (ROOT / p).is_file()], paths
    # Run by path, a script has only its own folder on sys.path: the project's packages are
    # importable only through `python -m`.
    by_path = [p for p in paths
               if re.search(r"^(from|import) (tools|bench|scripts)\b", (ROOT / p).read_text(), re.MULTILINE)]
    assert not by_path, f"run these as `python -m ...`, not by path: {by_path}"
