"""DVC stage `knn@<protocol>`: k-NN retrieval (cosine on L2-normalised cached features).

For the pretrained encoder, the random-init baseline and the hand-crafted baseline (joint
coordinates): knn/top1, knn/random_init/top1, knn/handcrafted/top1, printed as one line at the end.
"""

from __future__ import annotations

from skelrep.stage_server import run_warm

if __name__ == "__main__":  # run in a child of the warm parent (its imports done) when one answers
    run_warm()

from skelrep.tracking.mlflow_run import prestart_writer, stage_run

if __name__ == "__main__":  # MLflow loads in a writer process while this one imports torch
    prestart_writer()

import argparse
from pathlib import Path

from skelrep.config import run_identity
from skelrep.data.protocols import resolve_protocol
from skelrep.evaluation.feature_file import load_feature_file
from skelrep.evaluation.knn import knn_top1
from skelrep.evaluation.metrics import summary_line
from skelrep.evaluation.sections import KNN_SCHEMA
from skelrep.io import write_json_atomic
from skelrep.params import committed_params, get_section, load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.validation import validate_all

VARIANTS = {"pretrained": "knn", "random_init": "knn/random_init", "handcrafted": "knn/handcrafted"}


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    parser.add_argument("--features", required=True, help="feature folder (data/features/<protocol>)")
    parser.add_argument("--reports", required=True,
                        help="reports folder to write (reports/knn/<protocol>): metrics.json")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    resolve_protocol(params, args.protocol)
    params = protocol_params(params, args.protocol)  # the protocol's own settings applied
    cfg = validate(get_section(params, "knn"), KNN_SCHEMA, "knn")
    device = resolve_device(cfg["device"])
    identity = run_identity(params, args.protocol, committed_params(args.params))
    with stage_run(identity, "knn", background=True) as run:  # MLflow opens while the stage works
        metrics: dict[str, float] = {"knn/k": cfg["k"]}
        for variant, prefix in VARIANTS.items():
            f = load_feature_file(Path(args.features) / f"{variant}.npz")
            metrics[f"{prefix}/top1"] = knn_top1(f["train_x"], f["train_y"], f["test_x"], f["test_y"], k=cfg["k"],
                                                 batch_size=cfg["batch_size"], device=str(device))
        write_json_atomic(Path(args.reports) / "metrics.json", metrics)
        run.log_params({f"knn.{k}": v for k, v in cfg.items()})
        run.log_metrics(metrics)
    print(summary_line("knn", args.protocol, metrics), flush=True)


if __name__ == "__main__":
    run_stage(main)
