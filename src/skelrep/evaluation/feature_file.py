"""The cached feature file of a protocol: everything the linear probe and KNN read.

``data/features/<protocol>/<variant>.npz`` holds, per subset (train, test), the frozen-encoder
features ``<subset>_x`` (N, D) float32, the labels ``<subset>_y`` (N,) int64 and the sample
names ``<subset>_ids``; and the classifier width ``num_classes`` and ``class_names`` (empty when
the dataset has integer labels only). So the evaluation stages read one file and import no model
code (numpy only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import write_npz_atomic

SUBSETS = ("train", "test")
_KEYS = tuple(f"{s}_{k}" for s in SUBSETS for k in ("x", "y", "ids")) + ("num_classes", "class_names")


def save_feature_file(path: str | Path, *, features: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                      ids: dict[str, Sequence[str]], num_classes: int,
                      class_names: Sequence[str] | None = None) -> None:
    arrays: dict[str, np.ndarray] = {}
    for subset in SUBSETS:
        x, y, names = features[subset], np.asarray(labels[subset], np.int64), np.asarray(ids[subset], dtype=str)
        if not len(x) == len(y) == len(names):
            raise ValueError(f"{subset}: {len(x)} features, {len(y)} labels, {len(names)} ids")
        arrays.update({f"{subset}_x": np.asarray(x, np.float32), f"{subset}_y": y, f"{subset}_ids": names})
    arrays["num_classes"] = np.int64(num_classes)
    arrays["class_names"] = np.asarray(list(class_names or ()), dtype=str)
    write_npz_atomic(path, **arrays)


def load_feature_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a feature file (``num_classes`` as an int); DataError naming what is missing."""
    try:
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DataError(str(path), f"is not a readable feature file ({exc})") from None
    missing = [k for k in _KEYS if k not in out]
    if missing:
        raise DataError(str(path), f"lacks {', '.join(missing)} (written by an older features stage? "
                        "re-run it: dvc repro -f features@<protocol>)")
    out["num_classes"] = int(out["num_classes"])
    return out
