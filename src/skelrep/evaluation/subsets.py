"""Labelled subsets of a training split for the semi-supervised protocol: per class, seeded, stable.

A subset is a function of the train split's sample ids and labels, the label fraction and a seed,
and of nothing else (not the method, the file order or a library's random stream), so every
method is fine-tuned on the same labelled samples and the subset is the same on any machine and
any numpy/torch version:

- **Order.** Each class's samples are ranked by ``sha256("<seed>:<sample id>")``: a seeded
  shuffle that depends on the ids only.
- **Counts.** Class ``c`` with ``n_c`` samples has the quota ``q_c = fraction * n_c``. Every class
  with samples gets ``max(1, floor(q_c))`` (at least one labelled member each); the remaining
  labels, up to ``round(fraction * N)`` in all, go one each to the classes with the largest
  remainders ``q_c - floor(q_c)`` (ties in a seeded order of the class ids), never above
  ``n_c``. So the labelled total is ``round(fraction * N)`` (the field's uniform draws take
  ``int(fraction * N)``), split over the classes in proportion to their size (largest-remainder
  apportionment), unless one per class is more: 1 % of NTU-60 xsub's 40,320 training samples is
  403 labels, 6 or 7 per class; on a 720-sample synthetic split it is 60, one per class, and
  10 % is 72.
- **Subset.** The first ``k_c`` samples of each class in that order, returned as positions in
  the split in ascending order. A larger fraction of the same seed takes the first ``k_c`` of
  the same orders, so the subsets of one seed are nested wherever a class's count grows.

The fine-tune stage writes each subset's sample ids to its outputs (``subsets.json``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np


def _rank_key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()


def class_counts(labels: Sequence[int] | np.ndarray, fraction: float, seed: int) -> dict[int, int]:
    """``{class: labelled count}`` for every class present in ``labels`` (see the module doc)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    classes, sizes = np.unique(labels, return_counts=True)
    quota = {int(c): fraction * int(n) for c, n in zip(classes, sizes, strict=True)}
    size = {int(c): int(n) for c, n in zip(classes, sizes, strict=True)}
    counts = {c: min(size[c], max(1, math.floor(q))) for c, q in quota.items()}
    target = max(sum(counts.values()), math.floor(fraction * len(labels) + 0.5))
    # the rest by largest remainder; ties in a seeded order of the class ids
    order = sorted((c for c in counts if counts[c] < size[c]),
                   key=lambda c: (-(quota[c] - math.floor(quota[c])), _rank_key(seed, f"class {c}")))
    for c in order[: target - sum(counts.values())]:
        counts[c] += 1
    return counts


def labelled_subset(sample_ids: Sequence[str], labels: Sequence[int] | np.ndarray, fraction: float,
                    seed: int) -> np.ndarray:
    """Positions (ascending, int64) of the labelled subset of a split's ``sample_ids`` / ``labels``.

    ``fraction`` 1.0 returns every position. Sample ids must be unique (they name the subset in
    the outputs).
    """
    ids = [str(s) for s in sample_ids]
    labels = np.asarray(labels, dtype=np.int64)
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} sample ids but {len(labels)} labels")
    if len(set(ids)) != len(ids):
        raise ValueError("sample ids must be unique")
    if not ids:
        return np.zeros(0, dtype=np.int64)
    counts = class_counts(labels, fraction, seed)
    chosen: list[int] = []
    for c, k in counts.items():
        members = np.flatnonzero(labels == c)
        ranked = sorted(members.tolist(), key=lambda i: _rank_key(seed, ids[i]))
        chosen += ranked[:k]
    return np.array(sorted(chosen), dtype=np.int64)
