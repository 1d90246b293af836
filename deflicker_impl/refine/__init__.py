"""The LocalFlickerRefine stage: a recurrent net removes the flicker left locally.

`apply.py` runs the network (`net.py`) over a clip frame after frame; `global_bound.py` keeps
its change of the global colour to one that steadies it.
"""

from .apply import RefineConfig, RefineStepper, apply_local_refine, load_local_refine
from .net import LocalRefineNet, RefineNetConfig, build_local_refine

__all__ = [
    "LocalRefineNet",
    "RefineConfig",
    "RefineNetConfig",
    "RefineStepper",
    "apply_local_refine",
    "build_local_refine",
    "load_local_refine",
]
