"""ComfyUI nodes of the pack: thin adapters over deflicker_impl (node ids never change)."""

from .atlas_nodes import FitNeuralAtlas
from .comfy_glue import provide_demo_clip
from .filter_nodes import NeuralFilter
from .metrics_nodes import DeflickerCompare, DeflickerMetrics
from .refine_nodes import LocalFlickerRefine
from .sam_nodes import DeflickerSAMLoader, DeflickerSAMVideoMask

NODE_CLASS_MAPPINGS = {
    "FitNeuralAtlas": FitNeuralAtlas,
    "NeuralFilter": NeuralFilter,
    "LocalFlickerRefine": LocalFlickerRefine,
    "DeflickerMetrics": DeflickerMetrics,
    "DeflickerCompare": DeflickerCompare,
    "DeflickerSAMLoader": DeflickerSAMLoader,
    "DeflickerSAMVideoMask": DeflickerSAMVideoMask,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "FitNeuralAtlas": "Fit Neural Atlas (deflicker)",
    "NeuralFilter": "Neural Filter (deflicker)",
    "LocalFlickerRefine": "Local Flicker Refine (deflicker)",
    "DeflickerMetrics": "Flicker Metrics (deflicker)",
    "DeflickerCompare": "Before/After Compare (deflicker)",
    "DeflickerSAMLoader": "SAM Loader (deflicker)",
    "DeflickerSAMVideoMask": "SAM Video Mask (deflicker)",
}

provide_demo_clip()  # the example workflows' LoadVideo reads it from ComfyUI's input folder
