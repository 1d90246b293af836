"""Our nodes inside the real ComfyUI 0.3.75 host: registration, a video graph, cache, errors.

The graph is the one users build: LoadVideo -> GetVideoComponents -> FitNeuralAtlas ->
SaveImage (atlas frames) + PreviewImage (atlas texture), on a 63x47 flickering clip (odd size on
purpose: the output must have exactly the input's size).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from conftest import flicker_frames, flicker_index, read_clip, read_images, write_clip

from tools.comfy_host import ComfyError, PromptBuilder

pytestmark = pytest.mark.comfy

FIT = "FitNeuralAtlas"
LATER_NODES = ("NeuralFilter", "LocalFlickerRefine")
CLIP_FRAMES, CLIP_W, CLIP_H = 12, 63, 47
# Few iterations keep the real-host suite short; the atlas still has to remove the flicker.
FAST_FIT = {"preset": "fast", "iterations": 20, "atlas_resolution": 128, "seed": 0}


def combo_options(spec) -> list | None:
    """Options of a combo input spec, in either of ComfyUI's two spellings."""
    kind = spec[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return spec[1].get("options")
    return None


def widget_defaults(input_types: dict) -> dict:
    """Default value of every required widget (non-link) input of a node."""
    values = {}
    for name, spec in input_types["required"].items():
        options = spec[1] if len(spec) > 1 else {}
        combo = combo_options(spec)
        if combo is not None:
            values[name] = options.get("default", combo[0])
        elif spec[0] in ("INT", "FLOAT", "BOOLEAN", "STRING"):
            assert "default" in options, f"widget {name} has no default"
            values[name] = options["default"]
    return values


def fit_graph(comfy_types: dict, video_file: str, prefix: str, **overrides) -> tuple[dict, dict]:
    """API prompt of the user graph; returns (prompt, ids of the nodes by role)."""
    p = PromptBuilder()
    video = p.add("LoadVideo", file=video_file)
    parts = p.add("GetVideoComponents", video=p.out(video))
    fit_inputs = widget_defaults(comfy_types) | {**FAST_FIT, **overrides}
    fit = p.add(FIT, images=p.out(parts), **fit_inputs)
    save = p.add("SaveImage", images=p.out(fit, 1), filename_prefix=prefix)
    preview = p.add("PreviewImage", images=p.out(fit, 2))
    return p.build(), {"fit": fit, "save": save, "preview": preview}


# -- registration ------------------------------------------------------------------------------

def test_pack_registers_fit_neural_atlas_with_its_interface(comfy):
    comfy.require_pack()
    node = comfy.node_class(FIT)
    assert node is not None, f"{FIT} is not in NODE_CLASS_MAPPINGS"
    assert tuple(node.RETURN_TYPES) == ("NEURAL_ATLAS", "IMAGE", "IMAGE", "MASK", "IMAGE")

    required = node.INPUT_TYPES()["required"]
    assert required["images"][0] == "IMAGE"
    assert {"fast", "paper"} <= set(combo_options(required["preset"]))
    for name in ("iterations", "atlas_resolution", "seed"):
        assert required[name][0] == "INT", name
    widgets = {**required, **node.INPUT_TYPES().get("optional", {})}
    missing = [n for n, spec in widgets.items() if not (len(spec) > 1 and spec[1].get("tooltip"))]
    assert not missing, f"inputs without tooltip: {missing}"


@pytest.mark.parametrize("name", LATER_NODES)
def test_later_stage_nodes_take_and_return_images(comfy, name):
    node = comfy.node_class(name)
    assert node is not None, f"{name} is not registered"
    assert list(node.RETURN_TYPES) == ["IMAGE"]
    assert node.INPUT_TYPES()["required"]["images"][0] == "IMAGE"


def test_http_server_lists_fit_inputs_with_tooltips(comfy_server):
    info = comfy_server.object_info(FIT)

    assert info["output"] == ["NEURAL_ATLAS", "IMAGE", "IMAGE", "MASK", "IMAGE"]
    required = info["input"]["required"]
    assert required["images"][0] == "IMAGE"
    for name in ("preset", "iterations", "atlas_resolution", "seed"):
        assert required[name][1].get("tooltip"), f"{name} has no tooltip over HTTP"


# -- the user graph, in-process ----------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_in_comfy(comfy):
    path = write_clip(comfy.input_dir / "flicker_63x47.mp4",
                      flicker_frames(CLIP_FRAMES, CLIP_W, CLIP_H, seed=3))
    return path.name, read_clip(path)


@pytest.fixture(scope="module")
def fitted(comfy, clip_in_comfy):
    """One run of the user graph in-process: (prompt, node ids, result, decoded input frames)."""
    name, frames = clip_in_comfy
    prompt, ids = fit_graph(comfy.input_options(FIT), name, "atlas_frames")
    return prompt, ids, comfy.run(prompt), frames


def test_atlas_frames_have_the_input_count_and_exact_size(fitted):
    _, ids, result, frames = fitted
    files = result.image_files(ids["save"])

    assert len(files) == CLIP_FRAMES == len(frames)
    saved = read_images(files)
    assert saved.shape == (CLIP_FRAMES, CLIP_H, CLIP_W, 3)


def test_atlas_frames_flicker_less_than_the_input(fitted):
    _, ids, result, frames = fitted
    saved = read_images(result.image_files(ids["save"]))

    before, after = flicker_index(frames), flicker_index(saved)
    assert before > 5.0, "the test clip must flicker visibly"
    assert after < 0.5 * before, f"flicker index {before:.2f} -> {after:.2f}"
    # ... while still showing the clip, not a constant frame.
    assert np.abs(saved.astype(float) - frames).mean() < 30
    assert saved.std(axis=(1, 2)).mean() > 5


def test_atlas_texture_is_previewed(fitted):
    _, ids, result, _ = fitted
    files = result.image_files(ids["preview"])

    assert len(files) == 1 and files[0].is_file()
    texture = read_images(files)[0]
    assert min(texture.shape[:2]) >= 8 and texture.std() > 1


def test_fit_moves_the_progress_bar(fitted):
    _, ids, result, _ = fitted
    steps = result.progress(ids["fit"])

    assert len(steps) >= 3, f"progress messages of the fit: {steps}"
    # A node may run several phases (fit, then render), each with its own bar total.
    for earlier, later in itertools.pairwise(steps):
        if earlier["max"] == later["max"]:
            assert earlier["value"] <= later["value"], steps
    assert steps[-1]["value"] == steps[-1]["max"]


def test_requeued_prompt_is_served_from_the_cache(comfy, fitted):
    prompt, ids, first, _ = fitted
    assert ids["fit"] in first.executed_nodes
    # The classic cache keeps the last prompt's nodes only: queue it once more in case another
    # test's prompt ran in between, then re-queue.
    comfy.run(prompt)

    again = comfy.run(prompt)

    assert ids["fit"] not in again.executed_nodes
    assert ids["fit"] in again.cached_nodes
    assert again.progress(ids["fit"]) == []


def test_cancel_stops_the_fit_within_a_second(comfy):
    prompt, ids = fit_test_images(comfy, "good", frames=6, width=48, height=32)
    prompt[ids["fit"]]["inputs"]["iterations"] = 100_000  # would run for many minutes
    prompt[ids["fit"]]["inputs"]["seed"] = 1  # not cached by another test

    run = comfy.run_in_background(prompt)
    deadline = time.monotonic() + 60
    while not comfy.progress_messages(ids["fit"]):
        assert run.thread.is_alive() and time.monotonic() < deadline, f"no progress: {run}"
        time.sleep(0.05)
    pressed = time.monotonic()
    comfy.interrupt()
    run.thread.join(timeout=30)

    assert not run.thread.is_alive(), "the fit did not stop after Cancel"
    assert run.error is not None and run.error.stage == "interrupted", run
    assert run.ended - pressed < 1.0


# -- NeuralFilter -------------------------------------------------------------------------------

def test_neural_filter_after_the_atlas_keeps_count_and_size_and_removes_flicker(comfy, fitted):
    prompt, ids, _, frames = fitted
    prompt = dict(prompt)  # the same graph plus NeuralFilter fed by the clip and the atlas
    prompt["90"] = {"class_type": "NeuralFilter", "inputs": {
        "images": prompt[ids["fit"]]["inputs"]["images"], "atlas_frames": [ids["fit"], 1],
        "weights": "neural_filter.safetensors"}}
    prompt["91"] = {"class_type": "SaveImage",
                    "inputs": {"images": ["90", 0], "filename_prefix": "filtered"}}

    result = comfy.run(prompt)

    saved = read_images(result.image_files("91"))
    assert saved.shape == (CLIP_FRAMES, CLIP_H, CLIP_W, 3)
    assert flicker_index(saved) < 0.5 * flicker_index(frames)


def test_confidence_feeds_a_faithful_neural_filter_and_is_previewed(comfy, fitted):
    prompt, ids, _, frames = fitted
    prompt = dict(prompt)
    images = prompt[ids["fit"]]["inputs"]["images"]
    prompt["92"] = {"class_type": "NeuralFilter", "inputs": {
        "images": images, "atlas_frames": [ids["fit"], 1], "weights": "neural_filter.safetensors",
        "atlas": [ids["fit"], 0], "confidence": [ids["fit"], 3], "faithful": True,
        "strength": 1.0, "flicker_window": 10}}
    prompt["93"] = {"class_type": "SaveImage",
                    "inputs": {"images": ["92", 0], "filename_prefix": "faithful"}}
    prompt["94"] = {"class_type": "SaveImage",
                    "inputs": {"images": [ids["fit"], 4], "filename_prefix": "confidence"}}
    prompt["95"] = {"class_type": "NeuralFilter", "inputs": {
        "images": images, "atlas_frames": [ids["fit"], 1], "weights": "neural_filter.safetensors",
        "strength": 0.0}}
    prompt["96"] = {"class_type": "SaveImage",
                    "inputs": {"images": ["95", 0], "filename_prefix": "unchanged"}}

    result = comfy.run(prompt)

    faithful = read_images(result.image_files("93"))
    preview = read_images(result.image_files("94"))
    assert faithful.shape == preview.shape == (CLIP_FRAMES, CLIP_H, CLIP_W, 3)
    assert flicker_index(faithful) < 0.7 * flicker_index(frames)
    unchanged = read_images(result.image_files("96"))  # strength 0: the input itself
    diff = np.abs(unchanged.astype(np.float32) - frames.astype(np.float32))
    assert float(diff.mean()) < 0.5 and float(diff.max()) <= 2.0


@pytest.mark.parametrize("node, file", [
    ("NeuralFilter", "neural_filter_damaged.safetensors"),
    ("LocalFlickerRefine", "local_refine_damaged.safetensors"),
])
def test_a_damaged_weights_file_is_named_in_the_error(comfy, node, file):
    models = comfy.base / "models" / "deflicker"
    models.mkdir(parents=True, exist_ok=True)
    (models / file).write_bytes(b"\0" * 100)
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=3, width=24, height=16)
    frames = {"atlas_frames": p.out(images)} if node == "NeuralFilter" else {}
    out = p.add(node, images=p.out(images), weights=file, **frames)
    p.add("SaveImage", images=p.out(out), filename_prefix="never")

    with pytest.raises(ComfyError) as failure:
        comfy.run(p.build())
    assert failure.value.node_type == node
    assert failure.value.exception_type.endswith("WeightsError")
    assert file in str(failure.value)


# -- LocalFlickerRefine -------------------------------------------------------------------------

def test_local_refine_keeps_count_and_exact_size(comfy):
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=5, width=23, height=17)
    refined = p.add("LocalFlickerRefine", images=p.out(images),
                    weights="local_refine.safetensors")
    save = p.add("SaveImage", images=p.out(refined), filename_prefix="refined")

    saved = read_images(comfy.run(p.build()).image_files(save))

    assert saved.shape == (5, 17, 23, 3)


# -- RemoveChunkSeams -------------------------------------------------------------------------

def test_remove_chunk_seams_puts_a_generated_clips_chunks_on_one_colour(comfy):
    """A Wan-style chunk seam (+15 red, -13 blue from frame 8 on) through LoadVideo: found at its
    frame, named in the node's text, gone from the saved frames (within a level, after H.264)."""
    import torch
    from synthetic_clips import panning_clip

    from deflicker_impl.evaluation.synthetic import add_chunk_seam

    clean = panning_clip(16, 48, 64, 0.5, seed=4)
    seamed = add_chunk_seam(clean)
    write_clip(comfy.input_dir / "seam_64x48.mp4", (seamed * 255).round().byte().numpy())
    p = PromptBuilder()
    video = p.add("LoadVideo", file="seam_64x48.mp4")
    parts = p.add("GetVideoComponents", video=p.out(video))
    fixed = p.add("RemoveChunkSeams", images=p.out(parts))
    save = p.add("SaveImage", images=p.out(fixed), filename_prefix="seamless")
    text = p.add("PreviewAny", source=p.out(fixed, 1))

    result = comfy.run(p.build())
    saved = torch.from_numpy(read_images(result.image_files(save))).float()

    def halves(x):
        return (x[8:].mean(dim=(0, 1, 2)) - x[:8].mean(dim=(0, 1, 2)))

    assert saved.shape == (16, 48, 64, 3)
    assert float((halves(saved) - halves(clean * 255)).abs().max()) < 1.0
    assert "chunk seams removed at frame 8 (R +15, G +0, B -13)" in result.outputs[text]["text"][0]


def test_a_node_leaves_the_hosts_thread_count_as_it_was(comfy):
    """The pack's nodes run with the pack's thread choice (DEFLICKER_THREADS=1 in the tests)
    and give ComfyUI back its own count, which its samplers use."""
    import torch

    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=4, width=23, height=17)
    metrics = p.add("DeflickerMetrics", images=p.out(images), flow_from="images",
                    measure_long_side=0)
    p.add("PreviewImage", images=p.out(metrics, 5))  # its plot
    host = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        comfy.run(p.build())
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(host)


# -- bad input ---------------------------------------------------------------------------------

def test_unknown_preset_is_refused_before_execution(comfy, clip_in_comfy):
    prompt, _ = fit_graph(comfy.input_options(FIT), clip_in_comfy[0], "never",
                          preset="no-such-preset")

    with pytest.raises(ComfyError) as failure:
        comfy.run(prompt)
    assert failure.value.stage == "validation"
    assert failure.value.node_type == FIT
    assert "preset" in str(failure.value)


def test_negative_iterations_are_refused_before_execution(comfy, clip_in_comfy):
    prompt, _ = fit_graph(comfy.input_options(FIT), clip_in_comfy[0], "never", iterations=-3)

    with pytest.raises(ComfyError, match="iterations") as failure:
        comfy.run(prompt)
    assert failure.value.stage == "validation"


def fit_test_images(comfy, kind: str, frames: int = 4, width: int = 24, height: int = 16):
    """Prompt: DeflickerTestImages(kind) -> FitNeuralAtlas -> SaveImage; returns (prompt, ids)."""
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind=kind, frames=frames, width=width, height=height)
    fit_inputs = widget_defaults(comfy.input_options(FIT)) | FAST_FIT
    fit = p.add(FIT, images=p.out(images), **fit_inputs)
    save = p.add("SaveImage", images=p.out(fit, 1), filename_prefix=f"bad_{kind}")
    return p.build(), {"fit": fit, "save": save}


@pytest.mark.parametrize("kind, says", [
    ("empty", "0 frames"),
    ("nan", "NaN"),
    ("inf", "infinite"),
    ("channels_first", "channels"),
])
def test_bad_image_batches_fail_with_a_readable_error(comfy, kind, says):
    prompt, _ = fit_test_images(comfy, kind)

    with pytest.raises(ComfyError) as failure:
        comfy.run(prompt)
    assert failure.value.stage == "execution"
    assert failure.value.node_type == FIT
    assert failure.value.exception_type.endswith("DeflickerInputError")
    assert says in str(failure.value)


@pytest.mark.parametrize("kind", ["gray", "rgba"])
def test_gray_and_rgba_batches_give_rgb_frames_of_the_same_size(comfy, kind):
    prompt, ids = fit_test_images(comfy, kind, frames=3)

    saved = read_images(comfy.run(prompt).image_files(ids["save"]))

    assert saved.shape == (3, 16, 24, 3)


# -- the same graph through the HTTP server ----------------------------------------------------

def test_http_server_runs_the_fit_graph_and_saves_every_frame(comfy_server):
    path = write_clip(comfy_server.input_dir / "flicker_63x47.mp4",
                      flicker_frames(CLIP_FRAMES, CLIP_W, CLIP_H, seed=3))
    frames = read_clip(path)
    types = {"required": comfy_server.object_info(FIT)["input"]["required"]}
    prompt, ids = fit_graph(types, path.name, "http_atlas")

    entry = comfy_server.run(prompt, timeout=120)

    assert entry["status"]["status_str"] == "success"
    saved = read_images(comfy_server.image_files(entry, ids["save"]))
    assert saved.shape == (CLIP_FRAMES, CLIP_H, CLIP_W, 3)
    assert flicker_index(saved) < 0.5 * flicker_index(frames)
    preview = comfy_server.image_files(entry, ids["preview"])
    assert len(preview) == 1 and preview[0].is_file()
