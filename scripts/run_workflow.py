"""Run a ComfyUI workflow file headless: start ComfyUI's server, queue the workflow, fetch outputs.

    .venv/bin/python -m scripts.run_workflow example_workflows/deflicker_video.json \
        --input example_workflows/demo_flicker.mp4 --out-dir out/

What a user does in the browser, without one: ComfyUI's own main.py is started on a free loopback
port with this pack in custom_nodes/ (tools/comfy_host.py, ComfyServer), the UI-format workflow is
converted to API format with the server's /object_info (tools/comfy_workflow.py), every
LoadVideo is pointed at --input (copied into ComfyUI's input folder), the prompt is queued with
POST /prompt, and the files its SaveVideo/SaveImage nodes wrote are copied to --out-dir.
Prints one JSON line: {"outputs": [paths], "seconds": ...}. Exit status 2 on a workflow error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from tools.comfy_host import ComfyError, ComfyServer
from tools.comfy_workflow import WorkflowError, load_workflow, ui_to_api

ROOT = Path(__file__).resolve().parent.parent


def server_definitions(server: ComfyServer) -> dict[str, dict]:
    return server._get_json("/object_info", timeout=60)


def run(workflow_path: Path, clip: Path | None, out_dir: Path, work_dir: Path,
        timeout: float) -> list[Path]:
    out_dir, work_dir = out_dir.resolve(), work_dir.resolve()  # main.py runs in another cwd
    out_dir.mkdir(parents=True, exist_ok=True)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    with ComfyServer(work_dir) as server:
        print(f"ComfyUI running at {server.url} (log: {server.log_path})", file=sys.stderr)
        prompt = ui_to_api(load_workflow(workflow_path), server_definitions(server))
        if clip is not None:
            shutil.copy(clip, server.input_dir / clip.name)
            for node in prompt.values():
                if node["class_type"] == "LoadVideo":
                    node["inputs"]["file"] = clip.name
        prompt_id = server.submit(prompt)
        print(f"queued {workflow_path.name} as {prompt_id}; waiting...", file=sys.stderr)
        entry = server.wait(prompt_id, timeout=timeout)
        written = []
        for node_id in entry["outputs"]:
            if prompt[node_id]["class_type"] not in ("SaveVideo", "SaveImage"):
                continue
            for src in server.image_files(entry, node_id):
                dst = out_dir / src.name
                shutil.copy(src, dst)
                written.append(dst)
        return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workflow", type=Path, help="UI-format workflow .json")
    parser.add_argument("--input", type=Path, default=None,
                        help="video for every LoadVideo node (default: as saved in the workflow)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "out")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="ComfyUI base folder for this run (default: OUT_DIR/comfyui_run)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        written = run(args.workflow, args.input, args.out_dir,
                      args.work_dir or args.out_dir / "comfyui_run", args.timeout)
    except (ComfyError, WorkflowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"outputs": [str(p) for p in written],
                      "seconds": round(time.monotonic() - start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
