"""What users see of every node of the pack in the real host: one category, display names,
tooltips and defaults everywhere, previews, a moving progress bar and a working Cancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import read_images

from tools.comfy_host import PACK_DIR_NAME, PACK_ROOT, PromptBuilder

pytestmark = pytest.mark.comfy

WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def pack_nodes(comfy) -> dict:
    import nodes

    comfy.require_pack()
    return {name: cls for name, cls in nodes.NODE_CLASS_MAPPINGS.items()
            if PACK_DIR_NAME in str(getattr(cls, "RELATIVE_PYTHON_MODULE", ""))}


PACK_NODES = {"FitNeuralAtlas", "NeuralFilter", "LocalFlickerRefine", "DeflickerMetrics",
              "DeflickerCompare", "DeflickerSAMLoader", "DeflickerSAMVideoMask", "RemoveChunkSeams"}


def test_pack_declares_every_node_with_the_hosts_schema(comfy):
    from comfy_api.latest import io

    ours = pack_nodes(comfy)

    assert set(ours) == PACK_NODES
    not_schema = [name for name, cls in ours.items() if not issubclass(cls, io.ComfyNode)]
    assert not not_schema, f"still on the V1 dict style: {not_schema}"


def test_loading_the_pack_copies_the_demo_clip_and_never_overwrites(comfy):
    """The extension's load hook (not an import side effect) puts the example workflows' clip
    into the input folder; a user's file of that name stays as it is."""
    import asyncio
    import sys

    comfy.require_pack()
    entry = PACK_ROOT / "__init__.py"
    (pack,) = [m for m in list(sys.modules.values())
               if getattr(m, "__file__", None) and Path(m.__file__).resolve() == entry]
    demo = comfy.input_dir / "demo_flicker.mp4"
    shipped = (PACK_ROOT / "example_workflows" / "demo_flicker.mp4").read_bytes()
    assert demo.read_bytes() == shipped
    demo.unlink()
    try:
        asyncio.run(pack.comfy_entrypoint())
        assert demo.read_bytes() == shipped
        demo.write_bytes(b"the user's own clip")
        asyncio.run(pack.comfy_entrypoint())
        assert demo.read_bytes() == b"the user's own clip"
    finally:
        demo.write_bytes(shipped)


def test_pack_nodes_sit_in_one_category_with_clear_display_names(comfy):
    import nodes

    ours = pack_nodes(comfy)
    assert PACK_NODES <= set(ours)
    for name, cls in ours.items():
        assert cls.CATEGORY == "video/deflicker", name
        display = nodes.NODE_DISPLAY_NAME_MAPPINGS.get(name, "")
        assert display.endswith("(deflicker)") and display != name, (name, display)
        assert len(getattr(cls, "DESCRIPTION", "")) > 40, f"{name} has no description"


def test_every_input_and_output_has_a_tooltip_and_every_widget_a_default(comfy):
    problems = []
    for name, cls in pack_nodes(comfy).items():
        types = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for input_name, spec in types.get(section, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                if not options.get("tooltip"):
                    problems.append(f"{name}.{input_name}: no tooltip")
                widget = isinstance(spec[0], list) or spec[0] in WIDGETS
                if widget and "default" not in options:
                    problems.append(f"{name}.{input_name}: no default")
        tooltips = getattr(cls, "OUTPUT_TOOLTIPS", ())
        if len(tooltips) != len(cls.RETURN_TYPES) or not all(tooltips):
            problems.append(f"{name}: OUTPUT_TOOLTIPS do not cover every output")
    assert not problems, "\n".join(problems)


def test_compare_and_metrics_show_previews_on_the_node(comfy):
    p = PromptBuilder()
    before = p.add("DeflickerTestImages", kind="good", frames=5, width=40, height=24)
    compare = p.add("DeflickerCompare", before=p.out(before), after=p.out(before),
                    layout="split", split=0.5, labels=True)
    metrics = p.add("DeflickerMetrics", images=p.out(before), compare_to=p.out(before),
                    flow_from="compare_to", measure_long_side=0)

    result = comfy.run(p.build())

    (preview,) = result.image_files(compare)
    assert read_images([preview]).shape == (1, 24, 40, 3)
    (plot,) = result.image_files(metrics)
    assert read_images([plot]).shape[0] == 1
    assert "ratio 1.000" in result.outputs[metrics]["text"][0]  # a clip against itself


def long_prompt(node: str, frames: int, size: int) -> tuple[dict, str]:
    """A prompt in which `node` works for several seconds on generated frames."""
    p = PromptBuilder()
    images = p.add("DeflickerTestImages", kind="good", frames=frames, width=size, height=size)
    if node == "NeuralFilter":
        target = p.add(node, images=p.out(images), atlas_frames=p.out(images),
                       weights="neural_filter.safetensors")
    elif node == "LocalFlickerRefine":
        target = p.add(node, images=p.out(images), weights="local_refine.safetensors")
    else:
        target = p.add(node, images=p.out(images), flow_from="images", measure_long_side=0)
    if node != "DeflickerMetrics":
        p.add("PreviewImage", images=p.out(target))
    return p.build(), target


@pytest.mark.slow
@pytest.mark.parametrize("node, frames, size", [
    ("NeuralFilter", 48, 704),
    ("LocalFlickerRefine", 64, 736),
    ("DeflickerMetrics", 48, 640),
])
def test_long_nodes_move_the_progress_bar_and_stop_on_cancel(comfy, node, frames, size):
    prompt, target = long_prompt(node, frames, size)

    run = comfy.run_in_background(prompt)
    deadline = time.monotonic() + 120
    seen = []  # when the 1st and 2nd progress message of the node arrived
    while len(seen) < 2:
        if len(comfy.progress_messages(target)) > len(seen):
            seen.append(time.monotonic())
        assert run.thread.is_alive() and time.monotonic() < deadline, f"no progress: {run}"
        time.sleep(0.01)
    pressed = time.monotonic()
    comfy.interrupt()
    run.thread.join(timeout=60)

    assert not run.thread.is_alive(), f"{node} did not stop after Cancel"
    assert run.error is not None, f"{node} finished despite Cancel"
    assert run.error.stage == "interrupted", run.error
    assert run.error.node_type == node
    # Cancel acts at the node's next progress report: within about one report interval (one
    # chunk of frames; longer on a loaded CPU), and never seconds later.
    limit = max(1.5, 2.0 * (seen[1] - seen[0]))
    assert run.ended - pressed < limit, f"{node}: {run.ended - pressed:.2f} s"
