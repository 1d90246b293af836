"""Point and box prompts as users type them into a node.

Points: "x,y; x,y" (pixels of the chosen frame), or JSON: [[x, y], ...] or [{"x": .., "y": ..},
...] (the format of point-editor nodes). Box: "x0,y0,x1,y1" or JSON [x0, y0, x1, y1]. Empty text
means none.
"""

from __future__ import annotations

import json
import re

from ..errors import DeflickerInputError


def _numbers(text: str, what: str) -> list[float]:
    parts = [p for p in re.split(r"[\s,;]+", text.strip().strip("[]()")) if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise DeflickerInputError(
            f"{what} {text!r} cannot be read: write numbers in pixels, e.g. 'x,y; x,y'."
        ) from None


def parse_points(text: str | None, what: str = "points") -> list[tuple[float, float]]:
    """'x,y; x,y' or JSON -> [(x, y), ...] in pixels."""
    text = (text or "").strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeflickerInputError(f"{what} {text!r} is not valid JSON ({exc.msg}).") from None
        data = [data] if isinstance(data, dict) else data
        points = []
        for item in data:
            if isinstance(item, dict) and "x" in item and "y" in item:
                points.append((float(item["x"]), float(item["y"])))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                points.append((float(item[0]), float(item[1])))
            else:
                raise DeflickerInputError(
                    f"{what}: {item!r} is not a point; use [x, y] or {{\"x\": .., \"y\": ..}}.")
        return points
    points = []
    for chunk in (c for c in text.split(";") if c.strip()):
        values = _numbers(chunk, what)
        if len(values) != 2:
            raise DeflickerInputError(
                f"{what}: {chunk.strip()!r} is not one point; write 'x,y; x,y' (pixels).")
        points.append((values[0], values[1]))
    return points


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    """'x0,y0,x1,y1' or JSON [x0, y0, x1, y1] -> box in pixels, or None for empty text."""
    text = (text or "").strip()
    if not text:
        return None
    values = _numbers(text, "box")
    if len(values) != 4:
        raise DeflickerInputError(f"box {text!r} must be 4 numbers: x0,y0,x1,y1 (pixels).")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise DeflickerInputError(
            f"box {text!r} is empty: x1 must exceed x0 and y1 exceed y0 (top-left, bottom-right).")
    return (x0, y0, x1, y1)
