"""Neural Atlas Deflicker: a ComfyUI node pack for blind video deflickering.

ComfyUI imports this file as the pack's entry point and calls `comfy_entrypoint` for the nodes
(declared with its `comfy_api` schema); the library itself is `deflicker_impl`. The host reads
`NODE_CLASS_MAPPINGS` before `comfy_entrypoint`, so this file must not define it. Outside
ComfyUI (pytest collecting the repository, packaging tools) there is no `comfy` module to adapt
to, so the pack then exposes no entry point instead of failing to import.
"""

import importlib.util

if importlib.util.find_spec("comfy") is not None:
    from .nodes import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
else:  # pragma: no cover - only outside a ComfyUI process
    __all__ = []
