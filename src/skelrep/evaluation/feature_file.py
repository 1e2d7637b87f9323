"""The cached feature file of a protocol: everything the linear probe and KNN read.

``data/features/<protocol>/<variant>.npz`` holds, per subset (train, test), the frozen-encoder
features ``<subset>_x`` (N, D) float32 on the test input (``features.test_crop``), the labels
``<subset>_y`` (N,) int64 and the sample names ``<subset>_ids``; and the classifier width
``num_classes`` and ``class_names`` (empty when the dataset has integer labels only). So the
evaluation stages read one file and import no model code (numpy only).

When the linear probe's train input differs from the test input (``features.train_crop``), the
file also holds ``train_x_crops`` (K, N, D) float32, the train split on K train crops (K = 1 for
a deterministic crop, ``features.random_crops`` for random ones), and ``train_crop_windows``
(K, N, 2) int64, each crop's [start, length] in frames of the valid sequence. The probe trains
on ``train_x_crops`` (crop ``(epoch - 1) % K`` in each epoch); ``train_x`` stays the test-style
input of the train split, KNN's gallery. Without them (train input = test input, e.g. USDRL's
and UmURL's whole sequence) the probe trains on ``train_x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import write_npz_atomic

SUBSETS = ("train", "test")
_KEYS = tuple(f"{s}_{k}" for s in SUBSETS for k in ("x", "y", "ids")) + ("num_classes", "class_names")
CROP_KEYS = ("train_x_crops", "train_crop_windows")  # optional, together


def save_feature_file(path: str | Path, *, features: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                      ids: dict[str, Sequence[str]], num_classes: int,
                      class_names: Sequence[str] | None = None, train_crops: np.ndarray | None = None,
                      train_crop_windows: np.ndarray | None = None) -> None:
    """Write the file; ``train_crops`` (K, N, D) and ``train_crop_windows`` (K, N, 2) only
    together, for the train split's N samples."""
    arrays: dict[str, np.ndarray] = {}
    for subset in SUBSETS:
        x, y, names = features[subset], np.asarray(labels[subset], np.int64), np.asarray(ids[subset], dtype=str)
        if not len(x) == len(y) == len(names):
            raise ValueError(f"{subset}: {len(x)} features, {len(y)} labels, {len(names)} ids")
        arrays.update({f"{subset}_x": np.asarray(x, np.float32), f"{subset}_y": y, f"{subset}_ids": names})
    arrays["num_classes"] = np.int64(num_classes)
    arrays["class_names"] = np.asarray(list(class_names or ()), dtype=str)
    if (train_crops is None) != (train_crop_windows is None):
        raise ValueError("train_crops and train_crop_windows go together")
    if train_crops is not None:
        crops, windows = np.asarray(train_crops, np.float32), np.asarray(train_crop_windows, np.int64)
        n, d = arrays["train_x"].shape
        if crops.ndim != 3 or crops.shape[1:] != (n, d) or windows.shape != (crops.shape[0], n, 2):
            raise ValueError(f"train_crops {crops.shape} / windows {windows.shape}: expected (K, {n}, {d}) / "
                             f"(K, {n}, 2)")
        arrays.update(train_x_crops=crops, train_crop_windows=windows)
    write_npz_atomic(path, **arrays)


def load_feature_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a feature file (``num_classes`` as an int; ``train_x_crops`` and
    ``train_crop_windows`` only when written); DataError naming what is missing."""
    try:
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DataError(str(path), f"is not a readable feature file ({exc})") from None
    missing = [k for k in _KEYS if k not in out]
    if missing:
        raise DataError(str(path), f"lacks {', '.join(missing)} (written by an older features stage? "
                        "re-run it: dvc repro -f features@<protocol>)")
    if sum(k in out for k in CROP_KEYS) == 1:
        raise DataError(str(path), f"holds one of {' and '.join(CROP_KEYS)} without the other")
    out["num_classes"] = int(out["num_classes"])
    return out


def label_names(labels: Sequence[int], names: Sequence[str] | None) -> list[str]:
    """Display names of 0-based ``labels`` (a feature file's ``class_names``): the name when
    known, else the label id."""
    return [str(names[k]) if names is not None and 0 <= k < len(names) else str(k) for k in map(int, labels)]
