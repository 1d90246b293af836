"""The harness itself, proven with ComfyUI's core nodes only (independent of our nodes)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_images

from tools.comfy_host import ComfyError, PromptBuilder

pytestmark = pytest.mark.comfy


def empty_image_prompt(width=37, height=21, batch=3, color=0x336699, prefix="harness"):
    p = PromptBuilder()
    image = p.add("EmptyImage", width=width, height=height, batch_size=batch, color=color)
    p.add("SaveImage", images=p.out(image), filename_prefix=prefix)
    return p.build()


def test_in_process_host_saves_what_the_graph_computed(comfy):
    result = comfy.run(empty_image_prompt())

    files = result.image_files("2")
    assert len(files) == 3 and all(f.is_file() for f in files)
    pixels = read_images(files)
    assert pixels.shape == (3, 21, 37, 3)
    assert np.all(pixels == np.array([0x33, 0x66, 0x99]))
    assert set(result.executed_nodes) == {"1", "2"}


def test_in_process_host_reports_invalid_widget_values(comfy):
    prompt = empty_image_prompt()
    prompt["1"]["inputs"]["width"] = 0  # EmptyImage requires width >= 1

    with pytest.raises(ComfyError) as failure:
        comfy.run(prompt)
    assert failure.value.stage == "validation"
    assert failure.value.node_type == "EmptyImage"
    assert "width" in str(failure.value)


def test_in_process_host_reports_unknown_nodes(comfy):
    prompt = empty_image_prompt()
    prompt["1"]["class_type"] = "NoSuchNode"

    with pytest.raises(ComfyError, match="NoSuchNode does not exist"):
        comfy.run(prompt)


def test_in_process_host_reports_exceptions_raised_by_a_node(comfy):
    # A file that passes validation (it exists) but is no video: GetVideoComponents raises.
    (comfy.input_dir / "not_a_video.mp4").write_bytes(b"this is not an mp4 file" * 10)
    p = PromptBuilder()
    video = p.add("LoadVideo", file="not_a_video.mp4")
    parts = p.add("GetVideoComponents", video=p.out(video))
    p.add("SaveImage", images=p.out(parts), filename_prefix="never")

    with pytest.raises(ComfyError) as failure:
        comfy.run(p.build())
    assert failure.value.stage == "execution"
    assert failure.value.node_type in {"LoadVideo", "GetVideoComponents"}
    assert "Traceback (from ComfyUI)" in str(failure.value)


def test_in_process_host_reports_links_to_missing_nodes(comfy):
    prompt = empty_image_prompt()
    prompt["2"]["inputs"]["images"] = ["99", 0]

    with pytest.raises(ComfyError) as failure:
        comfy.run(prompt)
    assert failure.value.stage == "validation"


def test_in_process_host_reuses_the_cache_on_requeue(comfy):
    prompt = empty_image_prompt(prefix="cached")
    comfy.run(prompt)

    again = comfy.run(prompt)

    assert again.executed_nodes == []
    assert {"1", "2"} <= set(again.cached_nodes)


@pytest.mark.slow
def test_http_server_decodes_a_video_and_saves_every_frame(comfy_server, make_clip):
    frames = make_clip(comfy_server.input_dir, "harness_clip.mp4", frames=9, width=40, height=30)
    p = PromptBuilder()
    video = p.add("LoadVideo", file="harness_clip.mp4")
    parts = p.add("GetVideoComponents", video=p.out(video))
    save = p.add("SaveImage", images=p.out(parts), filename_prefix="harness_video")

    entry = comfy_server.run(p.build(), timeout=60)

    assert entry["status"]["status_str"] == "success"
    files = comfy_server.image_files(entry, save)
    assert len(files) == 9
    saved = read_images(files)
    assert saved.shape == frames.shape == (9, 30, 40, 3)
    assert np.abs(saved.astype(int) - frames).max() <= 1  # PNG of the decoded frames


def test_http_server_reports_validation_errors(comfy_server):
    prompt = empty_image_prompt()
    prompt["1"]["inputs"]["batch_size"] = -5

    with pytest.raises(ComfyError) as failure:
        comfy_server.submit(prompt)
    assert failure.value.stage == "validation"
    assert "batch_size" in str(failure.value)


def test_http_server_lists_core_nodes(comfy_server):
    info = comfy_server.object_info("GetVideoComponents")
    assert info["output"] == ["IMAGE", "AUDIO", "FLOAT"]
    with pytest.raises(ComfyError, match="not registered"):
        comfy_server.object_info("NoSuchNode")
