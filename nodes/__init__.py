"""ComfyUI nodes of the pack: thin adapters over deflicker_impl (node ids never change)."""

from .atlas_nodes import FitNeuralAtlas
from .filter_nodes import NeuralFilter
from .refine_nodes import LocalFlickerRefine
from .sam_nodes import DeflickerSAMLoader, DeflickerSAMVideoMask

NODE_CLASS_MAPPINGS = {
    "FitNeuralAtlas": FitNeuralAtlas,
    "NeuralFilter": NeuralFilter,
    "LocalFlickerRefine": LocalFlickerRefine,
    "DeflickerSAMLoader": DeflickerSAMLoader,
    "DeflickerSAMVideoMask": DeflickerSAMVideoMask,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "FitNeuralAtlas": "Fit Neural Atlas (deflicker)",
    "NeuralFilter": "Neural Filter (deflicker)",
    "LocalFlickerRefine": "Local Flicker Refine (deflicker)",
    "DeflickerSAMLoader": "SAM Loader (deflicker)",
    "DeflickerSAMVideoMask": "SAM Video Mask (deflicker)",
}
