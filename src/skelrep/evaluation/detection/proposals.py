"""Action proposals from per-frame class probabilities: ``ssd`` (smoothed activity runs) and ``thr``
(per-class probability runs, no NMS).

Segments are 0-based half-open frame ranges [start, end). Column 0 of the probability array
is background; columns 1..C-1 are the actions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Proposal(NamedTuple):
    """One detected segment: frames [start, end) (0-based, half-open), class ``label`` >= 1."""

    label: int
    start: int
    end: int
    score: float


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.size == 0:
        return np.zeros((0, 2))
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (T, C) with C >= 2 (background + actions); got {p.shape}")
    return p


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as half-open (start, end) pairs, in order."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2], strict=True)]


def mean_filter(probs: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the inclusive window [t-r, t+r] clipped to the video (divides by its true length)."""
    t_len = probs.shape[0]
    csum = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
    t = np.arange(t_len)
    lo = np.maximum(t - radius, 0)
    hi = np.minimum(t + radius + 1, t_len)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def proposals_ssd(probs, smooth_radius: int = 10, activity_thr: float = 0.4) -> list[Proposal]:
    """P-SSD: smooth, threshold the activity 1 - P~[t, 0], label each run by its best mean class.

    The class is argmax over c >= 1 of mean P~[run, c] (ties → lowest class), and the
    confidence is that mean.
    """
    p = _check_probs(probs)
    if p.shape[0] == 0:
        return []
    smooth = mean_filter(p, smooth_radius)
    activity = 1.0 - smooth[:, 0]
    out = []
    for start, end in true_runs(activity >= activity_thr):
        class_means = smooth[start:end, 1:].mean(axis=0)
        best = int(np.argmax(class_means))
        out.append(Proposal(best + 1, start, end, float(class_means[best])))
    return out


def proposals_thr(probs, class_prob_thr: float = 0.02) -> list[Proposal]:
    """P-THR: per class c >= 1, every maximal run with P[t, c] > thr; confidence = mean P over it.

    No smoothing and no NMS, so runs of different classes may overlap. Ordered by class, then start.
    """
    p = _check_probs(probs)
    out = []
    for c in range(1, p.shape[1]):
        for start, end in true_runs(p[:, c] > class_prob_thr):
            out.append(Proposal(c, start, end, float(p[start:end, c].mean())))
    return out
