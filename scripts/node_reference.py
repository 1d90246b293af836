"""The README's node reference, generated from the nodes themselves (inputs, defaults, tooltips).

    .venv/bin/python -m scripts.node_reference            # print the Markdown
    .venv/bin/python -m scripts.node_reference --write    # replace the section in README.md

The pack is loaded by the real ComfyUI host in-process (tools/comfy_host.py), so the text shows
exactly what the editor shows. tests/test_readme.py fails when README.md is out of date.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tools.comfy_host import PACK_DIR_NAME, ComfyInProcess

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- node-reference:start -->", "<!-- node-reference:end -->"
WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _type_and_default(spec) -> tuple[str, str]:
    options = spec[1] if len(spec) > 1 else {}
    kind = spec[0]
    if kind == "COMBO":  # the schema's combos carry their choices as an option
        kind = list(options.get("options", []))
    if isinstance(kind, list) and any(str(c).endswith(".safetensors") for c in kind):
        # the files found in models/deflicker differ from one installation to the next
        return "a `.safetensors` file", f"`{options.get('default', kind[0])}`"
    if isinstance(kind, list) and any(str(c).endswith((".pth", ".pt")) or
                                      str(c).startswith("(no checkpoint") for c in kind):
        # SAM checkpoints: whatever models/sams holds on this installation
        return "a checkpoint file in `models/sams`", "the first file found"
    if isinstance(kind, list):
        shown = ", ".join(f"`{c}`" for c in kind[:6]) + (", ..." if len(kind) > 6 else "")
        return f"one of {shown}", f"`{options.get('default', kind[0] if kind else '')}`"
    if kind in WIDGETS:
        bounds = [f"{k} {options[k]}" for k in ("min", "max") if k in options]
        text = kind + (f" ({', '.join(bounds)})" if bounds else "")
        return text, f"`{options.get('default')}`"
    return kind, ""


def node_markdown(name: str, cls, display: str) -> str:
    lines = [f"### {display} — `{name}`", "", _cell(getattr(cls, "DESCRIPTION", "")), "",
             "| input | type | default | what it does |", "|---|---|---|---|"]
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for input_name, spec in types.get(section, {}).items():
            kind, default = _type_and_default(spec)
            tip = (spec[1] if len(spec) > 1 else {}).get("tooltip", "")
            label = f"`{input_name}`" + (" (optional)" if section == "optional" else "")
            lines.append(f"| {label} | {_cell(kind)} | {default} | {_cell(tip)} |")
    lines += ["", "| output | type | what it is |", "|---|---|---|"]
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or [""] * len(cls.RETURN_TYPES)
    for out_name, kind, tip in zip(names, cls.RETURN_TYPES, tips, strict=True):
        lines.append(f"| `{out_name}` | {kind} | {_cell(tip)} |")
    return "\n".join(lines)


def reference_markdown() -> str:
    ComfyInProcess.shared(Path(tempfile.mkdtemp(prefix="node_ref_"))).require_pack()
    import nodes

    ours = [(n, c) for n, c in nodes.NODE_CLASS_MAPPINGS.items()
            if PACK_DIR_NAME in str(getattr(c, "RELATIVE_PYTHON_MODULE", ""))]
    parts = [node_markdown(n, c, nodes.NODE_DISPLAY_NAME_MAPPINGS.get(n, n)) for n, c in ours]
    return "\n\n".join(parts)


def readme_section(text: str) -> str:
    """The generated part of a README text (between the markers)."""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"update {README.name}")
    args = parser.parse_args(argv)
    markdown = reference_markdown()
    if not args.write:
        print(markdown)
        return 0
    text = README.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{markdown}\n{END}{tail}")
    print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
