"""Plots drawn straight into an image (OpenCV lines and text; no plotting library needed).

`metrics_plot` turns a MetricsReport into one RGB image [1,H,W,3] in 0..1 (a ComfyUI IMAGE):
per-frame mean luma on top (flicker = the curve's jitter), per-frame warping error below.
"""

from __future__ import annotations

import numpy as np
import torch

from ..opencv import require_cv2
from .report import MetricsReport

# RGB, 0..255: the measured clip in blue, the clip it is compared to in orange.
IMAGES_COLOUR = (31, 119, 180)
COMPARE_COLOUR = (255, 127, 14)
_INK, _GRID, _PAPER = (40, 40, 40), (215, 215, 215), (255, 255, 255)
_FONT_SCALE = 0.42


def _text(cv2, canvas, text, x, y, colour=_INK, scale=_FONT_SCALE):
    cv2.putText(canvas, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1,
                cv2.LINE_AA)


def _panel(cv2, canvas, box, title, series, x_offset=0):
    """Draw line series [(label, values[N], colour)] in box (x0, y0, x1, y1) of canvas."""
    x0, y0, x1, y1 = box
    left, right, top, bottom = x0 + 48, x1 - 12, y0 + 22, y1 - 20
    _text(cv2, canvas, title, x0 + 48, y0 + 14)
    values = [np.asarray(v, np.float64) for _, v, _ in series if len(v)]
    if not values:
        _text(cv2, canvas, "(needs at least 2 frames)", left + 8, (top + bottom) / 2)
        return
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    pad = max((hi - lo) * 0.08, 0.05)
    lo, hi = (lo - pad if lo - pad >= 0 or lo < 0 else 0.0), hi + pad
    count = max(len(v) for v in values)
    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        cv2.line(canvas, (left, int(y)), (right, int(y)), _GRID, 1)
        _text(cv2, canvas, f"{lo + frac * (hi - lo):.1f}", x0 + 2, y + 4)
    cv2.rectangle(canvas, (left, top), (right, bottom), _INK, 1)
    last = count - 1 + x_offset
    _text(cv2, canvas, f"frame {x_offset}", left, bottom + 14)
    _text(cv2, canvas, f"{last}", right - 8 * len(str(last)), bottom + 14)

    def to_px(i, v):
        x = left + (i / max(count - 1, 1)) * (right - left)
        return x, bottom - (v - lo) / (hi - lo) * (bottom - top)

    legend_x = right - 8
    for label, vals, colour in reversed(series):
        vals = np.asarray(vals, np.float64)
        if len(vals) == 0:
            continue
        pts = np.array([to_px(i, v) for i, v in enumerate(vals)], np.float64)
        cv2.polylines(canvas, [np.round(pts * 4).astype(np.int32)], False, colour, 2,
                      cv2.LINE_AA, shift=2)
        width = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)[0][0]
        legend_x -= width + 22
        cv2.line(canvas, (legend_x, y0 + 10), (legend_x + 14, y0 + 10), colour, 2)
        _text(cv2, canvas, label, legend_x + 18, y0 + 14)


def metrics_plot(report: MetricsReport, width: int = 768, height: int = 432,
                 names: tuple[str, str] = ("images", "compare_to")) -> torch.Tensor:
    """Per-frame mean luma and warping error of the report's clips -> [1,height,width,3].

    names: legend labels of the report's images and compare_to clips.
    """
    cv2 = require_cv2()
    canvas = np.full((height, width, 3), _PAPER, np.uint8)
    a, b = report.images, report.compare_to
    luma = [(f"{names[0]} (flicker {a.flicker_index:.2f})", a.luma.numpy(), IMAGES_COLOUR)]
    warp = [(f"{names[0]} ({a.warping_error:.2f})", a.warp.numpy(), IMAGES_COLOUR)]
    if b is not None:
        luma.insert(0, (f"{names[1]} (flicker {b.flicker_index:.2f})", b.luma.numpy(),
                        COMPARE_COLOUR))
        warp.insert(0, (f"{names[1]} ({b.warping_error:.2f})", b.warp.numpy(), COMPARE_COLOUR))
    middle = height // 2
    _panel(cv2, canvas, (0, 0, width, middle), "mean luma per frame (0-255)", luma)
    _panel(cv2, canvas, (0, middle, width, height), "warping error per frame (0-255)", warp,
           x_offset=1)
    return torch.from_numpy(canvas).float().div(255.0)[None]
