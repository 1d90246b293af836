"""A ComfyUI queue that stays healthy: the example workflow queued 20 times through the real
server's HTTP API, each time with another small clip, one prompt cancelled while it runs.

What a user's evening looks like: queue the same graph again and again with another input. Every
output must be its own clip's, deflickered; the server's memory must not grow from prompt to
prompt; a cancelled prompt must leave no output and not disturb the prompts queued after it.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import flicker_frames, flicker_index, write_clip

from tools.comfy_host import PACK_ROOT, ComfyError, read_video
from tools.comfy_workflow import load_workflow, ui_to_api

pytestmark = [pytest.mark.comfy, pytest.mark.slow]
WORKFLOW = PACK_ROOT / "example_workflows" / "deflicker_video.json"
PROMPTS = 20
CANCELLED = 11  # this prompt is interrupted while it runs
ITERATIONS = 60  # atlas steps (the workflow's default is 300): enough for these tiny clips
RSS_MARGIN = 0.10  # the server's RSS after the 20th prompt vs after the 2nd
# Distinct tints (per-channel gains) so that every output can be traced to its own input.
TINTS = list(itertools.product((0.7, 0.85, 1.0), repeat=3))[:PROMPTS]


def make_inputs(input_dir: Path) -> dict[int, np.ndarray]:
    """Clip i: 8..11 frames of a flickering moving disc, its own tint and flicker, at 8 fps."""
    clips = {}
    for i in range(1, PROMPTS + 1):
        frames = flicker_frames(frames=8 + i % 4, width=64, height=48, seed=i)
        tinted = np.clip(frames * np.array(TINTS[i - 1]), 0, 255).round().astype(np.uint8)
        write_clip(input_dir / f"queue_{i:02d}.mp4", tinted, fps=8)
        clips[i] = tinted
    return clips


def prompt_for(base: dict, i: int, iterations: int = ITERATIONS) -> dict:
    prompt = copy.deepcopy(base)
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "LoadVideo":
            inputs["file"] = f"queue_{i:02d}.mp4"
        elif node["class_type"] == "FitNeuralAtlas":
            inputs["iterations"] = iterations
        elif node["class_type"] == "SaveVideo":
            inputs["filename_prefix"] = f"video/queue_{i:02d}"
    return prompt


def running_prompt(server) -> str | None:
    running = server._get_json("/queue").get("queue_running") or []
    return running[0][1] if running else None


def test_twenty_queued_prompts_keep_memory_flat_and_survive_a_cancel(comfy_server):
    server = comfy_server
    clips = make_inputs(server.input_dir)
    base = ui_to_api(load_workflow(WORKFLOW), server._get_json("/object_info", timeout=60))
    (save_id,) = [n for n, node in base.items() if node["class_type"] == "SaveVideo"]
    process = psutil.Process(server.process.pid)

    entries = {i: server.run(prompt_for(base, i), timeout=600) for i in (1, 2)}
    rss_after_2 = process.memory_info().rss
    # The rest as one queue; the cancelled one would fit for minutes if the cancel were lost.
    ids = {i: server.submit(prompt_for(base, i, 20_000 if i == CANCELLED else ITERATIONS))
           for i in range(3, PROMPTS + 1)}
    rss = {2: rss_after_2}
    deadline = time.monotonic() + 900
    while running_prompt(server) != ids[CANCELLED]:
        assert time.monotonic() < deadline, "the prompt to cancel never started"
        time.sleep(0.1)
    time.sleep(2.0)  # well inside FitNeuralAtlas
    server._post_json("/interrupt", {"prompt_id": ids[CANCELLED]})
    for i in range(3, PROMPTS + 1):
        if i == CANCELLED:
            with pytest.raises(ComfyError) as cancelled:
                server.wait(ids[i], timeout=600)
            assert cancelled.value.stage == "interrupted", cancelled.value
        else:
            entries[i] = server.wait(ids[i], timeout=600)
        rss[i] = process.memory_info().rss
    rss_after_20 = process.memory_info().rss

    assert set(entries) == set(range(1, PROMPTS + 1)) - {CANCELLED}
    means = {i: clip.reshape(-1, 3).mean(0) for i, clip in clips.items()}
    for i, entry in entries.items():
        (video,) = server.image_files(entry, save_id)
        saved, fps = read_video(video)
        assert video.name.startswith(f"queue_{i:02d}")
        assert saved.shape == clips[i].shape and fps == 8, (i, saved.shape)
        assert flicker_index(saved) < 0.5 * flicker_index(clips[i]), i
        colour = saved.reshape(-1, 3).mean(0)
        nearest = min(means, key=lambda j: np.abs(means[j] - colour).max())
        assert nearest == i, (i, nearest, colour, means[i])  # its own clip, not another's
    assert not list((server.output_dir / "video").glob(f"queue_{CANCELLED:02d}*"))
    growth = rss_after_20 / rss_after_2 - 1
    print(json.dumps({"rss_mib": {i: round(v / 2**20, 1) for i, v in rss.items()},
                      "growth_2_to_20": round(growth, 4)}))
    assert growth < RSS_MARGIN, (f"RSS grew {growth:.1%} from prompt 2 "
                                 f"({rss_after_2 / 2**20:.0f} MiB) to prompt 20 "
                                 f"({rss_after_20 / 2**20:.0f} MiB)")
