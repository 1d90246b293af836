"""FitNeuralAtlas: ComfyUI adapter over deflicker_impl.atlas."""

from __future__ import annotations

from ..deflicker_impl.atlas import PRESETS, AtlasConfig, fit_clip_atlas, render_atlas_frames
from ..deflicker_impl.atlas.confidence import atlas_confidence, confidence_heatmap
from ..deflicker_impl.device import resolve_device
from ..deflicker_impl.shots import ShotConfig
from ..deflicker_impl.threads import with_pack_threads
from .host import check_choices, compute_device, finish, io, node_schema, progress_callback
from .inputs import NeuralAtlasType

_DEFAULTS = AtlasConfig()
_SHOTS = ShotConfig()


class FitNeuralAtlas(io.ComfyNode):
    """Fits a neural atlas to a video (IMAGE batch = frames): one shared image plus a per-frame
    mapping. Its reconstruction has steady colour and brightness but blurred or warped
    structure; feed it with the original frames to NeuralFilter. Scene cuts are found
    automatically and every shot gets its own atlas; long shots are fitted in overlapping
    segments that are blended without a seam."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return node_schema(cls, "FitNeuralAtlas", "Fit Neural Atlas (deflicker)", inputs=[
            io.Image.Input("images", tooltip="The video frames (an IMAGE batch)."),
            io.Combo.Input(
                "preset", options=list(PRESETS), default=_DEFAULTS.preset,
                tooltip="fast: our explicit-texture atlas, seconds on a CPU. paper: the "
                        "public MLP configuration of Lei et al. (reference; very slow on a "
                        "CPU, about 10 minutes per clip on a GPU)."),
            io.Int.Input(
                "iterations", default=0, min=0, max=100000, step=10,
                tooltip="Optimisation steps; 0 uses the preset's default (fast: until the "
                        "fit converges, at most 300; paper 10001). A count runs exactly "
                        "that many. Fewer is faster but leaves more flicker."),
            io.Int.Input(
                "atlas_resolution", default=_DEFAULTS.atlas_resolution, min=64, max=8192,
                step=64,
                tooltip="Largest side of the atlas texture in pixels. Bounds memory on 4K "
                        "input; the frames are always rendered at their own size."),
            io.Int.Input(
                "fit_resolution", default=_DEFAULTS.fit_long_side, min=32, max=1024,
                step=16,
                tooltip="Long side (pixels) at which the mapping is fitted. The atlas only "
                        "carries colour, so low values are fast and usually enough."),
            io.Int.Input(
                "seed", default=0, min=0, max=0xFFFFFFFF,
                # No "randomize after queue" widget: a changing seed would refit every run.
                control_after_generate=False,
                tooltip="Random seed of the fit; the same seed gives the same result."),
            io.Boolean.Input(
                "scene_cuts", optional=True, default=_SHOTS.scene_cuts,
                tooltip="Find scene cuts and fit one atlas per shot (an atlas across a cut "
                        "ghosts the two shots into each other). Off: the whole clip is one "
                        "shot."),
            io.Float.Input(
                "cut_sensitivity", optional=True, default=_SHOTS.cut_sensitivity, min=0.0,
                max=1.0, step=0.05,
                tooltip="0..1. Higher finds subtler cuts but may split fast motion; lower "
                        "misses cuts between similar shots. Flicker and fades are ignored "
                        "at any value."),
            io.Int.Input(
                "max_segment_frames", optional=True, default=_SHOTS.max_segment_frames,
                min=0, max=100000, step=10,
                tooltip="Shots longer than this are fitted in overlapping segments, blended "
                        "without a seam (bounds the fit's time per frame and its memory). "
                        "0: never split."),
            io.Mask.Input(
                "masks", optional=True,
                tooltip="Optional foreground masks (1 = a moving object), e.g. from 'SAM "
                        "Video Mask (deflicker)': fits a foreground and a background atlas "
                        "(fast preset), so the object is not smeared into the background. "
                        "One mask per frame or one for all; any resolution."),
        ], outputs=[
            NeuralAtlasType.Output(
                display_name="atlas",
                tooltip="The fitted atlases (one per shot or segment) and the shot starts, "
                        "for later nodes: connect it to NeuralFilter and LocalFlickerRefine "
                        "so that they restart at cuts."),
            io.Image.Output(
                display_name="atlas_frames",
                tooltip="The atlas reconstruction of every frame, exactly the input size."),
            io.Image.Output(
                display_name="atlas_texture",
                tooltip="The atlas textures, one image per shot or segment (a preview); "
                        "with masks the foreground and background textures side by side."),
            io.Mask.Output(
                display_name="confidence",
                tooltip="Atlas confidence per frame and pixel (1: the atlas frame shows "
                        "this content; 0: it does not, e.g. a character turned, something "
                        "appeared). NeuralFilter takes colour only where it is high and "
                        "carries the flicker correction from there elsewhere."),
            io.Image.Output(
                display_name="confidence_preview",
                tooltip="The frames tinted red where the confidence is low, to see where "
                        "the atlas is wrong."),
        ])

    @classmethod
    @with_pack_threads  # the pack's thread count; the host's is restored after
    def execute(cls, images, preset, iterations, atlas_resolution, fit_resolution, seed,
                scene_cuts=_SHOTS.scene_cuts, cut_sensitivity=_SHOTS.cut_sensitivity,
                max_segment_frames=_SHOTS.max_segment_frames, masks=None) -> io.NodeOutput:
        config = AtlasConfig(preset=preset, iterations=iterations, seed=seed,
                             atlas_resolution=atlas_resolution, fit_long_side=fit_resolution,
                             device=compute_device())
        overlap = min(_SHOTS.segment_overlap, max(0, (max_segment_frames - 2) // 2))
        shots = ShotConfig(scene_cuts=scene_cuts, cut_sensitivity=cut_sensitivity,
                           max_segment_frames=max_segment_frames, segment_overlap=overlap)
        progress = progress_callback()
        atlas = fit_clip_atlas(images, config, shots, on_progress=progress, masks=masks)
        frames = render_atlas_frames(atlas, device=resolve_device(config.device),
                                     on_progress=progress)
        confidence = atlas_confidence(images, frames).mask()
        return io.NodeOutput(atlas, finish(frames), finish(atlas.texture_preview()),
                             finish(confidence), finish(confidence_heatmap(images, confidence)))

    @classmethod
    def validate_inputs(cls, preset) -> bool | str:
        return check_choices(cls, preset=preset)
