"""Print a model card (markdown) for a stage's weights, from the provenance stored in them.

    .venv/bin/python -m scripts.model_card filter weights/neural_filter.safetensors \
        > weights/neural_filter.md
    .venv/bin/python -m scripts.model_card refine weights/local_refine.safetensors \
        > weights/local_refine.md

Only figures recorded by the training run are printed; add measurements made elsewhere (speed,
benchmark results) by hand, each with how and where it was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deflicker_impl.filter.apply import WEIGHTS_KIND as FILTER_KIND
from deflicker_impl.refine.apply import WEIGHTS_KIND as REFINE_KIND
from deflicker_impl.weights import read_weights_metadata


def _json(meta: dict, key: str, default=None):
    try:
        return json.loads(meta[key])
    except (KeyError, ValueError):
        return meta.get(key, default)


def _filter_parts(meta: dict, data: dict, val: dict,
                  val_set: dict) -> tuple[list[str], list[str], list[str], list[str]]:
    """(title and description, training rows, data rows, validation) of the filter's card."""
    intro = [
        "Neural filter weights",
        "NeuralFilterNet (deflicker_impl/filter/net.py): a U-Net at half resolution that predicts",
        "a per-pixel 3x4 colour transform applied to the input frame (structure from the frame,",
        "colour from the atlas frame). Trained from scratch by this project on synthetic pairs",
        "(deflicker_impl/train/pairs.py); no third-party weights.",
    ]
    training = [
        (f"| training steps | {_json(meta, 'steps')} (batch {_json(meta, 'batch')}, "
         f"{_json(meta, 'crop')} px crops, Adam lr {_json(meta, 'lr')}, cosine decay) |"),
    ]
    data_rows = [
        (f"| data | {data.get('images')} images ({data.get('megapixels')} Mpx, "
         f"{data.get('clips')} clips' frames): {json.dumps(data.get('sources', {}))} |"),
        (f"| split | {data.get('train_images')} train / {data.get('val_images')} validation "
         "images, by hash of the file name (a clip's frames stay together) |"),
    ]
    validation = [
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
    ]
    if "val_psnr_wrong_content_output" in val:
        validation += [
            (f"| atlas input showing wrong content in every pair "
             f"({val_set.get('wrong_content_samples')} pairs) | "
             f"{val.get('val_psnr_wrong_content_atlas')} |"),
            (f"| **filter output on those pairs** | "
             f"**{val.get('val_psnr_wrong_content_output')}** |"),
        ]
    return intro, training, data_rows, validation


def _refine_parts(meta: dict, data: dict, val: dict,
                  val_set: dict) -> tuple[list[str], list[str], list[str], list[str]]:
    """(title and description, training rows, data rows, validation) of the refinement's card."""
    intro = [
        "Local refinement weights",
        "LocalRefineNet (deflicker_impl/refine/net.py): a small recurrent net (strided convs,",
        "residual blocks, a ConvLSTM at 1/4 resolution) that corrects the filtered frame given the",
        "previous filtered frame and the previous output (see `architecture`: `output` says",
        "whether it predicts a smooth colour field or a free residual, `motion` whether the",
        "previous frames and its memory are aligned with optical flow). Trained from scratch by",
        "this project (deflicker_impl/train/refine.py) on short clean video sequences",
        "whose inputs are our own atlas + filter outputs of flickered copies (share",
        "`pipeline_prob`) or the clean frames with synthetic local flicker; fidelity +",
        "occlusion-masked short/long-term warping losses with DIS flow computed on the clean",
        "frames. No third-party weights.",
    ]
    training = [
        (f"| training steps | {_json(meta, 'steps')} (batch {_json(meta, 'batch')} sequences, "
         f"{_json(meta, 'crop')} px crops, Adam lr {_json(meta, 'lr')}, cosine decay) |"),
        f"| losses | {json.dumps(_json(meta, 'losses', {}))} |",
        f"| synthetic flicker | {json.dumps(_json(meta, 'flicker', {}))} |",
    ]
    data_rows = [
        (f"| data | {data.get('train_sequences')} training sequences of "
         f"{data.get('frames_per_sequence')} frames from {data.get('train_clips')} |"),
        (f"| validation | {data.get('val_sequences')} sequences of the held-out clips "
         f"{data.get('val_clips')}, fixed flicker (seed {val_set.get('seed')}) |"),
    ]
    validation = [
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
    ]
    return intro, training, data_rows, validation


def _fine_tuned_row(meta: dict) -> list[str]:
    source = _json(meta, "fine_tuned_from")
    if not isinstance(source, dict):
        return []
    return [(f"| fine-tuned from | `{source.get('file')}` ({source.get('steps')} steps on "
             f"{source.get('device')}, {float(source.get('wall_time_s') or 0) / 60:.1f} min) |")]


STAGES = {"filter": (FILTER_KIND, _filter_parts), "refine": (REFINE_KIND, _refine_parts)}


def model_card(stage: str, path: Path) -> str:
    kind, parts = STAGES[stage]
    meta = read_weights_metadata(path, kind=kind)
    recorded = (_json(meta, key, {}) for key in ("data", "validation", "validation_set"))
    (title, *description), training, data_rows, validation = parts(meta, *recorded)
    wall = float(_json(meta, "wall_time_s", 0.0))
    lines = [
        f"# {title}: `{path.name}`",
        "",
        *description,
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{meta.get('arch')}` |",
        f"| parameters | {_json(meta, 'parameters', '?')} |",
        *training,
        *_fine_tuned_row(meta),
        f"| seed | {_json(meta, 'seed')} |",
        f"| hardware | {meta.get('device')} |",
        f"| wall time | {wall:.0f} s ({wall / 60:.1f} min) |",
        *data_rows,
        f"| command | `{meta.get('command', '')}` |",
        "",
        *validation,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("weights", type=Path)
    args = parser.parse_args(argv)
    print(model_card(args.stage, args.weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
