"""python -m deflicker_impl.train <trainer> [options]

Trainers:
  filter   the neural filter (deflicker_impl/train/filter.py)
  refine   the local refinement net (deflicker_impl/train/refine.py)

Both run the one loop of deflicker_impl/train/loop.py. Adding a trainer: write
deflicker_impl/train/<name>.py with the stage's hooks (`loop.TrainingStage`) and
`add_cli(subparsers)` that registers its subcommand and sets `run=<function(args) -> exit
code>`, then add it to TRAINERS below.
"""

from __future__ import annotations

import argparse
import sys

from . import filter as filter_trainer
from . import refine as refine_trainer

TRAINERS = [filter_trainer, refine_trainer]


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
