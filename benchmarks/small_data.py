"""Does the default profile learn on a small dataset? Prints a Markdown table.

Writes the small Kinect-v1-sized set of ``skelrep.data.synthetic.small`` (default 20 classes x
10 subjects x 3 cameras = 600 sequences of median ~46 frames, odd subjects train) into a
temporary project, declares it as a generic dataset with an ``xsub`` protocol on top of the
committed ``params.yaml`` (the default CPU profile, MLflow off), and runs the stage entry points
with dvc.yaml's own arguments: download, preprocess, then per method and step budget pretrain,
features, linear, knn. Each row: the optimiser steps trained, the pretraining wall time, and
linear top-1 (last epoch) / KNN-1 top-1 of the self-supervised encoder next to the random-init
encoder and the hand-crafted baseline (logistic regression / 1-NN on the normalised joints at 16
frames) on the same features stage.

    python benchmarks/small_data.py                        # usdrl at the committed budget
    python benchmarks/small_data.py --methods usdrl,umurl,isc --min-steps default,300,600
    python benchmarks/small_data.py --set example            # the easy write_example_dataset set

About 2-3 CPU minutes per 300 USDRL steps on 2 cores, plus ~1 min of set-up.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.dvc_stages: dvc.yaml's command lines

from tests.dvc_stages import stage_args  # noqa: E402

from skelrep.data.generic import write_example_dataset  # noqa: E402
from skelrep.data.synthetic.small import write_small_kinect_set  # noqa: E402
from skelrep.params import load_params  # noqa: E402

DATASET, PROTOCOL = "small", "small-xsub"
NO_SETTINGS = {"pretrain": {}, "features": {}, "linear": {}, "knn": {}}


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_set(kind: str, root: Path, seed: int) -> None:
    if kind == "kinect":
        write_small_kinect_set(root, seed=seed)
    else:  # the easy 8-class set of docs/custom_data.md
        write_example_dataset(root, "kinect_v1_20", n_per_class=60, classes=8, frames=(20, 60),
                              subjects=10, seed=seed)


def _params(method: str, min_steps: int | None) -> dict:
    params = load_params(REPO / "params.yaml")
    params["method"] = method
    params["data"][DATASET] = {"source": "generic", "base": DATASET, "generic": {
        "root": f"data/import/{DATASET}", "layout": "kinect_v1_20",
        "splits": {"xsub": {"column": "subject", "train": "odd"}},
        "zero_frames": "interpolate", "min_frames": 16, "max_frames": 300, "extra_persons": "fail"}}
    params["protocols"][PROTOCOL] = {"dataset": DATASET, "split": "xsub", **copy.deepcopy(NO_SETTINGS)}
    if min_steps is not None:
        params["protocols"][PROTOCOL]["pretrain"] = {"train": {"min_steps": min_steps}}
    params["mlflow"]["enabled"] = False
    return params


def _run(stage: str, params: dict) -> None:
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _stage(stage).main(stage_args(f"{stage}@{DATASET if stage in ('download', 'preprocess') else PROTOCOL}",
                                  params))


def _metrics(kind: str) -> dict:
    return json.loads(Path(f"reports/{kind}/{PROTOCOL}/metrics.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="usdrl", help="comma-separated (usdrl,umurl,isc)")
    parser.add_argument("--min-steps", default="default",
                        help="comma-separated budgets; 'default' = the committed <method>.train.min_steps")
    parser.add_argument("--set", choices=("kinect", "example"), default="kinect",
                        help="kinect: the suite's motions on 20 joints (default); example: the easy set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated set")
    parser.add_argument("--workdir", help="keep the project here (default: a temporary folder)")
    args = parser.parse_args(argv)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="skelrep-small-"))
    work.mkdir(parents=True, exist_ok=True)
    old = Path.cwd()
    rows = []
    try:
        os.chdir(work)
        _write_set(args.set, Path(f"data/import/{DATASET}"), args.seed)
        first = _params("usdrl", None)
        _run("download", first)
        _run("preprocess", first)
        for method in args.methods.split(","):
            for budget in args.min_steps.split(","):
                params = _params(method, None if budget == "default" else int(budget))
                start = time.perf_counter()
                _run("pretrain", params)
                seconds = time.perf_counter() - start
                for stage in ("features", "linear", "knn"):
                    _run(stage, params)
                pre, lin, knn = _metrics("pretrain"), _metrics("linear"), _metrics("knn")
                rows.append((method, budget, pre["pretrain/steps"], seconds,
                             lin["linear/top1_last"], lin["linear/random_init/top1_last"],
                             lin["linear/handcrafted/top1_last"], knn["knn/top1"],
                             knn["knn/random_init/top1"], knn["knn/handcrafted/top1"]))
                print("row: " + json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        os.chdir(old)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nset: {args.set} (seed {args.seed})\n")
    print("| method | min_steps | steps | pretrain s | linear SSL | linear random | linear hand-crafted "
          "| KNN-1 SSL | KNN-1 random | KNN-1 hand-crafted |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, budget, steps, seconds, *acc in rows:
        print(f"| {method} | {budget} | {steps} | {seconds:.0f} | " + " | ".join(f"{a:.1f}" for a in acc) + " |")


if __name__ == "__main__":
    main()
