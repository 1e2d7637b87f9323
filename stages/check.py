"""DVC stage `check`: every section of params.yaml validated before any other stage runs.

Every other stage depends on its output, so a typo anywhere (``linear.epochz``, ``method:
simclr``, an unknown top-level section) stops ``dvc repro`` / ``dvc exp run`` here, in under a
second (no torch is loaded), with skelrep's message naming the key and what is allowed, instead
of after pretraining (or DVC's bare "Parameters 'simclr' are missing"). It tracks the whole params.yaml
and re-runs on any change, but its output is the same bytes whenever the file is valid, so it
never makes a downstream stage re-run by itself. `skelrep check` runs the same validation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from skelrep.io import write_text_atomic
from skelrep.params import load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all

VALID = "params.yaml: every section valid\n"  # constant: the dependency hash of every stage


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True,
                        help="the marker file every other stage depends on (reports/params_check.txt)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    validate_all(load_params(args.params))
    write_text_atomic(Path(args.out), VALID)


if __name__ == "__main__":
    run_stage(main)
