"""Print a model card (markdown) for neural-filter weights, from the provenance stored in them.

    .venv/bin/python scripts/filter_model_card.py weights/neural_filter.safetensors \
        > weights/neural_filter.md

Only figures recorded by the training run are printed; add measurements made elsewhere (speed,
benchmark results) by hand, each with how and where it was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deflicker_impl.filter.apply import WEIGHTS_KIND
from deflicker_impl.weights import read_weights_metadata


def _json(meta: dict, key: str, default=None):
    try:
        return json.loads(meta[key])
    except (KeyError, ValueError):
        return meta.get(key, default)


def model_card(path: Path) -> str:
    meta = read_weights_metadata(path, kind=WEIGHTS_KIND)
    data = _json(meta, "data", {})
    val = _json(meta, "validation", {})
    val_set = _json(meta, "validation_set", {})
    sources = data.get("sources", {})
    wall = float(_json(meta, "wall_time_s", 0.0))
    lines = [
        f"# Neural filter weights: `{path.name}`",
        "",
        "NeuralFilterNet (deflicker_impl/filter_net.py): a U-Net at half resolution that predicts",
        "a per-pixel 3x4 colour transform applied to the input frame (structure from the frame,",
        "colour from the atlas frame). Trained from scratch by this project on synthetic pairs",
        "(deflicker_impl/distortions.py); no third-party weights.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{meta.get('arch')}` |",
        f"| parameters | {_json(meta, 'parameters', '?')} |",
        (f"| training steps | {_json(meta, 'steps')} (batch {_json(meta, 'batch')}, "
        f"{_json(meta, 'crop')} px crops, Adam lr {_json(meta, 'lr')}, cosine decay) |"),
        f"| seed | {_json(meta, 'seed')} |",
        f"| hardware | {meta.get('device')} |",
        f"| wall time | {wall:.0f} s ({wall / 60:.1f} min) |",
        (f"| data | {data.get('images')} images ({data.get('megapixels')} Mpx, "
        f"{data.get('clips')} clips' frames): {json.dumps(sources)} |"),
        (f"| split | {data.get('train_images')} train / {data.get('val_images')} validation "
        "images, by hash of the file name (a clip's frames stay together) |"),
        f"| command | `{meta.get('command', '')}` |",
        "",
        (f"Validation: {val_set.get('samples')} fixed pairs of {val_set.get('crop')} px crops "
         f"of the held-out images (seed {val_set.get('seed')}), mean PSNR against the clean "
         "image:"),
        "",
        "| input / output | PSNR (dB) |",
        "|---|---|",
        f"| frame input (colour-distorted) | {val.get('val_psnr_frame')} |",
        f"| atlas input (structure-distorted) | {val.get('val_psnr_atlas')} |",
        f"| **filter output** | **{val.get('val_psnr_output')}** |",
        (f"| filter output when the frame is already clean (do no harm) | "
        f"{val.get('val_psnr_identity')} |"),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    args = parser.parse_args(argv)
    print(model_card(args.weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
