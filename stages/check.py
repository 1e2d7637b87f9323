"""DVC stage `check`: every section of params.yaml validated before any other stage runs, and the
digest of the code each stage loads.

Every other stage depends on its output, so a typo anywhere (``linear.epochz``, ``method:
simclr``, an unknown top-level section) stops ``dvc repro`` / ``dvc exp run`` here, in under a
second (no torch is loaded), with skelrep's message naming the key and what is allowed, instead
of after pretraining (or DVC's bare "Parameters 'simclr' are missing"). It tracks the whole
params.yaml, the stage scripts and the whole package, and re-runs on any change of them, but its
outputs change only with the code a stage loads: a valid params change never makes a stage
re-run by itself.

Per stage script ``stages/<stage>.py`` (this one aside) it writes ``<--code-dir>/<stage>.txt``:
the sha256 of every project file the script loads, found by reading the imports
(``skelrep.code_deps``), one ``<sha256>  <path>`` line each. The stages of that script depend on
this file instead of listing those files in dvc.yaml (DVC hashes every dep and rewrites it into
dvc.lock after each stage, which costs YAML time with every line): a change of a file a stage
loads changes its digest, so the stage re-runs, as with the file as a dep, and a new import is a
new line, so the deps cannot drift from the code. tests/stages/test_dvc_deps.py checks the digests
against what each script loads when it runs. `skelrep check` runs the same validation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from skelrep.code_deps import ImportGraph, stage_digest, stage_scripts
from skelrep.io import write_text_atomic
from skelrep.params import load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all

VALID = "params.yaml: every section valid\n"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout this script runs from (DVC: the cwd)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True,
                        help="the file every other stage depends on (reports/params_check.txt)")
    parser.add_argument("--code-dir", required=True,
                        help="folder of the stages' code digests, <stage>.txt per stages/<stage>.py (reports/code)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    validate_all(load_params(args.params))
    write_text_atomic(Path(args.out), VALID)
    graph = ImportGraph(REPO_ROOT)
    for script in stage_scripts(REPO_ROOT, but=Path(__file__).name):
        write_text_atomic(Path(args.code_dir) / f"{Path(script).stem}.txt", stage_digest(REPO_ROOT, script, graph))


if __name__ == "__main__":
    run_stage(main)
