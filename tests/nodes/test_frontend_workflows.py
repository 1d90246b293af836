"""Every example workflow opens in ComfyUI's real web editor with each value in its widget.

The host's server (main.py) serves its own frontend (comfyui_frontend_package); headless
Chromium opens it and calls the page's `app.loadGraphData(workflow)`, as opening the file does.
A node type the editor does not know, a node in error, or a widget value that lands in another
widget than the server's definition names for it fails the test (tools/frontend.py). The last
two tests feed it broken copies to show that it does fail.

The browser comes from Debian's packages (scripts/setup_env.sh installs it); the test skips
only where setup recorded why it could not be installed.
"""

from __future__ import annotations

import copy
import json

import pytest

from tools.comfy_host import PACK_ROOT
from tools.frontend import (
    HeadlessChromium,
    browser_unavailable_reason,
    find_browser,
    graph_problems,
    load_workflow,
    open_editor,
)

pytestmark = [pytest.mark.comfy, pytest.mark.frontend]
WORKFLOWS = sorted((PACK_ROOT / "example_workflows").glob("*.json"))


@pytest.fixture(scope="module")
def editor(comfy_server, tmp_path_factory):
    if find_browser() is None:
        reason = browser_unavailable_reason()
        if reason is not None:
            pytest.skip(f"Chromium could not be installed: {reason}")
        pytest.fail("Chromium is not installed: run scripts/setup_env.sh (as root, it runs "
                    "apt-get install chromium-headless-shell)")
    with HeadlessChromium(tmp_path_factory.mktemp("chromium")) as browser:
        open_editor(browser, comfy_server.url)
        yield browser


@pytest.fixture(scope="module")
def definitions(comfy_server) -> dict[str, dict]:
    return comfy_server._get_json("/object_info", timeout=60)


def load(path_or_workflow) -> dict:
    if isinstance(path_or_workflow, dict):
        return path_or_workflow
    return json.loads(path_or_workflow.read_text())


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_loads_into_the_editor_with_every_value_in_its_widget(
        editor, definitions, path):
    workflow = load(path)

    shown = load_workflow(editor, workflow)

    assert graph_problems(workflow, shown, definitions) == []
    ours = [n for n in shown if n["type"] in definitions
            and "deflicker" in definitions[n["type"]].get("category", "")]
    assert ours, "the workflow shows none of the pack's nodes"
    assert len(shown) == len(workflow["nodes"])


def test_a_missing_node_type_is_caught(editor, definitions):
    workflow = load(PACK_ROOT / "example_workflows" / "deflicker_video.json")
    broken = copy.deepcopy(workflow)
    fit = next(n for n in broken["nodes"] if n["type"] == "FitNeuralAtlas")
    fit["type"] = "FitNeuralAtlasRenamed"

    problems = graph_problems(broken, load_workflow(editor, broken), definitions)

    assert any("'FitNeuralAtlasRenamed' is missing in the editor" in p for p in problems)


def test_a_value_that_lands_in_another_widget_is_caught(editor, definitions):
    """Values saved for another widget order: here FitNeuralAtlas's first value is lost, so
    every later value moves into the widget before its own."""
    workflow = load(PACK_ROOT / "example_workflows" / "deflicker_video.json")
    broken = copy.deepcopy(workflow)
    fit = next(n for n in broken["nodes"] if n["type"] == "FitNeuralAtlas")
    fit["widgets_values"] = fit["widgets_values"][1:] + [fit["widgets_values"][-1]]

    problems = graph_problems(broken, load_workflow(editor, broken), definitions)

    assert any("widget 'preset' gets 0 is not one of its options" in p for p in problems), problems
    assert any("widget 'fit_resolution' gets 0 is outside 32..1024" in p for p in problems)
    assert any("widget 'scene_cuts' gets 0.5 is not a boolean" in p for p in problems)
