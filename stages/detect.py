"""DVC stage `detect@pku1-xsub`: temporal action detection on untrimmed PKU-MMD I videos.

Per-frame class probabilities (0 = background) from each protocol of detection.protocols
(evaluation.md §6): dense, a frame-wise linear head on the frozen encoder's dense features;
window, protocol W, a linear head on the frozen encoder's feature of a window centred on each
frame; dense_finetune, protocol D (USDRL TPAMI), the whole network fine-tuned with per-frame
cross-entropy from another protocol's encoder (resumable). With detection.random_init, each
protocol runs again from the random-init encoder, the baseline rows (D: supervised from scratch). Then
proposals (P-THR or P-SSD) -> VOC-style mAP@tIoU and the official PKU-MMD mAP_action /
mAP_video. Ends by printing one line: mAP_action of every encoder and protocol.
"""

from __future__ import annotations

from skelrep.stage_server import run_warm

if __name__ == "__main__":  # run in a child of the warm parent (its imports done) when one answers
    run_warm()

from skelrep.tracking.mlflow_run import prestart_writer, stage_run

if __name__ == "__main__":  # MLflow loads in a writer process while this one imports torch
    prestart_writer()

import argparse
import logging
from pathlib import Path

import torch

from skelrep.config import run_identity
from skelrep.data.class_names import dataset_class_names
from skelrep.data.hdf5 import read_detection
from skelrep.errors import ParamsError
from skelrep.evaluation.detection import evaluate_detection, write_proposals
from skelrep.evaluation.detection.dense import plot_timeline
from skelrep.evaluation.detection.protocols import (
    dense_finetune_probs,
    dense_probs,
    generator_of,
    proposals_for,
    window_probs,
)
from skelrep.evaluation.features import load_frozen_encoder
from skelrep.evaluation.metrics import summary_line
from skelrep.evaluation.sections import DETECTION_LABELS, DETECTION_SCHEMA, detection_metric_prefix, detection_subfolder
from skelrep.io import write_json_atomic
from skelrep.params import committed_params, get_section, load_params
from skelrep.recipes import flatten, protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.validation import validate_all

log = logging.getLogger("stages.detect")
PROTOCOL = "pku1-xsub"
ENCODER, RANDOM_ENCODER = "encoder.pt", "encoder_random.pt"


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", required=True, help="the PKU-MMD I dataset file (data/processed/pku1.h5)")
    parser.add_argument("--models", required=True, help="folder of encoder.pt and encoder_random.pt "
                        f"(models/{PROTOCOL})")
    parser.add_argument("--init-models", help="folder whose encoder.pt the dense_finetune protocol fine-tunes "
                        "(models/<detection.dense_finetune.init_from>); needed only when that protocol runs")
    parser.add_argument("--out", required=True, help=f"proposal folder to write (data/eval/{PROTOCOL}/proposals): "
                        "the dense protocol's files, one subfolder per other protocol")
    parser.add_argument("--reports", required=True,
                        help=f"reports folder to write (reports/detect/{PROTOCOL}): metrics.json and timelines/, "
                        "one plot per test video and protocol")
    parser.add_argument("--resume-dir", default=None, help="resume state of an interrupted dense_finetune "
                        f"training (default models/.resume/detect/{PROTOCOL})")
    return parser


def check_dense_features(protocols, encoder: Path, init: Path) -> None:
    """The dense and dense_finetune protocols read per-frame features: refuse an encoder without
    them (ISC's AGCN and HCN) before any work, naming the parameter."""
    for protocol, path in (("dense", encoder), ("dense_finetune", init)):
        if protocol in protocols and not load_frozen_encoder(path, torch.device("cpu")).dense_dim:
            raise ParamsError("detection.protocols", f"{protocol} needs an encoder with dense per-frame features; "
                              f"{path} has none (ISC's AGCN and HCN): run window only")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    params = protocol_params(params, PROTOCOL)  # the protocol's own settings applied
    cfg = validate(get_section(params, "detection"), DETECTION_SCHEMA, "detection")
    if "dense_finetune" in cfg["protocols"] and not args.init_models:
        raise ParamsError("detection.protocols", "dense_finetune needs the encoder it fine-tunes: pass "
                          "--init-models models/<detection.dense_finetune.init_from>")
    convention = get_section(params, "pku.boundary_convention")
    device = resolve_device(cfg["device"])
    models = Path(args.models)
    check_dense_features(cfg["protocols"], models / ENCODER, Path(args.init_models or ".") / ENCODER)
    train, test = read_detection(args.data, "train"), read_detection(args.data, "test")
    names = dataset_class_names(args.data, get_section(params, "data.pku1").get("source"))  # timeline legends
    gts = {v["id"]: v["gt"] for v in test}
    identity = run_identity(params, PROTOCOL, committed_params(args.params))
    with stage_run(identity, "detect", background=True) as run:  # MLflow opens while detection runs
        metrics: dict[str, float] = {}
        histories: dict[str, list[dict]] = {}
        resume_root = Path(args.resume_dir or Path("models/.resume/detect") / PROTOCOL)
        for protocol in cfg["protocols"]:
            # D starts from another protocol's encoders (init_from); its random-init one is the from-scratch baseline
            folder = Path(args.init_models) if protocol == "dense_finetune" else models
            runs = [("", folder / ENCODER)] + ([("random_init", folder / RANDOM_ENCODER)] if cfg["random_init"] else [])
            for variant, encoder in runs:
                seed_everything(cfg["seed"])
                log.info("detection protocol %s (%s)%s", protocol, DETECTION_LABELS[protocol],
                         f", {variant} encoder" if variant else "")
                if protocol == "dense":
                    probs, history = dense_probs(encoder, train, test, cfg, device)
                elif protocol == "window":
                    probs, history = window_probs(encoder, train, test, cfg, device)
                else:
                    probs, history = dense_finetune_probs(encoder, train, test, cfg, convention, device,
                                                          resume_dir=resume_root / (variant or "pretrained"))
                generator = generator_of(protocol, cfg)
                proposals = {vid: proposals_for(p, generator, cfg) for vid, p in probs.items()}
                if not variant:  # the pretrained encoder's proposals and timelines
                    sub = detection_subfolder(protocol)
                    for v in test:
                        write_proposals(Path(args.out) / sub / f"{v['id']}.txt", proposals[v["id"]],
                                        convention)
                        plot_timeline(Path(args.reports) / "timelines" / sub / f"{v['id']}.png",
                                      v["frame_label"], probs[v["id"]].argmax(1),
                                      f"{v['id']}: ground truth vs predicted frames ({DETECTION_LABELS[protocol]})"
                                      if protocol != "dense" else f"{v['id']}: ground truth vs predicted frames", names)
                result = evaluate_detection(proposals, gts, convention, voc_tious=cfg["voc_tious"],
                                            official_theta=cfg["official_theta"], num_classes=cfg["num_classes"])
                prefix = detection_metric_prefix(protocol, variant)
                metrics.update({k.replace("detect/", f"{prefix}/", 1): v for k, v in result.items()})
                histories[prefix] = history
                log.info("%s: %s", prefix, ", ".join(f"{k.rsplit('/', 1)[1]}={v:.1f}" for k, v in result.items()))
        write_json_atomic(Path(args.reports) / "metrics.json", metrics)
        run.log_params({f"detection.{k}": v for k, v in flatten(cfg).items()})
        run.log_metrics(metrics)
        run.log_curves({f"{prefix}/{name}_curve": [(row["epoch"], row[name]) for row in history]
                        for prefix, history in histories.items() if history
                        for name in history[0] if name != "epoch"})
    print(summary_line("detect", PROTOCOL, metrics), flush=True)


if __name__ == "__main__":
    run_stage(main)
