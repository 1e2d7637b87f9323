"""DVC stage `finetune@<protocol>`: semi-supervised and full fine-tuning of the pretrained encoder.

The encoder (models/<protocol>/encoder.pt) and a new linear head are trained end to end
(skelrep.evaluation.finetune; the `finetune` section: the protocols it runs on, the recipe) on

- each label fraction of finetune.fractions, once per finetune.subset_seeds seed: a labelled
  subset of the train split drawn per class, seeded, the same for every method
  (skelrep.evaluation.subsets), run k training with seed finetune.seed + its subset seed;
  metrics semi/<f>pct/{top1_last,top1_best_on_test}_{mean,std}, top5_last_mean and labelled;
- every training label (finetune.full): finetune/{top1_last,top5_last,top1_best_on_test,best_epoch};

and evaluated on the whole test split. With finetune.random_init, every run again from the
random-init encoder (encoder_random.pt, same architecture): semi/random_init/..., and
finetune/random_init/..., supervised training from scratch. finetune.freeze_encoder trains the
head alone (the USDRL-style probe on x % labels): keys semi_probe/, finetune_probe/.

Writes <out>/metrics.json, <out>/subsets.json (every labelled subset: fraction, seed, labelled
count and the sample ids) and <out>/history.jsonl (every run's epochs, a `run` column naming it).
While it trains, each run's resume state lives in models/.resume/finetune/<protocol>/ (not a DVC
output; deleted once the outputs are written): an interrupted stage resumes the run it was in
and repeats none of those it finished.
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
from skelrep.evaluation.finetune import (
    CURVES,
    ENCODER_FILES,
    Sequences,
    evaluation_clips,
    finetune,
    load_trainable_encoder,
    mean_std,
    section_inputs,
    section_settings,
)
from skelrep.evaluation.sections import FINETUNE_TRAIN_KEYS, fraction_name, validate_finetune
from skelrep.evaluation.subsets import labelled_subset
from skelrep.io import sha256_file, write_json_atomic, write_jsonl_atomic
from skelrep.methods import METHODS
from skelrep.params import load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.training.checkpoint import run_fingerprint
from skelrep.validation import validate_all

log = logging.getLogger("stages.finetune")


def key(stage: str, variant: str, rest: str = "") -> str:
    """``<stage>/<rest>`` for the pretrained encoder, ``<stage>/random_init/<rest>`` for the baseline."""
    return "/".join(p for p in (stage, None if variant == "pretrained" else variant, rest) if p)


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml finetune.protocols")
    parser.add_argument("--data", required=True, help="the protocol's dataset file (data/processed/<dataset>.h5)")
    parser.add_argument("--models", required=True,
                        help="folder of encoder.pt and encoder_random.pt (models/<protocol>)")
    parser.add_argument("--reports", required=True, help="reports folder to write (reports/finetune/<protocol>)")
    parser.add_argument("--resume-dir", default=None,
                        help="resume state of an interrupted run (default models/.resume/finetune/<protocol>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    protocol = resolve_protocol(params, args.protocol)
    params = protocol_params(params, args.protocol)
    cfg = validate_finetune(params["finetune"])
    if args.protocol not in cfg["protocols"]:
        raise ParamsError("finetune.protocols", f"has no entry {args.protocol!r} (it lists "
                          f"{', '.join(cfg['protocols']) or 'none'})")
    device = resolve_device(cfg["device"])
    seed_everything(cfg["seed"])
    out, models = Path(args.reports), Path(args.models)
    resume_root = Path(args.resume_dir or Path("models/.resume/finetune") / args.protocol)
    variants = {v: f for v, f in ENCODER_FILES.items() if v == "pretrained" or cfg["random_init"]}
    suffix = "_probe" if cfg["freeze_encoder"] else ""

    train = SkeletonH5Dataset(args.data, protocol.split, "train")
    test = SkeletonH5Dataset(args.data, protocol.split, "test")
    num_classes = int(read_attrs(args.data)["num_classes"])
    encoder = load_trainable_encoder(models / ENCODER_FILES["pretrained"])
    inputs = section_inputs(cfg, METHODS[encoder.method].downstream_crop)  # auto: the method's own
    log.info("train input %s, test input %s", inputs.train.describe(), inputs.test.describe())
    sequences = Sequences.load(train, desc="train split", progress=True)
    clips = evaluation_clips(test, inputs.test, encoder.frames, progress=True)  # the same for both encoders
    base = {"data": read_attrs(args.data), "split": protocol.split, "test_input": inputs.test.describe(),
            **{k: cfg[k] for k in FINETUNE_TRAIN_KEYS}}

    # the runs: (metric stage, fraction name or None, subset seed, positions)
    runs: list[tuple[str, str | None, int, object]] = []
    subsets: dict[str, dict] = {}
    for fraction in cfg["fractions"]:
        name = fraction_name(fraction)
        for seed in cfg["subset_seeds"]:
            positions = labelled_subset(train.sample_name, train.label, fraction, seed)
            subsets[f"{name}/seed{seed}"] = {"fraction": fraction, "seed": seed, "labelled": len(positions),
                                             "of": len(train), "samples": train.sample_name[positions].tolist()}
            runs.append((f"semi{suffix}", name, seed, positions))
    if cfg["full"]:
        runs.append((f"finetune{suffix}", None, 0, list(range(len(train)))))

    metrics: dict[str, float] = {}
    history: list[dict] = []
    with stage_run(run_identity(params, args.protocol), "finetune", background=True) as mlrun:
        mlrun.log_params({f"finetune.{k}": v for k, v in cfg.items() if k != "protocols"})
        for variant, filename in variants.items():
            encoder_hash = sha256_file(models / filename)
            per_fraction: dict[str, list] = {}
            for stage, fraction, seed, positions in runs:
                run_name = key(stage, variant, f"{fraction}/seed{seed}" if fraction else "")  # history, curves
                settings = section_settings(cfg, inputs.train, seed=cfg["seed"] + seed)
                ident = run_fingerprint({**base, "encoder": encoder_hash, "positions": [int(p) for p in positions],
                                         "run_seed": settings.seed})
                result = finetune(load_trainable_encoder(models / filename), sequences, positions, clips, test.label,
                                  num_classes=num_classes, settings=settings, device=device,
                                  ckpt_dir=resume_root / run_name.replace("/", "_"), fingerprint=ident,
                                  desc=run_name)
                log.info("%s: %d labelled, %d epochs (%d steps), top-1 %.2f (best-on-test %.2f, epoch %d)",
                         run_name, result.labelled, result.epochs, result.steps, result.top1_last,
                         result.top1_best_on_test, result.best_epoch)
                history += [{"run": run_name, **row} for row in result.history]
                mlrun.log_curves(epoch_curves(result.history, run_name, CURVES, suffix="_curve"))
                if fraction is None:
                    metrics.update(result.metrics(run_name))
                else:
                    per_fraction.setdefault(fraction, []).append(result)
            for fraction, results in per_fraction.items():
                metrics.update(mean_std(results, key(f"semi{suffix}", variant, fraction)))
        write_json_atomic(out / "subsets.json", subsets)
        write_jsonl_atomic(out / "history.jsonl", history)
        write_json_atomic(out / "metrics.json", metrics)
        mlrun.log_metrics(metrics)
        mlrun.log_artifact(out / "subsets.json", "finetune")
    shutil.rmtree(resume_root, ignore_errors=True)  # every output is written: no resume state left


if __name__ == "__main__":
    run_stage(main)
