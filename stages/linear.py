"""DVC stage `linear@<protocol>`: linear probe on the cached frozen features.

Primary number: top-1 after the last epoch. Secondary, labelled column: best test top-1 over
the periodic evaluations (the official codes' convention). Same probe for the random-init
baseline encoder and for the hand-crafted baseline (the joint coordinates of handcrafted.npz: a
logistic regression on them): metrics under linear/random_init/ and linear/handcrafted/,
history_<variant>.jsonl and curve_<variant>.csv. The probe trains on the feature file's
train_x_crops when present (K cached train crops, crop (epoch - 1) % K in each epoch; the
standardisation statistics over all of them), else on train_x, and tests on test_x.
predictions.csv holds the pretrained encoder's last-epoch test predictions: class ids and, when
the feature file names the classes, their names. Ends by printing one line: top-1 of the
pretrained encoder and of both baselines.
"""

from __future__ import annotations

from skelrep.stage_server import run_warm

if __name__ == "__main__":  # run in a child of the warm parent (its imports done) when one answers
    run_warm()

from skelrep.tracking.mlflow_run import epoch_curves, prestart_writer, stage_run

if __name__ == "__main__":  # MLflow loads in a writer process while this one imports torch
    prestart_writer()

import argparse
import logging
from pathlib import Path

from skelrep.config import run_identity
from skelrep.data.protocols import resolve_protocol
from skelrep.evaluation.feature_file import label_names, load_feature_file
from skelrep.evaluation.linear import standardize_features, train_linear_probe
from skelrep.evaluation.metrics import summary_line
from skelrep.evaluation.sections import LINEAR_SCHEMA
from skelrep.io import write_csv_atomic, write_json_atomic, write_jsonl_atomic, write_npz_atomic
from skelrep.params import committed_params, get_section, load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.validation import validate_all

VARIANTS = {"pretrained": "linear", "random_init": "linear/random_init", "handcrafted": "linear/handcrafted"}
log = logging.getLogger("stages.linear")
CURVES = ("lr", "train_loss", "train_top1", "test_top1", "test_top5")  # MLflow: <prefix>/<column>_curve


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    parser.add_argument("--features", required=True, help="feature folder (data/features/<protocol>)")
    parser.add_argument("--reports", required=True, help="reports folder to write (reports/linear/<protocol>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    resolve_protocol(params, args.protocol)
    params = protocol_params(params, args.protocol)  # the protocol's own settings applied
    cfg = validate(get_section(params, "linear"), LINEAR_SCHEMA, "linear")
    device = resolve_device(cfg["device"])
    out = Path(args.reports)
    metrics: dict[str, float] = {}
    identity = run_identity(params, args.protocol, committed_params(args.params))
    with stage_run(identity, "linear", background=True) as run:
        run.log_params({f"linear.{k}": v for k, v in cfg.items()})
        for variant, prefix in VARIANTS.items():
            seed_everything(cfg["seed"])
            feats = load_feature_file(Path(args.features) / f"{variant}.npz")
            # the probe's train input: its cached train crops (K, N, D) when the features stage wrote
            # them (train input != test input, e.g. ISC's random crops), else the test-style train_x
            train_x, test_x = feats.get("train_x_crops", feats["train_x"]), feats["test_x"]
            if train_x.ndim == 3:
                log.info("%s: %d cached train crops, crop (epoch - 1) %% %d each epoch", variant, len(train_x),
                         len(train_x))
                run.log_params({"linear.train_crops": len(train_x)})  # K, the same for both encoders
            if cfg["standardize"]:  # train statistics: over all cached crops
                train_x, test_x = standardize_features(train_x, test_x)
            result = train_linear_probe(
                train_x, feats["train_y"], test_x, feats["test_y"], num_classes=int(feats["num_classes"]),
                epochs=cfg["epochs"], lr=cfg["lr"], milestones=cfg["milestones"], batch_size=cfg["batch_size"],
                momentum=cfg["momentum"], weight_decay=cfg["weight_decay"], eval_every=cfg["eval_every"],
                seed=cfg["seed"], device=str(device))
            metrics.update({f"{prefix}/top1_last": result.top1_last, f"{prefix}/top5_last": result.top5_last,
                            f"{prefix}/top1_best_on_test": result.top1_best_on_test,
                            f"{prefix}/best_epoch": result.best_epoch})
            suffix = "" if variant == "pretrained" else f"_{variant}"
            write_jsonl_atomic(out / f"history{suffix}.jsonl", result.history)
            # the evaluated epochs as a CSV: the DVC plot of test accuracy
            write_csv_atomic(out / f"curve{suffix}.csv",
                             [{"epoch": h["epoch"], "test_top1": h["test_top1"], "test_top5": h["test_top5"]}
                              for h in result.history if "test_top1" in h])
            run.log_curves(epoch_curves(result.history, prefix, CURVES, suffix="_curve"))
            if variant == "pretrained":
                names = feats["test_ids"]
                pred = result.test_scores_last.argmax(1)
                # class ids (the DVC confusion plot) and, when the features know them, class names
                # (the report's confusion figure)
                classes = list(feats["class_names"]) or None
                rows = [{"sample": n, "actual": int(a), "predicted": int(p)}
                        for n, a, p in zip(names, feats["test_y"], pred, strict=True)]
                if classes:
                    for row, a, p in zip(rows, label_names(feats["test_y"], classes), label_names(pred, classes),
                                         strict=True):
                        row.update(actual_name=a, predicted_name=p)
                write_csv_atomic(out / "predictions.csv", rows)
                # class probabilities of the last epoch: what score-level (late) fusion of
                # streams sums, e.g. 3s-USDRL in `skelrep compare`
                write_npz_atomic(out / "test_scores.npz", probs=result.test_scores_last.astype("float32"),
                                 label=feats["test_y"], sample=names.astype(str))
                run.log_artifact(out / "test_scores.npz", "linear")
        write_json_atomic(out / "metrics.json", metrics)
        run.log_metrics(metrics)
    print(summary_line("linear", args.protocol, metrics), flush=True)


if __name__ == "__main__":
    run_stage(main)
