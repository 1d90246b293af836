"""The check behind the editor test (tools/frontend.py), on hand-made editor answers: it must
name each way a workflow can load wrongly, and nothing when it loads right. No browser."""

from __future__ import annotations

import copy

from tools.frontend import graph_problems, misfit

DEFS = {"Fit": {"input": {
    "required": {"images": ("IMAGE",),
                 "preset": ("COMBO", {"options": ["fast", "paper"], "default": "fast"}),
                 "iterations": ("INT", {"default": 0, "min": 0, "max": 100}),
                 "seed": ("INT", {"default": 0, "control_after_generate": True})},
    "optional": {"cuts": ("BOOLEAN", {"default": True}),
                 "model": ("COMBO", {"options": []})}},
    "output": ["IMAGE"], "output_name": ["IMAGE"]}}
WORKFLOW = {"nodes": [
    {"id": 1, "type": "Fit", "widgets_values": ["paper", 20, 7, "fixed", False, "sam.pth"]},
    {"id": 2, "type": "Note", "widgets_values": ["read me"]},
]}


def editor_view(workflow: dict) -> list[dict]:
    """What a correct editor reports for `workflow` (widgets in the definition's order)."""
    names = {"Fit": ["preset", "iterations", "seed", "control_after_generate", "cuts", "model"],
             "Note": ["text"]}
    return [{"id": n["id"], "type": n["type"], "registered": True, "has_errors": False,
             "widgets": [{"name": name, "value": v}
                         for name, v in zip(names[n["type"]], n["widgets_values"], strict=True)],
             "widgets_values": list(n["widgets_values"])} for n in workflow["nodes"]]


def test_a_workflow_that_loads_right_has_no_problems():
    assert graph_problems(WORKFLOW, editor_view(WORKFLOW), DEFS) == []


def test_an_unknown_node_type_and_a_node_in_error_are_named():
    shown = editor_view(WORKFLOW)
    shown[0]["registered"] = False
    assert graph_problems(WORKFLOW, shown, DEFS) == [
        "node 1 (Fit): node type 'Fit' is missing in the editor"]
    shown[0]["registered"], shown[0]["has_errors"] = True, True
    assert graph_problems(WORKFLOW, shown, DEFS) == [
        "node 1 (Fit): the editor marks the node in error"]


def test_values_saved_for_another_widget_order_are_named():
    shifted = copy.deepcopy(WORKFLOW)
    shifted["nodes"][0]["widgets_values"] = [20, "paper", 7, "fixed", False, "sam.pth"]

    problems = graph_problems(shifted, editor_view(shifted), DEFS)

    assert problems == [
        "node 1 (Fit): widget 'preset' gets 20 is not one of its options ['fast', 'paper']",
        "node 1 (Fit): widget 'iterations' gets 'paper' is not a number"]


def test_an_editor_that_puts_a_value_elsewhere_is_named():
    shown = editor_view(WORKFLOW)
    widgets = shown[0]["widgets"]
    widgets[1]["value"], widgets[2]["value"] = widgets[2]["value"], widgets[1]["value"]

    assert graph_problems(WORKFLOW, shown, DEFS) == [
        "node 1 (Fit): widget 'iterations' shows 7, the file has 20 for it",
        "node 1 (Fit): widget 'seed' shows 20, the file has 7 for it"]


def test_a_missing_value_and_an_editor_that_saves_otherwise_are_named():
    short = copy.deepcopy(WORKFLOW)
    short["nodes"][0]["widgets_values"].pop()
    shown = editor_view(WORKFLOW)  # the editor still shows (and would save) six values

    problems = graph_problems(short, shown, DEFS)

    assert problems[0].startswith("node 1 (Fit): 5 widget values for 6 widgets")
    assert problems[-1].startswith("node 1 (Fit): the editor would save widgets_values")


def test_misfit_accepts_model_files_the_server_does_not_have_yet():
    assert misfit(("COMBO", {"options": []}), "sam_vit_b_01ec64.pth") is None
    assert misfit(("COMBO", {"options": ["a"]}), "b") == "'b' is not one of its options ['a']"
    assert misfit(("INT", {"min": 0}), 1.5) == "1.5 is not an integer"
    assert misfit(("FLOAT", {"min": 0.0, "max": 1.0}), True) == "True is not a number"
    assert misfit((["x", "y"], {}), "y") is None  # the V1 spelling of a combo
