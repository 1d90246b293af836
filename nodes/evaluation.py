"""DeflickerMetrics and DeflickerCompare: judge a deflicker setting inside the graph."""

from __future__ import annotations

from ..deflicker_impl.atlas.confidence import describe_confidence
from ..deflicker_impl.evaluation.compare import LAYOUTS, compare_frames
from ..deflicker_impl.evaluation.plots import metrics_plot
from ..deflicker_impl.evaluation.report import FLOW_SOURCES, measure
from ..deflicker_impl.threads import with_pack_threads
from .host import check_choices, finish, io, node_schema, progress_callback, ui


class DeflickerMetrics(io.ComfyNode):
    """Measures how much a clip flickers: the global flicker index (how much each frame's mean
    brightness jumps) and the warping error (how much frames differ after motion compensation).
    Connect the deflickered frames to images and the original frames to compare_to to see
    before and after as numbers, a text summary and a plot. Lower is steadier; a clip frozen
    into one frame scores 0, so also look at the frames."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "DeflickerMetrics", "Flicker Metrics (deflicker)", inputs=[
            io.Image.Input("images",
                           tooltip="The clip to measure, e.g. the deflickered frames."),
            io.Combo.Input(
                "flow_from", options=list(FLOW_SOURCES), default="compare_to",
                tooltip="Whose motion defines the warping error. compare_to (the original "
                        "clip) scores both clips with the same flow, the fair choice for "
                        "before/after; without compare_to, images is used."),
            io.Int.Input(
                "measure_long_side", default=0, min=0, max=8192, step=16,
                tooltip="Measure on frames downscaled to this long side (pixels); faster "
                        "on large videos. 0 = full resolution."),
            io.Image.Input(
                "compare_to", optional=True,
                tooltip="Optional: another version of the same clip (same frame count), "
                        "e.g. the input before deflickering."),
            io.Mask.Input(
                "confidence", optional=True,
                tooltip="Optional: FitNeuralAtlas's confidence; the summary then says how "
                        "much of the clip the atlas could not hold and where."),
        ], outputs=[
            io.Float.Output(
                display_name="flicker_index",
                tooltip="Global flicker index of images: mean |mean luma - its 5-frame "
                        "median|, 8-bit levels."),
            io.Float.Output(
                display_name="warping_error",
                tooltip="Warping error of images (Lei et al. 2023): mean |frame - "
                        "previous/first frame warped to it| over non-occluded pixels, 8-bit "
                        "levels."),
            io.Float.Output(display_name="compare_flicker_index",
                            tooltip="Flicker index of compare_to (0 when not connected)."),
            io.Float.Output(
                display_name="compare_warping_error",
                tooltip="Warping error of compare_to, with the same flow (0 when not "
                        "connected)."),
            io.String.Output(display_name="summary",
                             tooltip="The numbers as text, with ratios images / compare_to."),
            io.Image.Output(
                display_name="plot",
                tooltip="Plot: per-frame mean luma (top) and per-frame warping error "
                        "(bottom) of both clips."),
        ], is_output_node=True)

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, images, flow_from, measure_long_side, compare_to=None, confidence=None
                ) -> io.NodeOutput:
        report = measure(images, compare_to, flow_from=flow_from, long_side=measure_long_side,
                         on_progress=progress_callback())
        plot = finish(metrics_plot(report))
        other = report.compare_to
        summary = report.summary()
        if confidence is not None:
            summary += "\n" + describe_confidence(confidence)
        shown = ui.PreviewImage(plot, cls=cls).as_dict() | ui.PreviewText(summary).as_dict()
        return io.NodeOutput(
            report.images.flicker_index, report.images.warping_error,
            other.flicker_index if other else 0.0, other.warping_error if other else 0.0,
            summary, plot, ui=shown)

    @classmethod
    def validate_inputs(cls, flow_from) -> bool | str:
        return check_choices(cls, flow_from=flow_from)


class DeflickerCompare(io.ComfyNode):
    """Puts the same frames before and after processing next to each other (or splits each frame
    at a divider) for judging a result. Feed the output to CreateVideo for a comparison video;
    the node also previews the middle frame."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "DeflickerCompare", "Before/After Compare (deflicker)", inputs=[
            io.Image.Input("before",
                           tooltip="Frames before processing (e.g. the input)."),
            io.Image.Input("after", tooltip="The same frames after processing; resized to "
                                            "before's size if they differ."),
            io.Combo.Input(
                "layout", options=list(LAYOUTS), default="side_by_side",
                tooltip="side_by_side: before | after. stacked: before above after. split: "
                        "one frame, before left of the divider, after right."),
            io.Float.Input(
                "split", default=0.5, min=0.05, max=0.95, step=0.01,
                tooltip="Where the divider sits in the split layout (fraction of the "
                        "width)."),
            io.Boolean.Input("labels", default=True,
                             tooltip="Write 'before' and 'after' on the frames."),
        ], outputs=[
            io.Image.Output(display_name="comparison",
                            tooltip="The comparison frames, one per input frame."),
        ], is_output_node=True)

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, before, after, layout, split, labels) -> io.NodeOutput:
        out = finish(compare_frames(before, after, layout=layout, split=split, labels=labels))
        middle = out[len(out) // 2: len(out) // 2 + 1]
        return io.NodeOutput(out, ui=ui.PreviewImage(middle, cls=cls))

    @classmethod
    def validate_inputs(cls, layout) -> bool | str:
        return check_choices(cls, layout=layout)
