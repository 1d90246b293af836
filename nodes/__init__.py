"""ComfyUI nodes of the pack: thin adapters over deflicker_impl (node ids never change)."""

from .atlas_nodes import FitNeuralAtlas
from .filter_nodes import NeuralFilter

NODE_CLASS_MAPPINGS = {
    "FitNeuralAtlas": FitNeuralAtlas,
    "NeuralFilter": NeuralFilter,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "FitNeuralAtlas": "Fit Neural Atlas (deflicker)",
    "NeuralFilter": "Neural Filter (deflicker)",
}
