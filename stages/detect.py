"""DVC stage `detect@pku1-xsub`: temporal action detection on untrimmed PKU-MMD I videos.

Frozen encoder -> per-frame dense features -> frame-wise linear classifier with a background
class -> proposals (P-THR or P-SSD) -> VOC-style mAP@tIoU and the official PKU-MMD
mAP_action / mAP_video. Also run for the random-init baseline encoder. Ends by printing one
line: mAP_action of both encoders.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from skelrep.config import run_identity
from skelrep.data.class_names import dataset_class_names
from skelrep.data.hdf5 import read_detection
from skelrep.evaluation.detection import (
    evaluate_detection,
    predict_frame_probs,
    proposals_ssd,
    proposals_thr,
    train_frame_classifier,
    write_proposals,
)
from skelrep.evaluation.detection.dense import plot_timeline, video_frame_features
from skelrep.evaluation.features import load_frozen_encoder
from skelrep.evaluation.metrics import summary_line
from skelrep.evaluation.sections import DETECTION_SCHEMA
from skelrep.io import write_json_atomic
from skelrep.params import committed_params, get_section, load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.tracking.mlflow_run import stage_run
from skelrep.validation import validate_all

log = logging.getLogger("stages.detect")
PROTOCOL = "pku1-xsub"
VARIANTS = {"pretrained": ("encoder.pt", "detect"), "random_init": ("encoder_random.pt", "detect/random_init")}


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", required=True, help="the PKU-MMD I dataset file (data/processed/pku1.h5)")
    parser.add_argument("--models", required=True, help="folder of encoder.pt and encoder_random.pt "
                        f"(models/{PROTOCOL})")
    parser.add_argument("--out", required=True, help=f"proposal folder to write (data/eval/{PROTOCOL}/proposals)")
    parser.add_argument("--reports", required=True,
                        help=f"reports folder to write (reports/detect/{PROTOCOL}): metrics.json and timelines/, "
                        "one plot per test video")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    params = protocol_params(params, PROTOCOL)  # the protocol's own settings applied
    cfg = validate(get_section(params, "detection"), DETECTION_SCHEMA, "detection")
    convention = get_section(params, "pku.boundary_convention")
    device = resolve_device(cfg["device"])
    train, test = read_detection(args.data, "train"), read_detection(args.data, "test")
    names = dataset_class_names(args.data, get_section(params, "data.pku1").get("source"))  # timeline legends
    metrics: dict[str, float] = {}
    for variant, (filename, prefix) in VARIANTS.items():
        seed_everything(cfg["seed"])
        encoder = load_frozen_encoder(Path(args.models) / filename, device)
        feats, labels = [], []
        for v in train:
            f, idx = video_frame_features(encoder, v["joint"], stride=cfg["train_stride"], device=device)
            feats.append(f)
            labels.append(v["frame_label"][idx])
        head, _ = train_frame_classifier(feats, labels, num_classes=cfg["num_classes"], epochs=cfg["epochs"],
                                         lr=cfg["lr"], batch_size=cfg["batch_size"], momentum=cfg["momentum"],
                                         milestones=cfg["milestones"], seed=cfg["seed"], device=str(device))
        proposals, gts = {}, {}
        for v in test:
            f, idx = video_frame_features(encoder, v["joint"], device=device)
            probs = predict_frame_probs(head, f[np.argsort(idx, kind="stable")])
            proposals[v["id"]] = (proposals_thr(probs, cfg["thr_class_prob"]) if cfg["proposals"] == "thr" else
                                  proposals_ssd(probs, cfg["ssd_smooth_radius"], cfg["ssd_activity_thr"]))
            gts[v["id"]] = v["gt"]
            if variant == "pretrained":
                write_proposals(Path(args.out) / f"{v['id']}.txt",
                                proposals[v["id"]], convention)
                plot_timeline(Path(args.reports) / "timelines" / f"{v['id']}.png",
                              v["frame_label"], probs.argmax(1), f"{v['id']}: ground truth vs predicted frames",
                              names)
        result = evaluate_detection(proposals, gts, convention, voc_tious=cfg["voc_tious"],
                                    official_theta=cfg["official_theta"], num_classes=cfg["num_classes"])
        metrics.update({k.replace("detect/", f"{prefix}/", 1): v for k, v in result.items()})
        log.info("%s: %s", variant, ", ".join(f"{k}={v:.1f}" for k, v in result.items()))
    write_json_atomic(Path(args.reports) / "metrics.json", metrics)
    with stage_run(run_identity(params, PROTOCOL, committed_params(args.params)), "detect") as run:
        run.log_params({f"detection.{k}": v for k, v in cfg.items()})
        run.log_metrics(metrics)
    print(summary_line("detect", PROTOCOL, metrics), flush=True)


if __name__ == "__main__":
    run_stage(main)
