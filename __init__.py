"""Neural Atlas Deflicker: a ComfyUI node pack for blind video deflickering.

ComfyUI imports this file as the pack's entry point; the library itself is `deflicker_impl`.
Outside ComfyUI (pytest collecting the repository, packaging tools) there is no `comfy` module
to adapt to, so the pack then exposes no nodes instead of failing to import.
"""

import importlib.util

if importlib.util.find_spec("comfy") is not None:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:  # pragma: no cover - only outside a ComfyUI process
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
