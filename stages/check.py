"""DVC stage `check`: every section of params.yaml validated before any other stage runs, and the
digest of the code every stage loads.

Every other stage depends on its output, so a typo anywhere (``linear.epochz``, ``method:
simclr``, an unknown top-level section) stops ``dvc repro`` / ``dvc exp run`` here, in under a
second (no torch is loaded), with skelrep's message naming the key and what is allowed, instead
of after pretraining (or DVC's bare "Parameters 'simclr' are missing"). It tracks the whole
params.yaml and the whole package, and re-runs on any change of either, but its output changes
only with the files of COMMON_CODE: a valid params change never makes a stage re-run by itself.

COMMON_CODE is the code every stage loads (params, schema, I/O, runtime, the protocol registry);
CODE_GROUPS are files that many stages load together (the method implementations, the skeleton
readers, ...). Rather than naming those files in the deps of each of the ~38 stages (DVC hashes
them and rewrites them into dvc.lock after every stage, which costs YAML time with every line),
the stages depend on this stage's outputs, which record each file's sha256: the marker file
(COMMON_CODE) and one file per code group. A change to any of those files changes the digest,
so the stages that load it re-run, as with the files as deps. tests/stages/test_dvc_deps.py
counts a group's files as covered for a stage that depends on its digest, and checks that every
such stage loads each of them. `skelrep check` runs the same validation.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from skelrep.io import write_text_atomic
from skelrep.params import load_params
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.validation import validate_all

VALID = "params.yaml: every section valid\n"
REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout this script runs from (DVC: the cwd)

# the code every stage loads, relative to the repository root (files, or folders of package data)
COMMON_CODE = (
    # params, errors, I/O, runtime, skeleton constants
    "src/skelrep/params.py",
    "src/skelrep/schema.py",
    "src/skelrep/errors.py",
    "src/skelrep/io.py",
    "src/skelrep/runtime.py",
    "src/skelrep/skeleton.py",
    "src/skelrep/portable.py",
    "src/skelrep/catalog.py",
    "src/skelrep/recipes.py",
    # the protocol registry every stage reads its protocols and datasets from
    "src/skelrep/data/protocols.py",
)

# Code that many stages load together, one digest file each (<--code-dir>/<group>.txt): a stage
# that loads a group depends on its file instead of listing the group's files.
CODE_GROUPS = {
    # the method registry and every method's implementation: what builds, trains and loads an encoder
    "models": (
        "src/skelrep/methods",
        "src/skelrep/models",
        "src/skelrep/losses",
        "src/skelrep/training",
        "src/skelrep/data/augment.py",
        "src/skelrep/data/augment_schema.py",
    ),
    # the skeleton readers, joint layouts and normalisation (preprocessing, and data/dataset.py's
    # reading of a processed file)
    "readers": (
        "src/skelrep/data/layout.py",
        "src/skelrep/data/layouts",
        "src/skelrep/data/normalize.py",
        "src/skelrep/data/ntu.py",
        "src/skelrep/data/textnum.py",
        "src/skelrep/data/missing",
    ),
    # a processed HDF5 file as a torch dataset
    "datasets": (
        "src/skelrep/data/dataset.py",
        "src/skelrep/data/hdf5.py",
    ),
    # the MLflow run of a stage: its name, tags and the configuration it records
    "tracking": (
        "src/skelrep/tracking/mlflow_run.py",
        "src/skelrep/tracking/warm_writer.py",  # the writer processes that log it
        "src/skelrep/warm.py",
        "src/skelrep/tracking/writer.py",
        "src/skelrep/config.py",
        "src/skelrep/profiles.py",
    ),
}


def _files(root: Path, entry: str) -> list[Path]:
    path = root / entry
    if path.is_dir():  # package data: every file, bytecode caches aside
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if not path.is_file():
        raise FileNotFoundError(f"stages/check.py (COMMON_CODE or CODE_GROUPS) names {entry}, which does not exist")
    return [path]


def code_digest(root: Path, entries=COMMON_CODE) -> str:
    """One ``<sha256>  <path>`` line per file of ``entries`` (paths relative to ``root``, sorted)."""
    files = sorted({p for entry in entries for p in _files(root, entry)}, key=lambda p: p.relative_to(root).as_posix())
    return "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}\n"
                   for p in files)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True,
                        help="the file every other stage depends on (reports/params_check.txt)")
    parser.add_argument("--code-dir", required=True,
                        help="folder of the code groups' digest files, <group>.txt (reports/code)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    validate_all(load_params(args.params))
    write_text_atomic(Path(args.out), VALID + "# the code every stage loads (stages/check.py COMMON_CODE)\n"
                      + code_digest(REPO_ROOT))
    for group, entries in CODE_GROUPS.items():
        write_text_atomic(Path(args.code_dir) / f"{group}.txt",
                          f"# code group {group!r} (stages/check.py CODE_GROUPS)\n" + code_digest(REPO_ROOT, entries))


if __name__ == "__main__":
    run_stage(main)
