"""Neural Atlas Deflicker: a ComfyUI node pack for blind video deflickering.

ComfyUI imports this file as the pack's entry point; the library itself is `deflicker_impl`.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
