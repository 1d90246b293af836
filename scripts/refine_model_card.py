"""Print a model card (markdown) for local-refinement weights, from the provenance stored in them.

    .venv/bin/python scripts/refine_model_card.py weights/local_refine.safetensors \
        > weights/local_refine.md

Only figures recorded by the training run are printed; add measurements made elsewhere (speed,
benchmark results) by hand, each with how and where it was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deflicker_impl.refine.apply import WEIGHTS_KIND
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
    wall = float(_json(meta, "wall_time_s", 0.0))
    lines = [
        f"# Local refinement weights: `{path.name}`",
        "",
        "LocalRefineNet (deflicker_impl/refine_net.py): a small recurrent net (strided convs,",
        "residual blocks, a ConvLSTM at 1/4 resolution) that corrects the filtered frame given the",
        "previous filtered frame and the previous output (see `architecture`: `output` says",
        "whether it predicts a smooth colour field or a free residual, `motion` whether the",
        "previous frames and its memory are aligned with optical flow). Trained from scratch by",
        "this project (deflicker_impl/train/refine_training.py) on short clean video sequences",
        "whose inputs are our own atlas + filter outputs of flickered copies (share",
        "`pipeline_prob`) or the clean frames with synthetic local flicker; fidelity +",
        "occlusion-masked short/long-term warping losses with DIS flow computed on the clean",
        "frames. No third-party weights.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{meta.get('arch')}` |",
        f"| parameters | {_json(meta, 'parameters', '?')} |",
        (f"| training steps | {_json(meta, 'steps')} (batch {_json(meta, 'batch')} sequences, "
         f"{_json(meta, 'crop')} px crops, Adam lr {_json(meta, 'lr')}, cosine decay) |"),
        f"| losses | {json.dumps(_json(meta, 'losses', {}))} |",
        f"| synthetic flicker | {json.dumps(_json(meta, 'flicker', {}))} |",
        f"| seed | {_json(meta, 'seed')} |",
        f"| hardware | {meta.get('device')} |",
        f"| wall time | {wall:.0f} s ({wall / 60:.1f} min) |",
        (f"| data | {data.get('train_sequences')} training sequences of "
         f"{data.get('frames_per_sequence')} frames from {data.get('train_clips')} |"),
        (f"| validation | {data.get('val_sequences')} sequences of the held-out clips "
         f"{data.get('val_clips')}, fixed flicker (seed {val_set.get('seed')}) |"),
        f"| command | `{meta.get('command', '')}` |",
        "",
        "Validation (mean over the held-out sequences; warping error = L1 over non-occluded",
        "pixels, short + long term, flow on the clean frames, 0..1 intensity units):",
        "",
        "| | PSNR (dB) | warping error |",
        "|---|---|---|",
        f"| clean frames (floor) | - | {val.get('val_warp_clean')} |",
        (f"| input (atlas + filter outputs, and clean + local flicker) | {val.get('val_psnr_in')}"
         f" | {val.get('val_warp_in')} |"),
        (f"| **refined output** | **{val.get('val_psnr_out')}** | "
         f"**{val.get('val_warp_out')}** |"),
        f"| output for a clean input (do no harm) | {val.get('val_psnr_identity')} | - |",
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
