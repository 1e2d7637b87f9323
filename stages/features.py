"""DVC stage `features@<protocol>`: frozen-encoder features of the protocol's train and test samples.

For the pretrained encoder and for the random-init baseline (same architecture), written to
<out>/{pretrained,random_init}.npz: the features, labels and sample names of both subsets, the
class count and class names (skelrep.data.class_names; skelrep.evaluation.features: linear and
KNN need nothing else).
Both subsets are encoded with the test input (features.test_crop); when the linear probe's train
input (features.train_crop) differs, the train subset again with it: K = features.random_crops
seeded random crops per sample (or 1 deterministic crop), as train_x_crops. `auto` is the
method's official input (MethodInfo.downstream_crop). Also <out>/handcrafted.npz, the
hand-crafted baseline in the same format: the normalised joint coordinates (whole sequence)
resampled to features.handcrafted_frames frames and flattened (skelrep.evaluation.handcrafted; no
encoder, so whatever the method).
"""

from __future__ import annotations

from skelrep.stage_server import run_warm

if __name__ == "__main__":  # run in a child of the warm parent (its imports done) when one answers
    run_warm()

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from skelrep.data.class_names import dataset_class_names
from skelrep.data.dataset import MEMO_MB, SkeletonH5Dataset
from skelrep.data.hdf5 import SUBSETS, read_attrs
from skelrep.data.protocols import resolve_protocol
from skelrep.evaluation.feature_file import save_feature_file
from skelrep.evaluation.features import (
    crop_windows,
    downstream_inputs,
    extract_features,
    extract_window_features,
    load_frozen_encoder,
)
from skelrep.evaluation.handcrafted import VARIANT as HANDCRAFTED
from skelrep.evaluation.handcrafted import extract_handcrafted
from skelrep.evaluation.sections import FEATURES_SCHEMA
from skelrep.methods import METHODS
from skelrep.params import get_section, load_params
from skelrep.recipes import protocol_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.validation import validate_all

ENCODERS = {"pretrained": "encoder.pt", "random_init": "encoder_random.pt"}
log = logging.getLogger("stages.features")


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    parser.add_argument("--data", required=True, help="the protocol's dataset file (data/processed/<dataset>.h5)")
    parser.add_argument("--models", required=True,
                        help="folder of encoder.pt and encoder_random.pt (models/<protocol>)")
    parser.add_argument("--out", required=True, help="feature folder to write (data/features/<protocol>)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    protocol = resolve_protocol(params, args.protocol)
    params = protocol_params(params, args.protocol)  # the protocol's own settings applied
    cfg = validate(get_section(params, "features"), FEATURES_SCHEMA, "features")
    device = resolve_device(cfg["device"])
    seed_everything(0)
    # read three times (each encoder, the hand-crafted baseline): kept in memory after the first
    subsets = {s: SkeletonH5Dataset(args.data, protocol.split, s, memo_mb=MEMO_MB) for s in SUBSETS}
    labels, ids = {s: ds.label for s, ds in subsets.items()}, {s: ds.sample_name for s, ds in subsets.items()}
    source = get_section(params, f"data.{protocol.dataset}").get("source")
    num_classes, names = int(read_attrs(args.data)["num_classes"]), dataset_class_names(args.data, source)
    for variant, filename in ENCODERS.items():
        encoder = load_frozen_encoder(Path(args.models) / filename, device)
        inputs = downstream_inputs(cfg, METHODS[encoder.method].downstream_crop)  # auto: the method's own
        test_in = inputs.test
        t0 = time.perf_counter()
        features = {subset: extract_features(encoder, ds, crop=test_in.crop, ratio=test_in.ratio,
                                             batch_size=cfg["batch_size"], device=device, desc=f"{variant} {subset}")
                    for subset, ds in subsets.items()}
        one_pass = time.perf_counter() - t0
        crops = windows = None
        if inputs.train != test_in:  # the probe trains on other inputs than it tests on
            count = 1 if inputs.train.deterministic else cfg["random_crops"]
            # the same windows for both encoders (the generator is re-seeded)
            starts, lengths = crop_windows(inputs.train, subsets["train"].num_frame, count, cfg["seed"])
            t0 = time.perf_counter()
            crops = extract_window_features(encoder, subsets["train"], starts, lengths, batch_size=cfg["batch_size"],
                                            device=device, desc=f"{variant} train crops")
            windows = np.stack([starts, lengths], axis=-1)
            log.info("%s: train input %s, K = %d crops of the %d train samples cached in %.2f s (%d encoder "
                     "forwards of the train split; train + test on the test input %s: %.2f s)", variant,
                     inputs.train.describe(), count, len(subsets["train"]), time.perf_counter() - t0, count,
                     test_in.describe(), one_pass)
        else:
            log.info("%s: train and test input %s", variant, test_in.describe())
        save_feature_file(Path(args.out) / f"{variant}.npz", features=features, labels=labels, ids=ids,
                          num_classes=num_classes, class_names=names, train_crops=crops, train_crop_windows=windows)
    # the hand-crafted baseline: no encoder, the same input resampling (whole sequence), on the CPU
    features = {subset: extract_handcrafted(ds, cfg["handcrafted_frames"], batch_size=cfg["batch_size"])
                for subset, ds in subsets.items()}
    save_feature_file(Path(args.out) / f"{HANDCRAFTED}.npz", features=features, labels=labels, ids=ids,
                      num_classes=num_classes, class_names=names)


if __name__ == "__main__":
    run_stage(main)
