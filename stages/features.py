"""DVC stage `features@<protocol>`: frozen-encoder features of the train and test splits.

For the pretrained encoder and for the random-init baseline (same architecture), written to
data/features/<protocol>/{pretrained,random_init}.npz (train_x, train_y, test_x, test_y).
"""

from __future__ import annotations

from pathlib import Path

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.protocols import resolve_protocol
from skelrep.evaluation.features import extract_features, load_frozen_encoder, save_feature_file
from skelrep.evaluation.sections import FEATURES_SCHEMA
from skelrep.methods import METHODS
from skelrep.params import get_section, load_params
from skelrep.runtime import resolve_device, run_stage, seed_everything, setup_logging, stage_parser
from skelrep.schema import validate
from skelrep.validation import validate_all

ENCODERS = {"pretrained": "encoder.pt", "random_init": "encoder_random.pt"}


def main(argv=None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, help="a key of params.yaml protocols")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    resolve_protocol(params, args.protocol)
    cfg = validate(get_section(params, "features"), FEATURES_SCHEMA, "features")
    device = resolve_device(cfg["device"])
    seed_everything(0)
    data = Path(f"data/processed/{args.protocol}.h5")
    splits = {s: SkeletonH5Dataset(data, s) for s in ("train", "test")}
    for variant, filename in ENCODERS.items():
        encoder = load_frozen_encoder(Path("models") / args.protocol / filename, device)
        # auto: the method's official downstream input (whole sequence; ISC: centre 95 %)
        crop, ratio = (METHODS[encoder.method].downstream_crop if cfg["crop"] == "auto"
                       else (cfg["crop"], cfg["ratio"]))
        arrays = {}
        for split, ds in splits.items():
            arrays[f"{split}_x"] = extract_features(encoder, ds, crop=crop, ratio=ratio,
                                                    batch_size=cfg["batch_size"], device=device,
                                                    desc=f"{variant} {split}")
            arrays[f"{split}_y"] = ds.label
        save_feature_file(Path("data/features") / args.protocol / f"{variant}.npz", **arrays)


if __name__ == "__main__":
    run_stage(main)
