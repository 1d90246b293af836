"""The NeuralFilter stage: structure from the frame, colour from the atlas.

`apply.py` runs the network (`net.py`) over a clip; `global_colour.py` keeps the output's global
colour on the steady atlas.
"""

from .apply import FilterConfig, apply_neural_filter, load_neural_filter
from .net import FilterNetConfig, NeuralFilterNet, build_neural_filter

__all__ = [
    "FilterConfig",
    "FilterNetConfig",
    "NeuralFilterNet",
    "apply_neural_filter",
    "build_neural_filter",
    "load_neural_filter",
]
