"""Top-k accuracy (linear probe, late-fusion rows of ``skelrep compare``) and the array conversion KNN shares."""

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
