"""DVC stage `transfer@<name>`: a protocol's pretrained encoder evaluated on another protocol's data.

transfer.<name> names the source protocol (whose encoder, models/<source>/encoder.pt, is
evaluated) and the target protocol (whose train half trains, whose test half tests). The skeleton
layouts of the two dataset files must agree (joints, bone tree, persons, channels): otherwise the
stage stops before loading any encoder, naming both layouts. Two evaluations on the target
(skelrep.evaluation.transfer):

- the linear probe on the frozen encoder's features, with the `features` and `linear` settings
  as the target protocol sees them (what linear@<target> runs on the target's own encoder):
  transfer/<target>/linear/{top1_last,top5_last,top1_best_on_test,best_epoch};
- fine-tuning encoder and head on every target training label with the `finetune` recipe:
  transfer/<target>/finetune/{top1_last,top5_last,top1_best_on_test,best_epoch}.

With finetune.random_init, both again from the source's random-init encoder (the same
architecture): transfer/random_init/<target>/..., i.e. the target's supervised training from
scratch. The metrics are logged into the source protocol's MLflow run (the encoder's
configuration). Writes <out>/metrics.json and <out>/history.jsonl (every evaluation's epochs, a
`run` column naming it); the fine-tune's resume state lives in models/.resume/transfer/<name>/
while it trains (not a DVC output).
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
import shutil
from pathlib import Path

from skelrep.config import run_identity
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.hdf5 import read_attrs
from skelrep.data.protocols import resolve_protocol
from skelrep.errors import ParamsError
from skelrep.evaluation.features import load_frozen_encoder
from skelrep.evaluation.finetune import (
    CURVES,
    ENCODER_FILES,
    Sequences,
    evaluation_clips,
    finetune,
    load_trainable_encoder,
    section_inputs,
    section_settings,
)
from skelrep.evaluation.sections import (
    FEATURES_SCHEMA,
    FINETUNE_TRAIN_KEYS,
    LINEAR_SCHEMA,
    validate_finetune,
    validate_transfer,
)
from skelrep.evaluation.transfer import check_layouts, linear_transfer
from skelrep.io import sha256_file, write_json_atomic, write_jsonl_atomic
from skelrep.methods import METHODS
from skelrep.params import load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.training.checkpoint import run_fingerprint
from skelrep.validation import validate_all

log = logging.getLogger("stages.transfer")


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--transfer", required=True, help="a key of params.yaml transfer")
    parser.add_argument("--source-data", required=True,
                        help="the source protocol's dataset file (data/processed/<dataset>.h5): its layout")
    parser.add_argument("--models", required=True,
                        help="the source's encoder.pt and encoder_random.pt (models/<source>)")
    parser.add_argument("--data", required=True,
                        help="the target protocol's dataset file (data/processed/<dataset>.h5)")
    parser.add_argument("--reports", required=True, help="reports folder to write (reports/finetune/transfer/<name>)")
    parser.add_argument("--resume-dir", default=None,
                        help="resume state of an interrupted run (default models/.resume/transfer/<name>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    runs = validate_transfer(params["transfer"])
    if args.transfer not in runs:
        raise ParamsError("transfer", f"has no entry {args.transfer!r} (it lists {', '.join(runs) or 'none'})")
    entry = runs[args.transfer]
    source, target = entry["source"], entry["target"]
    # the layouts first: a mismatch stops here, before any encoder is loaded
    check_layouts(args.source_data, args.data, f"transfer.{args.transfer}", source, target)
    spec = resolve_protocol(params, target)
    seen_by_target = protocol_params(params, target)  # the target's own features / linear settings
    features_cfg = validate(seen_by_target["features"], FEATURES_SCHEMA, "features")
    linear_cfg = validate(seen_by_target["linear"], LINEAR_SCHEMA, "linear")
    cfg = validate_finetune(params["finetune"])
    device = resolve_device(cfg["device"])
    seed_everything(cfg["seed"])
    out, models = Path(args.reports), Path(args.models)
    resume_root = Path(args.resume_dir or Path("models/.resume/transfer") / args.transfer)
    variants = {v: f for v, f in ENCODER_FILES.items() if v == "pretrained" or cfg["random_init"]}

    train = SkeletonH5Dataset(args.data, spec.split, "train")
    test = SkeletonH5Dataset(args.data, spec.split, "test")
    num_classes = int(read_attrs(args.data)["num_classes"])
    encoder = load_trainable_encoder(models / ENCODER_FILES["pretrained"])
    official = METHODS[encoder.method].downstream_crop
    inputs = section_inputs(cfg, official)
    sequences = Sequences.load(train, desc="target train split", progress=True)
    clips = evaluation_clips(test, inputs.test, encoder.frames, progress=True)
    settings = section_settings(cfg, inputs.train)
    base = {"data": read_attrs(args.data), "split": spec.split, "test_input": inputs.test.describe(),
            **{k: cfg[k] for k in FINETUNE_TRAIN_KEYS}}

    metrics: dict[str, float] = {}
    history: list[dict] = []
    with stage_run(run_identity(params, source), "transfer", background=True) as mlrun:
        # its own params (the finetune stage logs finetune.*): the source and the recipe it fine-tuned with
        mlrun.log_params({f"transfer.{target}.source": source,
                          f"transfer.{target}.finetune": {k: cfg[k] for k in FINETUNE_TRAIN_KEYS}})
        for variant, filename in variants.items():
            prefix = f"transfer/{target}" if variant == "pretrained" else f"transfer/{variant}/{target}"
            seed_everything(linear_cfg["seed"])
            probe = linear_transfer(load_frozen_encoder(models / filename, device), train, test,
                                    num_classes=num_classes, features_cfg=features_cfg, linear_cfg=linear_cfg,
                                    official=official, device=device)
            metrics.update({f"{prefix}/linear/top1_last": probe.top1_last,
                            f"{prefix}/linear/top5_last": probe.top5_last,
                            f"{prefix}/linear/top1_best_on_test": probe.top1_best_on_test,
                            f"{prefix}/linear/best_epoch": probe.best_epoch})
            history += [{"run": f"{prefix}/linear", **row} for row in probe.history]
            mlrun.log_curves(epoch_curves(probe.history, f"{prefix}/linear", CURVES, suffix="_curve"))
            ident = run_fingerprint({**base, "encoder": sha256_file(models / filename)})
            result = finetune(load_trainable_encoder(models / filename), sequences, range(len(train)), clips,
                              test.label, num_classes=num_classes, settings=settings, device=device,
                              ckpt_dir=resume_root / variant, fingerprint=ident, desc=f"{prefix}/finetune")
            log.info("%s: linear top-1 %.2f, fine-tune top-1 %.2f (%d epochs)", prefix, probe.top1_last,
                     result.top1_last, result.epochs)
            metrics.update(result.metrics(f"{prefix}/finetune"))
            history += [{"run": f"{prefix}/finetune", **row} for row in result.history]
            mlrun.log_curves(epoch_curves(result.history, f"{prefix}/finetune", CURVES, suffix="_curve"))
        write_jsonl_atomic(out / "history.jsonl", history)
        write_json_atomic(out / "metrics.json", metrics)
        mlrun.log_metrics(metrics)
    shutil.rmtree(resume_root, ignore_errors=True)  # every output is written: no resume state left


if __name__ == "__main__":
    run_stage(main)
