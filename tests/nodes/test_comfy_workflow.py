"""UI-format -> API-format conversion of workflow files (tools/comfy_workflow.py), no host."""

from __future__ import annotations

import pytest

from tools.comfy_workflow import UiGraph, WorkflowError, ui_to_api, widget_slots

DEFS = {
    "Loader": {"input": {"required": {"file": ("COMBO", {"options": ["a.mp4", "b.mp4"],
                                                         "video_upload": True})}},
               "output": ["VIDEO"], "output_name": ["VIDEO"]},
    "Split": {"input": {"required": {"video": ("VIDEO",)}},
              "output": ["IMAGE", "FLOAT"], "output_name": ["images", "fps"]},
    "Fit": {"input": {"required": {"images": ("IMAGE",), "mode": (["fast", "paper"],),
                                   "seed": ("INT", {"default": 0}),
                                   "noise_seed": ("INT", {"default": 0,
                                                          "control_after_generate": False})},
                      "optional": {"fps": ("FLOAT", {"default": 30.0})}},
            "output": ["IMAGE"], "output_name": ["images"]},
}


def test_editor_only_values_follow_seed_and_upload_widgets():
    assert [n for n, _ in widget_slots(DEFS["Fit"])] == ["mode", "seed", None, "noise_seed",
                                                         "fps"]
    assert [n for n, _ in widget_slots(DEFS["Loader"])] == ["file", None]


def test_built_graph_converts_to_the_api_prompt_with_links_and_widget_inputs():
    g = UiGraph(DEFS)
    g.note("read me", (0, 0))
    loader = g.add("Loader", (0, 0), {"file": "b.mp4"})
    split = g.add("Split", (1, 0))
    fit = g.add("Fit", (2, 0), {"seed": 7})
    g.connect(loader, 0, split, "video")
    g.connect(split, 0, fit, "images")
    g.connect(split, 1, fit, "fps")  # a widget driven by a link

    prompt = ui_to_api(g.to_json(), DEFS)

    assert prompt == {
        str(loader): {"class_type": "Loader", "inputs": {"file": "b.mp4"}},
        str(split): {"class_type": "Split", "inputs": {"video": [str(loader), 0]}},
        str(fit): {"class_type": "Fit", "inputs": {
            "images": [str(split), 0], "mode": "fast", "seed": 7, "noise_seed": 0,
            "fps": [str(split), 1]}},
    }


def test_widget_values_that_do_not_match_the_installed_node_are_refused():
    g = UiGraph(DEFS)
    g.add("Fit", (0, 0))
    workflow = g.to_json()
    workflow["nodes"][0]["widgets_values"].pop(1)  # e.g. saved by an older version of the node

    with pytest.raises(WorkflowError, match="4 widget values, the installed node expects 5"):
        ui_to_api(workflow, DEFS)


def test_unknown_nodes_are_named():
    g = UiGraph({**DEFS, "Custom": DEFS["Split"]})
    g.add("Custom", (0, 0))
    with pytest.raises(WorkflowError, match="Custom is not installed"):
        ui_to_api(g.to_json(), DEFS)


def test_bypassed_nodes_pass_their_input_through_and_muted_ones_drop_out():
    g = UiGraph(DEFS)
    loader = g.add("Loader", (0, 0))
    split = g.add("Split", (1, 0))
    first = g.add("Fit", (2, 0))
    second = g.add("Fit", (3, 0))
    g.connect(loader, 0, split, "video")
    g.connect(split, 0, first, "images")
    g.connect(first, 0, second, "images")
    workflow = g.to_json()
    workflow["nodes"][first - 1]["mode"] = 4  # bypass (Ctrl+B)

    prompt = ui_to_api(workflow, DEFS)

    assert str(first) not in prompt
    assert prompt[str(second)]["inputs"]["images"] == [str(split), 0]

    workflow["nodes"][first - 1]["mode"] = 2  # mute
    assert "images" not in ui_to_api(workflow, DEFS)[str(second)]["inputs"]
