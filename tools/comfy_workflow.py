"""ComfyUI workflow files without a browser: build UI-format graphs, convert them to API format.

UI format (what the editor saves and the template browser opens) lists nodes with positions,
links, and `widgets_values` in the order the editor creates widgets; API format (what POST /prompt
takes) maps node ids to {"class_type", "inputs"}. The conversion needs the node definitions
(the /object_info shape: {"input": {"required", "optional"}, "output", "output_name"}) because
the widget values carry no names, and the editor inserts extra values the API never sees: the
"control after generate" combo after seed-like INT inputs, the upload button of file pickers.
Nothing here imports ComfyUI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
MUTED, BYPASSED = 2, 4  # node modes in UI format (0 = always)
FRONTEND_ONLY = ("Note", "MarkdownNote", "Reroute", "PrimitiveNode")
_UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "upload")


class WorkflowError(ValueError):
    """A UI workflow that cannot be converted (unknown node, widget count mismatch, ...)."""


def _is_widget(spec) -> bool:
    return isinstance(spec[0], list) or spec[0] in WIDGET_TYPES


def _options(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def widget_slots(definition: dict) -> list[tuple[str | None, dict]]:
    """The editor's widgets_values layout: (input name or None for an editor-only value)."""
    slots = []
    inputs = definition["input"]
    for section in ("required", "optional"):
        for name, spec in inputs.get(section, {}).items():
            if not _is_widget(spec):
                continue
            opts = _options(spec)
            slots.append((name, opts))
            control = opts.get("control_after_generate")
            if control is None:  # the editor's default: seed-like INT inputs get the control
                control = spec[0] == "INT" and name in ("seed", "noise_seed")
            if control:
                slots.append((None, {"editor": "control_after_generate"}))
            if any(opts.get(flag) for flag in _UPLOAD_FLAGS):
                slots.append((None, {"editor": "upload"}))
    return slots


def _link_source(link_id, links: dict, nodes: dict) -> list | None:
    """[origin id, slot] feeding a link, looking through bypassed nodes (the editor passes a
    bypassed node's input of the output's type straight through); None when nothing does."""
    _, origin, slot, _, _, kind = links[link_id]
    node = nodes[origin]
    if node.get("mode", 0) == MUTED:
        return None
    if node.get("mode", 0) != BYPASSED:
        return [str(origin), slot]
    inputs = node.get("inputs", [])
    same_type = [i for i, s in enumerate(inputs) if s.get("type") == kind and s.get("link")]
    if not same_type:
        return None
    chosen = slot if slot in same_type else same_type[0]
    return _link_source(inputs[chosen]["link"], links, nodes)


def ui_to_api(workflow: dict, definitions: dict[str, dict]) -> dict:
    """API prompt of a UI-format workflow (muted nodes dropped, bypassed ones passed through;
    subgraphs unsupported)."""
    links = {link[0]: link for link in workflow.get("links", [])}
    by_id = {node["id"]: node for node in workflow["nodes"]}
    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        if kind not in definitions:
            raise WorkflowError(f"node {node['id']}: {kind} is not installed in this ComfyUI")
        inputs = {}
        values = list(node.get("widgets_values") or [])
        slots = widget_slots(definitions[kind])
        if len(values) != len(slots):
            raise WorkflowError(
                f"node {node['id']} ({kind}) has {len(values)} widget values, the installed "
                f"node expects {len(slots)}: {[n or o['editor'] for n, o in slots]}")
        for (name, _), value in zip(slots, values, strict=True):
            if name is not None:
                inputs[name] = value
        for slot in node.get("inputs", []):
            link_id = slot.get("link")
            if link_id is None:
                continue
            source = _link_source(link_id, links, by_id)
            if source is None:
                inputs.pop(slot["name"], None)
            else:
                inputs[slot["name"]] = source
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt


@dataclass
class UiGraph:
    """Builds a UI-format workflow (version 0.4) from node definitions."""

    definitions: dict[str, dict]
    nodes: list[dict] = field(default_factory=list)
    links: list[list] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)

    def add(self, kind: str, pos: tuple[float, float], widgets: dict | None = None,
            size: tuple[float, float] = (300, 120), title: str | None = None) -> int:
        """Add a node; widgets by input name (defaults filled in). Returns its id."""
        definition = self.definitions[kind]
        widgets = dict(widgets or {})
        values = []
        for name, opts in widget_slots(definition):
            if name is None:
                values.append("fixed" if opts["editor"] == "control_after_generate" else "image")
                continue
            spec = {**definition["input"].get("required", {}),
                    **definition["input"].get("optional", {})}[name]
            default = _options(spec).get("default")
            choices = spec[0] if isinstance(spec[0], list) else _options(spec).get("options")
            if default is None and choices:
                default = choices[0]
            values.append(widgets.pop(name, default))
        if widgets:
            raise WorkflowError(f"{kind} has no widgets {sorted(widgets)}")
        inputs = []
        for section in ("required", "optional"):
            for name, spec in definition["input"].get(section, {}).items():
                if not _is_widget(spec):
                    entry = {"name": name, "type": spec[0] if isinstance(spec[0], str) else "*",
                             "link": None}
                    if section == "optional":
                        entry["shape"] = 7
                    inputs.append(entry)
        names = definition.get("output_name") or definition["output"]
        outputs = [{"name": n, "type": t, "links": []}
                   for n, t in zip(names, definition["output"], strict=True)]
        node = {"id": len(self.nodes) + 1, "type": kind, "pos": list(pos), "size": list(size),
                "flags": {}, "order": len(self.nodes), "mode": 0, "inputs": inputs,
                "outputs": outputs, "properties": {"Node name for S&R": kind},
                "widgets_values": values}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node["id"]

    def note(self, text: str, pos: tuple[float, float], size: tuple[float, float] = (360, 200),
             title: str = "Note") -> int:
        node = {"id": len(self.nodes) + 1, "type": "Note", "pos": list(pos), "size": list(size),
                "flags": {}, "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": [],
                "title": title, "properties": {}, "widgets_values": [text],
                "color": "#432", "bgcolor": "#653"}
        self.nodes.append(node)
        return node["id"]

    def group(self, title: str, bounding: tuple[float, float, float, float],
              color: str = "#3f789e") -> None:
        self.groups.append({"id": len(self.groups) + 1, "title": title,
                            "bounding": list(bounding), "color": color, "font_size": 24,
                            "flags": {}})

    def connect(self, origin: int, origin_slot: int, target: int, input_name: str) -> None:
        """Link output `origin_slot` of node `origin` to input `input_name` of `target`."""
        source, dest = self.nodes[origin - 1], self.nodes[target - 1]
        out = source["outputs"][origin_slot]
        link_id = len(self.links) + 1
        slot = next((i for i, s in enumerate(dest["inputs"]) if s["name"] == input_name), None)
        if slot is None:  # a widget turned into an input (e.g. CreateVideo's fps)
            dest["inputs"].append({"name": input_name, "type": out["type"],
                                   "widget": {"name": input_name}, "link": None})
            slot = len(dest["inputs"]) - 1
        dest["inputs"][slot]["link"] = link_id
        out["links"].append(link_id)
        self.links.append([link_id, origin, origin_slot, target, slot, out["type"]])

    def to_json(self) -> dict:
        return {"id": "00000000-0000-0000-0000-000000000000", "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": self.groups,
                "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
                "version": 0.4}


def definitions_from_classes(classes: dict) -> dict[str, dict]:
    """/object_info-shaped definitions of node classes (e.g. ComfyUI's NODE_CLASS_MAPPINGS)."""
    out = {}
    for name, cls in classes.items():
        inputs = cls.INPUT_TYPES()
        out[name] = {"input": inputs, "output": list(getattr(cls, "RETURN_TYPES", ()) or ()),
                     "output_name": list(getattr(cls, "RETURN_NAMES", None) or ())}
        if not out[name]["output_name"]:
            out[name]["output_name"] = list(out[name]["output"])
    return out


def load_workflow(path: Path) -> dict:
    return json.loads(Path(path).read_text())
