"""python -m deflicker_impl.train <trainer> [options]

Trainers:
  filter   the neural filter (deflicker_impl/train/filter_training.py)
  refine   the local refinement net (deflicker_impl/train/refine_training.py)

Adding a trainer (e.g. `refine` for the local refinement net): write
deflicker_impl/train/<name>_training.py with `add_cli(subparsers)` that registers its subcommand
and sets `run=<function(args) -> exit code>`, then add it to TRAINERS below.
"""

from __future__ import annotations

import argparse
import sys

from . import filter_training, refine_training

TRAINERS = [filter_training, refine_training]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deflicker_impl.train",
                                     description="Train the networks of the deflicker pack.")
    subparsers = parser.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    for trainer in TRAINERS:
        trainer.add_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
