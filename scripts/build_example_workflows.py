"""Writes the example workflows (UI format) in example_workflows/ from the live node definitions.

    .venv/bin/python -m scripts.build_example_workflows

ComfyUI lists every example_workflows/*.json of a pack in its template browser. Each workflow
here reads the bundled demo clip (demo_flicker.mp4, copy it into ComfyUI/input/ or pick your own
video in LoadVideo) and carries a Note explaining it. The node definitions come from the real
ComfyUI host started in-process (tools/comfy_host.py), so widget order and defaults are exactly
what the editor would save; tests/nodes/test_example_workflows.py converts and runs every file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tools.comfy_host import ComfyInProcess
from tools.comfy_workflow import UiGraph, definitions_from_classes

ROOT = Path(__file__).resolve().parent.parent

DEMO_CLIP = "demo_flicker.mp4"
OUT = ROOT / "example_workflows"

DEFLICKER_NOTE = """Deflicker a video

1. LoadVideo: pick your clip (the pack puts its demo clip demo_flicker.mp4 into ComfyUI/input when ComfyUI starts).
2. FitNeuralAtlas fits one shared image to the whole clip: steady colour, blurry structure (preview below). 'fast' takes seconds per clip on a GPU, about 0.25 s per frame on a CPU.
3. NeuralFilter takes the structure from each original frame and the colour from the atlas.
4. LocalFlickerRefine steadies what local flicker is left (it follows the motion and changes local colour only). To compare, bypass it (select it, Ctrl+B).
5. CreateVideo uses the input's own frame rate (the fps link), SaveVideo writes ComfyUI/output/video/.

Long clips, scene cuts, memory: see the Troubleshooting section of the README."""

COMPARE_NOTE = """Before / after

Flicker Metrics measures the deflickered frames (images) against the original ones (compare_to) with the same optical flow: flicker index (jumps of the frames' mean brightness) and warping error (differences after motion compensation), both in 8-bit levels, lower is steadier. It shows a plot on the node; the text summary goes to Preview as Text.

Low numbers alone are not enough: a frozen frame scores 0. Look at the comparison video too (Before/After Compare: side_by_side, stacked or split)."""

AFTER_GENERATION_NOTE = """Deflicker after AnimateDiff, Wan, a colorizer or a per-frame enhancer

Replace the blue group with your own generation: connect the IMAGE output of your VAE Decode (AnimateDiff / Wan) or of your colorization / upscale node to BOTH 'images' inputs (FitNeuralAtlas and NeuralFilter). Here a LoadVideo stands in for it so the graph runs as it is.

Generated frames carry no frame rate: set CreateVideo's fps to the one you generate at.
Tip: deflicker before upscaling (faster, same result); set fit_resolution higher (256-384) only if the atlas preview looks too coarse."""


SAM_NOTE = """Deflicker with a foreground layer (Segment Anything)

When an object (a person, an animal, a car) moves over its background, one atlas smears the two together. With a foreground mask FitNeuralAtlas fits two atlases, one for the object and one for the background (the texture preview shows both side by side).

1. Put a Segment Anything checkpoint into ComfyUI/models/sams: sam_vit_b_01ec64.pth (fastest), sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth, from the segment-anything repository's 'Model Checkpoints' (nothing is downloaded for you). Pick it in SAM Loader.
2. In SAM Video Mask, click-free prompting: give 'x,y' points on the object (pixels of frame 'frame_index'), or a box 'x0,y0,x1,y1'. The mask is carried from frame to frame; check it in the red-tinted preview.
3. The rest is the plain deflicker chain. A mask that finds nothing (or everything) falls back to one atlas."""


def host_definitions() -> dict[str, dict]:
    host = ComfyInProcess.shared(Path(tempfile.mkdtemp(prefix="workflow_defs_")))
    host.require_pack()
    import nodes  # ComfyUI's own module, importable once the host is up

    return definitions_from_classes(nodes.NODE_CLASS_MAPPINGS)


def load_and_split(g: UiGraph, x: float, y: float) -> tuple[int, int]:
    video = g.add("LoadVideo", (x, y), {"file": DEMO_CLIP}, size=(280, 320))
    parts = g.add("GetVideoComponents", (x + 310, y), size=(230, 70))
    g.connect(video, 0, parts, "video")
    return video, parts


def atlas_and_filter(g: UiGraph, parts: int, x: float, y: float) -> tuple[int, int]:
    fit = g.add("FitNeuralAtlas", (x, y), size=(300, 180))
    g.connect(parts, 0, fit, "images")
    flt = g.add("NeuralFilter", (x + 330, y), size=(300, 100))
    g.connect(parts, 0, flt, "images")
    g.connect(fit, 1, flt, "atlas_frames")
    texture = g.add("PreviewImage", (x, y + 220), size=(300, 260), title="Atlas texture")
    g.connect(fit, 2, texture, "images")
    return fit, flt


def save_video(g: UiGraph, images: tuple[int, int], fps_from: int | None, x: float, y: float,
               prefix: str, fps: float | None = None) -> int:
    create = g.add("CreateVideo", (x, y), {"fps": fps} if fps else None, size=(240, 80))
    g.connect(*images, create, "images")
    if fps_from is not None:
        g.connect(fps_from, 2, create, "fps")
    save = g.add("SaveVideo", (x + 270, y), {"filename_prefix": prefix}, size=(400, 420))
    g.connect(create, 0, save, "video")
    return save


def refine_and_save(g: UiGraph, flt: int, parts: int, x: float, prefix: str) -> int:
    """LocalFlickerRefine after the filter, then the video at the input's frame rate."""
    refine = g.add("LocalFlickerRefine", (x, 0), size=(300, 80))
    g.connect(flt, 0, refine, "images")
    return save_video(g, (refine, 0), parts, x + 330, 0, prefix)


def deflicker_video(defs) -> dict:
    g = UiGraph(defs)
    g.note(DEFLICKER_NOTE, (0, -300), size=(560, 260), title="Read me")
    _, parts = load_and_split(g, 0, 0)
    _, flt = atlas_and_filter(g, parts, 580, 0)
    refine_and_save(g, flt, parts, 1240, "video/deflickered")
    return g.to_json()


def compare_with_metrics(defs) -> dict:
    g = UiGraph(defs)
    g.note(COMPARE_NOTE, (0, -300), size=(560, 260), title="Read me")
    _, parts = load_and_split(g, 0, 0)
    _, flt = atlas_and_filter(g, parts, 580, 0)
    metrics = g.add("DeflickerMetrics", (1240, 0), size=(420, 420))
    g.connect(flt, 0, metrics, "images")
    g.connect(parts, 0, metrics, "compare_to")
    text = g.add("PreviewAny", (1690, 0), size=(420, 200), title="Metrics summary")
    g.connect(metrics, 4, text, "source")
    compare = g.add("DeflickerCompare", (1240, 460), size=(320, 300))
    g.connect(parts, 0, compare, "before")
    g.connect(flt, 0, compare, "after")
    save_video(g, (compare, 0), parts, 1590, 460, "video/deflicker_compare")
    return g.to_json()


def after_generation(defs) -> dict:
    g = UiGraph(defs)
    g.note(AFTER_GENERATION_NOTE, (0, -320), size=(600, 280), title="Read me")
    g.group("Your generation (AnimateDiff, Wan, colorization ...): replace this stand-in",
            (-20, -40, 600, 420))
    _, parts = load_and_split(g, 0, 20)
    _, flt = atlas_and_filter(g, parts, 640, 20)
    save_video(g, (flt, 0), None, 1300, 20, "video/generated_deflickered", fps=25.0)
    return g.to_json()


CHUNK_SEAMS_NOTE = """Chunk seams of a sliding-window generator (Wan and others)

Long generations are made chunk by chunk, and each chunk can come out a little warmer or darker than the one before: a colour step that stays. Remove Chunk Seams finds those steps (it measures each frame against the previous one, aligned by optical flow) and gives every chunk the colour of the first; its text output says where it found seams and how large they were. Put it first, before FitNeuralAtlas, so the atlas never holds a chunk's colour.

A light switched on at one frame looks like a seam and is removed too: bypass the node (Ctrl+B) on clips with real light switches. The demo clip has no seams (its flicker changes every frame), so here the node finds none and passes the frames through."""


def chunk_seams(defs) -> dict:
    g = UiGraph(defs)
    g.note(CHUNK_SEAMS_NOTE, (0, -330), size=(600, 300), title="Read me")
    _, parts = load_and_split(g, 0, 0)
    seams = g.add("RemoveChunkSeams", (0, 360), size=(300, 80))
    g.connect(parts, 0, seams, "images")
    text = g.add("PreviewAny", (320, 360), size=(300, 120), title="Seams found")
    g.connect(seams, 1, text, "source")
    fit = g.add("FitNeuralAtlas", (660, 0), size=(300, 180))
    g.connect(seams, 0, fit, "images")
    flt = g.add("NeuralFilter", (990, 0), size=(300, 100))
    g.connect(seams, 0, flt, "images")
    g.connect(fit, 1, flt, "atlas_frames")
    refine_and_save(g, flt, parts, 1320, "video/deflickered_seamless")
    return g.to_json()


def sam_foreground(defs) -> dict:
    g = UiGraph(defs)
    g.note(SAM_NOTE, (0, -330), size=(600, 300), title="Read me")
    _, parts = load_and_split(g, 0, 0)
    loader = g.add("DeflickerSAMLoader", (0, 360), {"checkpoint": "sam_vit_b_01ec64.pth"},
                   size=(300, 90))
    mask = g.add("DeflickerSAMVideoMask", (320, 360),
                 {"frame_index": 0, "positive_points": "192,120"}, size=(300, 200))
    g.connect(loader, 0, mask, "sam")
    g.connect(parts, 0, mask, "images")
    preview = g.add("PreviewImage", (320, 600), size=(300, 260), title="Mask check")
    g.connect(mask, 1, preview, "images")
    fit, flt = atlas_and_filter(g, parts, 660, 0)
    g.connect(mask, 0, fit, "masks")
    refine_and_save(g, flt, parts, 1320, "video/deflickered_two_layers")
    return g.to_json()


WORKFLOWS = {
    "deflicker_video": deflicker_video,
    "deflicker_compare_metrics": compare_with_metrics,
    "deflicker_after_generation": after_generation,
    "deflicker_sam_foreground": sam_foreground,
    "deflicker_chunk_seams": chunk_seams,
}


def main() -> None:
    defs = host_definitions()
    for name, build in WORKFLOWS.items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(build(defs), indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
