"""DVC stage `pretrain@<protocol>`: self-supervised pretraining of the selected method.

Writes models/<protocol>/encoder.pt (backbone only: what downstream stages depend on),
models/<protocol>/encoder_random.pt (same architecture, random init: the baseline) and
per-epoch stats for DVC plots. It trains train.epochs epochs, or more on a small train split
(at least train.min_steps optimiser steps: skelrep.training.schema.train_schedule), decided
before training and recorded as pretrain/epochs and pretrain/steps. While it trains, the resume
checkpoint lives in models/.resume/<protocol>/ (not a DVC output); it is deleted once the outputs are written, so
only an interrupted run of the same configuration resumes, and `dvc repro -f` starts from scratch.
Multi-GPU / multi-node: torchrun --nproc_per_node=K stages/pretrain.py --protocol ...
"""

from __future__ import annotations

from skelrep.stage_server import run_warm

if __name__ == "__main__":  # run in a child of the warm parent (its imports done) when one answers
    run_warm()

from skelrep.tracking.mlflow_run import epoch_curves, flatten, prestart_writer, stage_run

if __name__ == "__main__":  # MLflow loads in a writer process while this one imports torch
    prestart_writer()

import argparse
import logging
import socket
from pathlib import Path

import torch

from skelrep.config import identifying_params, run_identity
from skelrep.data.dataset import MEMO_MB, SkeletonH5Dataset
from skelrep.data.hdf5 import read_attrs
from skelrep.data.protocols import resolve_protocol
from skelrep.io import write_json_atomic
from skelrep.methods import get_method
from skelrep.models.encoder_file import save_encoder
from skelrep.params import committed_params, get_section, load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.training.checkpoint import clear_checkpoint, run_fingerprint
from skelrep.training.distributed import barrier, init_distributed, shutdown
from skelrep.training.pretrain import (
    build_model_for,
    resolve_precision,
    run_pretraining,
    write_stats,
)
from skelrep.training.schema import train_schedule
from skelrep.validation import validate_all

log = logging.getLogger("stages.pretrain")


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    parser.add_argument("--data", required=True, help="the protocol's dataset file (data/processed/<dataset>.h5)")
    parser.add_argument("--out", required=True, help="model folder (models/<protocol>)")
    parser.add_argument("--reports", required=True, help="stats/metrics folder (reports/pretrain/<protocol>)")
    parser.add_argument("--resume-dir", default=None,
                        help="resume checkpoint of an interrupted run (default: models/.resume/<protocol>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    protocol = resolve_protocol(params, args.protocol)  # validates before heavy work
    params = protocol_params(params, args.protocol)  # the protocol's own settings applied
    method = get_method(get_section(params, "method"), params)
    train_cfg = method.train_cfg
    data_path, out, reports = Path(args.data), Path(args.out), Path(args.reports)
    resume_dir = Path(args.resume_dir or f"models/.resume/{args.protocol}")

    device = resolve_device(train_cfg["device"])
    dist = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    seed_everything(train_cfg["seed"], deterministic_cuda=device.type == "cuda")
    dataset = SkeletonH5Dataset(data_path, protocol.split, "train", memo_mb=MEMO_MB)
    fingerprint = run_fingerprint({"method": method.name, "section": params[method.name],
                                   "data": read_attrs(data_path), "split": protocol.split, "n": len(dataset),
                                   "world_size": dist.world_size})

    schedule = train_schedule(train_cfg, len(dataset)) if len(dataset) >= train_cfg["batch_size"] else None
    identity = run_identity(params, args.protocol, committed_params(args.params)) if dist.is_main else None
    with stage_run(identity, "pretrain", background=True) as run:
        run.log_params({**identifying_params(params, args.protocol),
                        **{f"{method.name}.{k}": v for k, v in method.log_params.items()},
                        **flatten(train_cfg, "pretrain."), "world_size": dist.world_size,
                        # what `precision: auto` became on this device (fp16 also runs a GradScaler)
                        "pretrain.precision_resolved": _precision_name(resolve_precision(train_cfg["precision"],
                                                                                         device)),
                        # what train.min_steps made of train.epochs on this split
                        **({"pretrain.epochs_resolved": schedule.epochs,
                            "pretrain.milestones_resolved": schedule.milestones,
                            "pretrain.steps_per_epoch": schedule.steps_per_epoch} if schedule else {})})
        if dist.is_main:
            # The baseline: the same architecture, seeded random initialisation, no training.
            random_model = build_model_for(method, dataset, train_cfg["seed"])
            save_encoder(out / "encoder_random.pt", **method.encoder_payload(random_model))
        result = run_pretraining(
            method, train_cfg, dataset, device=device, ckpt_dir=resume_dir, dist=dist,
            fingerprint=fingerprint,
            on_epoch_end=lambda s: run.log_curves(epoch_curves([s], "pretrain")))  # live, as it trains
        if dist.is_main:
            save_encoder(out / "encoder.pt", **result.encoder_payload)
            write_stats(reports / "stats.jsonl", result.history)
            final = result.history[-1]
            metrics = {
                "pretrain/loss_last": final["loss"],
                **{f"pretrain/{k.split('/', 1)[1]}_last": v for k, v in final.items() if k.startswith("loss/")},
                "pretrain/epochs": len(result.history),
                "pretrain/steps": len(result.history) * result.schedule.steps_per_epoch}
            write_json_atomic(reports / "metrics.json", metrics)
            run.log_curves(epoch_curves(result.history, "pretrain"))  # the epochs before a resume, if missing
            run.log_metrics({**metrics, "pretrain_samples_per_s": result.samples_per_s,  # None: no epoch ran
                             "pretrain_peak_memory_mb": result.peak_memory_mb})
            run.set_tags({"device": str(device), "device_name": _device_name(device), "host": socket.gethostname(),
                          "torch": torch.__version__})
            run.log_artifact(out / "encoder.pt", "encoder")
            speed = (f"{result.samples_per_s:.1f} samples/s" if result.samples_per_s is not None
                     else "no epoch left to train")
            log.info("pretraining done: %s, peak memory %.0f MB", speed, result.peak_memory_mb)
    if dist.is_main:
        # Every output is written (and logged): a completed run leaves no resume state behind.
        clear_checkpoint(resume_dir)
    barrier(dist)
    shutdown(dist)


def _precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    run_stage(main)
