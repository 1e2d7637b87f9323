"""SHA-256 of what the data stages and the random-init baseline produce, on a small scale.

``tests/test_cross_cpu.py`` compares these digests with ``tests/cross_cpu_digests.json``
(recorded once) natively and in a subprocess whose numpy SIMD dispatch, OpenBLAS kernels and
ATen CPU capability are restricted to what an older or ARM CPU would run: the bytes must not
move. After an *intended* change of the generator, preprocessing or model initialisation,
re-record with ``python tests/cross_cpu_digests.py --update`` and say so in the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).with_name("cross_cpu_digests.json")
REPO = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_digests(root: Path) -> dict[str, str]:
    """Small synthetic NTU-60/NTU-120/PKU-MMD I archives and their processed HDF5 files."""
    from skelrep.data.download import ArchiveSpec, write_manifest
    from skelrep.data.preprocess import PreprocessConfig, preprocess_dataset
    from skelrep.data.synthetic import (
        SyntheticNTUConfig,
        SyntheticPKUConfig,
        write_ntu_archives,
        write_pku_archives,
    )

    ntu = SyntheticNTUConfig(performers=(1, 3), setups=(1, 2), classes=4, max_frames=80)
    ntu120 = SyntheticNTUConfig(performers=(45, 41), setups=(18, 19), classes=3, max_frames=80)
    pku = SyntheticPKUConfig(train_recordings=1, test_recordings=4, actions_per_video=13)
    written = {"ntu60": write_ntu_archives(root / "ntu60", "ntu60", ntu, seed=0, workers=1),
               "ntu120": write_ntu_archives(root / "ntu120", "ntu120", ntu120, seed=1, workers=1),
               "pku1": write_pku_archives(root / "pku1", 1, pku, seed=2)}
    out = {}
    for dataset, files in written.items():
        write_manifest(root / dataset, dataset, "synthetic", [ArchiveSpec(p.name, r, None) for p, r in files])
        for path, _ in files:
            out[f"raw/{dataset}/{path.name}"] = _sha(path.read_bytes())
    raw_dirs = {d: root / d for d in ("ntu60", "ntu120", "pku1", "pku2")}
    for dataset in ("ntu60", "ntu120", "pku1"):
        target = root / "processed" / f"{dataset}.h5"
        preprocess_dataset(dataset, raw_dirs, target, PreprocessConfig(workers=1))
        out[f"processed/{dataset}.h5"] = _sha(target.read_bytes())
    return out


def model_digests() -> dict[str, str]:
    """State dicts of each method's model as the pretrain stage initialises it (params.yaml)."""
    from types import SimpleNamespace

    from skelrep.data.layout import load_layout
    from skelrep.methods import get_method
    from skelrep.params import load_params
    from skelrep.training.pretrain import build_model_for

    params = load_params(REPO / "params.yaml")
    dataset = SimpleNamespace(sample_shape=(3, 64, 25, 2), layout=load_layout("ntu25"))
    out = {}
    for name in ("usdrl", "umurl", "isc"):
        model = build_model_for(get_method(name, params), dataset, seed=0)
        digest = hashlib.sha256()
        for key, tensor in model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().contiguous().numpy().tobytes())
        out[f"init/{name}"] = digest.hexdigest()
    return out


def all_digests() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        return {**data_digests(Path(tmp)), **model_digests()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help=f"re-record {GOLDEN.name}")
    args = parser.parse_args(argv)
    digests = all_digests()
    if args.update:
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    json.dump(digests, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
