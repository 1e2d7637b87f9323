"""Classification metrics shared by the linear probe, KNN and semi-supervised protocols."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def topk_accuracy(scores: ArrayLike, labels: ArrayLike, k: int = 1) -> float:
    """Percentage of rows whose label is among the k highest scores.

    Ties between equal scores go to the lower class index (stable sort), so the result is
    deterministic even for constant scores.
    """
    s = to_numpy(scores)
    y = to_numpy(labels).astype(np.int64).reshape(-1)
    if s.ndim != 2 or s.shape[0] != y.shape[0]:
        raise ValueError(f"scores must be (N, C) with N = len(labels); got {s.shape} and {y.shape}")
    if s.shape[0] == 0:
        raise ValueError("topk_accuracy of an empty set is undefined")
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in 1..{s.shape[1]}, got {k}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = (top == y[:, None]).any(axis=1)
    return float(100.0 * hits.mean())


def confusion_matrix(pred: ArrayLike, labels: ArrayLike, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are true labels, columns predictions."""
    p = to_numpy(pred).astype(np.int64).reshape(-1)
    y = to_numpy(labels).astype(np.int64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"pred and labels differ in length: {p.shape} vs {y.shape}")
    for name, v in (("pred", p), ("labels", y)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}")
    flat = np.bincount(y * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)
