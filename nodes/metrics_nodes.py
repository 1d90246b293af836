"""DeflickerMetrics and DeflickerCompare: judge a deflicker setting inside the graph."""

from __future__ import annotations

from ..deflicker_impl.atlas.confidence import describe_confidence
from ..deflicker_impl.evaluation.compare import LAYOUTS, compare_frames
from ..deflicker_impl.evaluation.plots import metrics_plot
from ..deflicker_impl.evaluation.report import FLOW_SOURCES, measure
from ..deflicker_impl.threads import with_pack_threads
from .comfy_glue import CATEGORY, finish, preview_images, progress_callback


class DeflickerMetrics:
    """Flicker index and warping error of a clip, optionally next to another clip's."""

    DESCRIPTION = (
        "Measures how much a clip flickers: the global flicker index (how much each frame's mean "
        "brightness jumps) and the warping error (how much frames differ after motion "
        "compensation). Connect the deflickered frames to images and the original frames to "
        "compare_to to see before and after as numbers, a text summary and a plot. Lower is "
        "steadier; a clip frozen into one frame scores 0, so also look at the frames."
    )
    CATEGORY = CATEGORY
    FUNCTION = "measure"
    OUTPUT_NODE = True
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("flicker_index", "warping_error", "compare_flicker_index",
                    "compare_warping_error", "summary", "plot")
    OUTPUT_TOOLTIPS = (
        "Global flicker index of images: mean |mean luma - its 5-frame median|, 8-bit levels.",
        ("Warping error of images (Lei et al. 2023): mean |frame - previous/first frame warped "
         "to it| over non-occluded pixels, 8-bit levels."),
        "Flicker index of compare_to (0 when not connected).",
        "Warping error of compare_to, with the same flow (0 when not connected).",
        "The numbers as text, with ratios images / compare_to.",
        "Plot: per-frame mean luma (top) and per-frame warping error (bottom) of both clips.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The clip to measure, e.g. the deflickered "
                                                "frames."}),
                "flow_from": (list(FLOW_SOURCES), {
                    "default": "compare_to",
                    "tooltip": "Whose motion defines the warping error. compare_to (the "
                               "original clip) scores both clips with the same flow, the fair "
                               "choice for before/after; without compare_to, images is used.",
                }),
                "measure_long_side": ("INT", {
                    "default": 0, "min": 0, "max": 8192, "step": 16,
                    "tooltip": "Measure on frames downscaled to this long side (pixels); "
                               "faster on large videos. 0 = full resolution.",
                }),
            },
            "optional": {
                "compare_to": ("IMAGE", {
                    "tooltip": "Optional: another version of the same clip (same frame count), "
                               "e.g. the input before deflickering."}),
                "confidence": ("MASK", {
                    "tooltip": "Optional: FitNeuralAtlas's confidence; the summary then says "
                               "how much of the clip the atlas could not hold and where."}),
            },
        }

    @with_pack_threads  # the pack's thread count; the host's is restored after
    def measure(self, images, flow_from, measure_long_side, compare_to=None, confidence=None):
        report = measure(images, compare_to, flow_from=flow_from, long_side=measure_long_side,
                         on_progress=progress_callback())
        plot = finish(metrics_plot(report))
        other = report.compare_to
        summary = report.summary()
        if confidence is not None:
            summary += "\n" + describe_confidence(confidence)
        result = (report.images.flicker_index, report.images.warping_error,
                  other.flicker_index if other else 0.0, other.warping_error if other else 0.0,
                  summary, plot)
        return {"ui": {"images": preview_images(plot, "metrics"), "text": [summary]},
                "result": result}


class DeflickerCompare:
    """Before/after frames in one picture: side by side, stacked, or a split view."""

    DESCRIPTION = (
        "Puts the same frames before and after processing next to each other (or splits each "
        "frame at a divider) for judging a result. Feed the output to CreateVideo for a "
        "comparison video; the node also previews the middle frame."
    )
    CATEGORY = CATEGORY
    FUNCTION = "compare"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("comparison",)
    OUTPUT_TOOLTIPS = ("The comparison frames, one per input frame.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "before": ("IMAGE", {"tooltip": "Frames before processing (e.g. the input)."}),
                "after": ("IMAGE", {"tooltip": "The same frames after processing; resized to "
                                               "before's size if they differ."}),
                "layout": (list(LAYOUTS), {
                    "default": "side_by_side",
                    "tooltip": "side_by_side: before | after. stacked: before above after. "
                               "split: one frame, before left of the divider, after right.",
                }),
                "split": ("FLOAT", {
                    "default": 0.5, "min": 0.05, "max": 0.95, "step": 0.01,
                    "tooltip": "Where the divider sits in the split layout (fraction of the "
                               "width).",
                }),
                "labels": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Write 'before' and 'after' on the frames.",
                }),
            },
        }

    @with_pack_threads  # the pack's thread count; the host's is restored after
    def compare(self, before, after, layout, split, labels):
        out = finish(compare_frames(before, after, layout=layout, split=split, labels=labels))
        middle = out[len(out) // 2: len(out) // 2 + 1]
        return {"ui": {"images": preview_images(middle, "compare")}, "result": (out,)}
