"""VOC-style temporal mAP_a, as in SSD's ``evaluate_metrics`` (Simple-Skeleton-Detection).

Segments are compared as 0-based inclusive frames [s, e]: a proposal [u, v) becomes
[u, v-1]; ground-truth rows go through the boundary convention. tIoU uses the +1 frame
convention. Each ground truth is matched at most once (VOC); AP is the all-point interpolated
area under the non-increasing precision envelope. Values are fractions in [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from skelrep.evaluation.detection.proposal_io import file_to_inclusive
from skelrep.evaluation.detection.proposals import Proposal

log = logging.getLogger(__name__)


def tiou_inclusive(start: int, end: int, gt_start: np.ndarray, gt_end: np.ndarray) -> np.ndarray:
    """tIoU of one inclusive segment [start, end] with each inclusive GT segment (+1 convention)."""
    inter = np.maximum(0, np.minimum(end, gt_end) - np.maximum(start, gt_start) + 1)
    union = (end - start + 1) + (gt_end - gt_start + 1) - inter
    return inter / union


def voc_average_precision(is_tp: Sequence[bool], num_gt: int) -> float:
    """All-point interpolated AP of detections already ranked by decreasing confidence.

    Recall is padded with 0 and 1 and precision with 0 at both ends; the precision envelope is
    made non-increasing from the right and summed over recall increments.
    """
    if num_gt <= 0:
        raise ValueError("AP is undefined for a class without ground truth")
    tp = np.asarray(is_tp, dtype=np.float64)
    cum_tp = np.cumsum(tp)
    recall = np.concatenate([[0.0], cum_tp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], cum_tp / np.arange(1, tp.size + 1), [0.0]])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))


def _check_label(label: int, num_classes: int, what: str) -> int:
    if not 1 <= label < num_classes:
        raise ValueError(f"{what} label {label} outside the action classes 1..{num_classes - 1}")
    return label


def class_average_precision(
    dets: Sequence[tuple[str, Proposal]],
    gt_inclusive: Mapping[str, tuple[np.ndarray, np.ndarray]],
    tiou: float,
) -> float:
    """AP of one class from its (video, proposal) list and its GT.

    ``gt_inclusive[video]`` holds the class's inclusive (starts, ends) in that video. Equal
    confidences keep the order of ``dets`` (stable sort).
    """
    num_gt = sum(len(s) for s, _ in gt_inclusive.values())
    order = np.argsort([-p.score for _, p in dets], kind="stable")
    matched = {video: np.zeros(len(s), dtype=bool) for video, (s, _) in gt_inclusive.items()}
    is_tp = []
    for i in order:
        video, p = dets[i]
        starts, ends = gt_inclusive.get(video, (np.zeros(0), np.zeros(0)))
        hit = False
        if len(starts):
            ious = tiou_inclusive(p.start, p.end - 1, starts, ends)
            j = int(np.argmax(ious))  # highest tIoU; ties → first GT row
            if ious[j] >= tiou and not matched[video][j]:
                matched[video][j] = hit = True
        is_tp.append(hit)
    return voc_average_precision(is_tp, num_gt)


def voc_map(
    proposals_by_video: Mapping[str, Sequence[Proposal]],
    gt_by_video: Mapping[str, np.ndarray],
    tiou: float,
    convention: str,
    num_classes: int = 52,
) -> dict:
    """mAP_a at one tIoU over action classes 1..num_classes-1 that have ground truth.

    ``gt_by_video[video]`` is the raw (n, 4) ``label, start, end, conf`` array in the file
    convention. Proposals are internal [u, v). Returns ``{"mAP", "per_class", "classes_without_gt"}``;
    classes without GT are excluded from the mean (and from ``per_class``) and logged.
    A proposal in a video without GT is a false positive.
    """
    if not 0.0 < tiou <= 1.0:
        raise ValueError(f"tIoU threshold must be in (0, 1], got {tiou}")
    dets_by_class: dict[int, list[tuple[str, Proposal]]] = {}
    for video in sorted(proposals_by_video):
        for p in proposals_by_video[video]:
            dets_by_class.setdefault(_check_label(int(p.label), num_classes, "proposal"), []).append((video, p))

    per_class_gt: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for video, rows in gt_by_video.items():
        rows = np.asarray(rows).reshape(-1, 4)
        labels = rows[:, 0].astype(np.int64)
        starts, ends = file_to_inclusive(rows[:, 1], rows[:, 2], convention)
        for label in np.unique(labels):
            mask = labels == label
            by_video = per_class_gt.setdefault(_check_label(int(label), num_classes, "ground-truth"), {})
            by_video[video] = (starts[mask], ends[mask])

    per_class = {
        c: class_average_precision(dets_by_class.get(c, []), per_class_gt[c], tiou)
        for c in range(1, num_classes)
        if c in per_class_gt
    }
    without_gt = [c for c in range(1, num_classes) if c not in per_class_gt]
    if without_gt:
        log.info("VOC mAP: %d classes without ground truth excluded: %s", len(without_gt), without_gt)
    mean = float(np.mean(list(per_class.values()))) if per_class else 0.0
    return {"mAP": mean, "per_class": per_class, "classes_without_gt": without_gt}
