"""Every example workflow (example_workflows/*.json, UI format) runs in the real ComfyUI host.

Each file is converted to API format with the live node definitions (tools/comfy_workflow.py,
which also proves that its widget values line up with the installed nodes), run on the bundled
demo clip (48 frames, 384x216, 25 fps), and its saved videos are checked: frame count, size,
frame rate, and that the flicker went down.

Adding a workflow = dropping its UI-format .json into example_workflows/. A workflow that needs
something CI must prepare first (a model file, say) gets an optional sidecar
example_workflows/ci/<name>.json (ComfyUI's template browser does not look into subfolders):
    {"fixtures": ["sam_checkpoint"],          # pytest fixtures to request before the run
     "overrides": {"12": {"model_name": "tiny.pth"}},   # API inputs to set, by node id
     "skip": "why it cannot run in CI"}        # every key optional
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import flicker_index

from scripts import run_workflow
from tools.comfy_host import PACK_DIR_NAME, PACK_ROOT, read_video
from tools.comfy_workflow import definitions_from_classes, ui_to_api, widget_slots

pytestmark = pytest.mark.comfy
WORKFLOW_DIR = PACK_ROOT / "example_workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.json"))
DEMO = WORKFLOW_DIR / "demo_flicker.mp4"
OUR_NODES = ("FitNeuralAtlas", "NeuralFilter", "LocalFlickerRefine", "DeflickerMetrics",
             "DeflickerCompare")


@pytest.fixture(scope="module")
def definitions(comfy):
    comfy.require_pack()
    import nodes

    return definitions_from_classes(nodes.NODE_CLASS_MAPPINGS)


@pytest.fixture(scope="module")
def demo_in_comfy(comfy):
    comfy.require_pack()  # loading it copies the demo clip into the input folder
    return read_video(comfy.input_dir / DEMO.name)


def saved_videos(result, prompt) -> dict[str, Path]:
    """SaveVideo node id -> the file it wrote."""
    out = {}
    for node_id, node in prompt.items():
        if node["class_type"] == "SaveVideo":
            files = result.image_files(node_id)
            assert len(files) == 1 and files[0].is_file(), result.outputs.get(node_id)
            out[node_id] = files[0]
    return out


def test_pack_puts_the_demo_clip_into_comfys_input_folder(comfy):
    """The examples' LoadVideo reads demo_flicker.mp4: they must run as soon as they are opened."""
    comfy.require_pack()
    provided = comfy.input_dir / DEMO.name
    assert provided.is_file() and provided.read_bytes() == DEMO.read_bytes()


def test_there_are_example_workflows_with_a_note_each():
    assert len(WORKFLOWS) >= 3
    for path in WORKFLOWS:
        workflow = json.loads(path.read_text())
        notes = [n for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")]
        assert notes and len(notes[0]["widgets_values"][0]) > 100, path.name
        assert workflow.get("version") == 0.4


def test_seed_of_the_atlas_has_no_randomize_widget(definitions):
    # A seed that changes after every queue would refit the atlas on every re-queue.
    names = [name for name, _ in widget_slots(definitions["FitNeuralAtlas"])]
    after_seed = names[names.index("seed") + 1:names.index("seed") + 2]
    assert after_seed != [None], "a control_after_generate widget follows the seed"


def ci_prompt(path: Path, definitions: dict, request) -> dict:
    """The API prompt CI runs for a workflow file, prepared as its optional sidecar says."""
    sidecar = path.parent / "ci" / path.name
    settings = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    if settings.get("skip"):
        pytest.skip(settings["skip"])
    for fixture in settings.get("fixtures", []):
        request.getfixturevalue(fixture)
    prompt = ui_to_api(json.loads(path.read_text()), definitions)
    for node_id, inputs in settings.get("overrides", {}).items():
        prompt[node_id]["inputs"].update(inputs)
    return prompt


@pytest.mark.slow
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_runs_and_deflickers_the_demo_clip(comfy, definitions, demo_in_comfy,
                                                            path, request):
    frames, fps = demo_in_comfy
    prompt = ci_prompt(path, definitions, request)
    assert {n["class_type"] for n in prompt.values()} & set(OUR_NODES)

    result = comfy.run(prompt)

    videos = saved_videos(result, prompt)
    assert videos, "the workflow saves no video"
    before = flicker_index(frames)
    for node_id, file in videos.items():
        saved, saved_fps = read_video(file)
        assert saved.shape[0] == frames.shape[0] == 48
        assert saved_fps == fps == 25
        _, h, w, _ = frames.shape
        if saved.shape[1:3] == (h, w):
            assert flicker_index(saved) < 0.3 * before, (node_id, flicker_index(saved), before)
        else:  # the side-by-side comparison: input on the left, deflickered on the right
            assert saved.shape[1:3] == (h, 2 * w + 4)
            left, right = saved[:, :, :w], saved[:, :, w + 4:]
            assert flicker_index(right) < 0.3 * flicker_index(left)
            assert flicker_index(left) > 0.8 * before
    for node_id, node in prompt.items():
        if node["class_type"] == "DeflickerMetrics":
            check_metrics_outputs(result, prompt, node_id)
        if node["class_type"] in ("PreviewImage", "DeflickerCompare"):  # e.g. the atlas texture
            shown = result.image_files(node_id)
            assert shown and all(f.is_file() for f in shown), (node_id, node["class_type"])


def check_metrics_outputs(result, prompt, metrics_id):
    ui = result.outputs[metrics_id]
    plot = result.image_files(metrics_id)
    assert len(plot) == 1 and plot[0].is_file()
    summary = ui["text"][0]
    assert "flicker index" in summary and "ratio" in summary
    ratio = float(summary.split("flicker index:")[1].split("ratio ")[1].split(")")[0])
    assert ratio < 0.3, summary
    shown = [result.outputs[i]["text"][0] for i, n in prompt.items()
             if n["class_type"] == "PreviewAny"]
    assert shown == [summary]
    assert result.progress(metrics_id), "the metrics node never moved the progress bar"


@pytest.mark.slow
def test_requeued_example_workflow_is_served_from_the_cache(comfy, definitions, demo_in_comfy):
    path = WORKFLOW_DIR / "deflicker_compare_metrics.json"
    prompt = ui_to_api(json.loads(path.read_text()), definitions)
    comfy.run(prompt)  # computed, or cached from the run above

    again = comfy.run(prompt)

    assert again.executed_nodes == []
    assert set(prompt) <= set(again.cached_nodes)


@pytest.mark.slow
def test_run_workflow_script_drives_a_headless_server(tmp_path, make_clip):
    """scripts/run_workflow.py (the demo's driver): main.py server, /object_info conversion,
    LoadVideo pointed at --input, outputs copied out."""
    frames = make_clip(tmp_path, "small.mp4", frames=10, width=48, height=32, fps=8)
    out = tmp_path / "out"

    status = run_workflow.main([str(WORKFLOW_DIR / "deflicker_video.json"),
                                "--input", str(tmp_path / "small.mp4"), "--out-dir", str(out),
                                "--timeout", "300"])

    assert status == 0
    (video,) = out.glob("*.mp4")
    saved, fps = read_video(video)
    assert saved.shape == frames.shape and fps == 8
    assert flicker_index(saved) < 0.5 * flicker_index(frames)


def test_template_browser_lists_and_serves_the_workflows(comfy_server):
    listed = comfy_server._get_json("/workflow_templates")

    assert sorted(listed.get(PACK_DIR_NAME, [])) == sorted(p.stem for p in WORKFLOWS)
    served = comfy_server._get_json(f"/api/workflow_templates/{PACK_DIR_NAME}/"
                                    "deflicker_video.json")
    assert served == json.loads((WORKFLOW_DIR / "deflicker_video.json").read_text())
