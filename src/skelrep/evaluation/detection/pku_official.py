"""PKU-MMD official detection metrics (mAP_action, mAP_video, pooled AP), re-implemented from ``evaluate.py``.

Semantics follow the official Python 2 script (ECHO960/PKU-MMD, latest ``evaluate.py``):

- overlap uses raw file start/end values (no +1) and is 0 unless video and label agree;
- every proposal is assigned to the GT with the largest overlap >= theta (several proposals may
  share one GT; equal overlaps go to the later GT in list order, as the official ``<`` test does);
- proposals are sorted by confidence ascending (stable) and removed one at a time; AP
  accumulates ``best_precision * (previous_recall - recall)`` at each removal of an assigned one.

All functions take flat lists in the FILE boundary convention:
proposals ``(video, label, start, end, score)`` and ground truth ``(video, label, start, end)``
(extra trailing fields are ignored). Values are fractions in [0, 1]; ``evaluate_detection``
converts to % and adds the VOC-style mAP_a of ``voc.py``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from skelrep.evaluation.detection.proposal_io import CONFIDENCE_FORMAT, check_convention, to_file_rows
from skelrep.evaluation.detection.proposals import Proposal
from skelrep.evaluation.detection.voc import voc_map

log = logging.getLogger(__name__)


class OfficialProposal(NamedTuple):
    video: str
    label: int
    start: float
    end: float
    score: float


class OfficialGT(NamedTuple):
    video: str
    label: int
    start: float
    end: float


def official_overlap(p: Sequence, g: Sequence) -> float:
    """(min(e_p, e_g) - max(s_p, s_g)) / (max(e_p, e_g) - min(s_p, s_g)) for same video and label, else 0.

    Disjoint segments give a value <= 0. Two identical zero-length segments (0/0, a crash in
    the official script) give 0.
    """
    if p[0] != g[0] or int(p[1]) != int(g[1]):
        return 0.0
    s_p, e_p, s_g, e_g = float(p[2]), float(p[3]), float(g[2]), float(g[3])
    span = max(e_p, e_g) - min(s_p, s_g)
    if span == 0:
        return 0.0
    return (min(e_p, e_g) - max(s_p, s_g)) / span


def official_match(
    proposals: Sequence[Sequence], gts: Sequence[Sequence], theta: float
) -> tuple[list[int], list[int], int]:
    """Official ``match``: (GT index or -1 per proposal, proposals per GT, number of GTs hit)."""
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for j, g in enumerate(gts):
        by_key[(g[0], int(g[1]))].append(j)
    assignment = []
    counts = [0] * len(gts)
    for p in proposals:
        best_j, best_ov = -1, -np.inf
        # Only GTs of the same video and label can reach theta > 0; ">=" keeps the later GT on ties.
        for j in by_key.get((p[0], int(p[1])), ()):
            ov = official_overlap(p, gts[j])
            if ov >= theta and ov >= best_ov:
                best_j, best_ov = j, ov
        assignment.append(best_j)
        if best_j >= 0:
            counts[best_j] += 1
    return assignment, counts, sum(c > 0 for c in counts)


def _precision_recall(positive: int, num_proposals: int, num_gt: int) -> tuple[float, float]:
    if num_proposals == 0 or num_gt == 0:
        return 0.0, 0.0
    return positive / num_proposals, positive / num_gt


def official_ap(proposals: Sequence[Sequence], gts: Sequence[Sequence], theta: float = 0.5) -> float:
    """Official interpolated AP of one proposal list against one GT list (0 if either is empty)."""
    if not theta > 0:
        raise ValueError(f"theta must be > 0, got {theta}")
    ranked = sorted(proposals, key=lambda p: float(p[4]))  # ascending, stable
    assignment, counts, positive = official_match(ranked, gts, theta)
    remaining = len(ranked)
    best, prev_recall = _precision_recall(positive, remaining, len(gts))
    ap = 0.0
    for j in assignment:
        remaining -= 1
        if j == -1:
            continue
        counts[j] -= 1
        if counts[j] == 0:
            positive -= 1
        precision, recall = _precision_recall(positive, remaining, len(gts))
        best = max(best, precision)
        ap += best * (prev_recall - recall)
        prev_recall = recall
    return ap


def map_action(
    proposals: Sequence[Sequence], gts: Sequence[Sequence], theta: float = 0.5, num_classes: int = 52
) -> float:
    """mAP_action: mean over ALL action classes 1..num_classes-1 of the class-pooled AP.

    As in the official script (which divides by 51), a class without GT in the test set
    contributes AP 0 rather than being skipped; such classes are logged. On the PKU-MMD I
    cross-subject test split every class has GT, so the choice only matters for subsets.
    """
    props_by_class: dict[int, list] = defaultdict(list)
    gts_by_class: dict[int, list] = defaultdict(list)
    for p in proposals:
        props_by_class[int(p[1])].append(p)
    for g in gts:
        gts_by_class[int(g[1])].append(g)
    classes = range(1, num_classes)
    without_gt = [c for c in classes if not gts_by_class[c]]
    if without_gt:
        log.info("mAP_action: %d classes without ground truth count as AP 0: %s", len(without_gt), without_gt)
    return float(np.mean([official_ap(props_by_class[c], gts_by_class[c], theta) for c in classes]))


def map_video(
    proposals: Sequence[Sequence], gts: Sequence[Sequence], theta: float = 0.5, videos: Iterable[str] = ()
) -> float:
    """mAP_video: mean over videos of the AP of each video's proposals (all classes) vs its GT.

    The videos are those named in ``proposals``, ``gts`` or ``videos`` (the official script
    averages over the proposal files, one per test video); a video lacking GT or proposals scores 0.
    """
    props_by_video: dict[str, list] = defaultdict(list)
    gts_by_video: dict[str, list] = defaultdict(list)
    for p in proposals:
        props_by_video[p[0]].append(p)
    for g in gts:
        gts_by_video[g[0]].append(g)
    names = sorted(set(props_by_video) | set(gts_by_video) | set(videos))
    if not names:
        return 0.0
    return float(np.mean([official_ap(props_by_video[v], gts_by_video[v], theta) for v in names]))


def pooled_ap(proposals: Sequence[Sequence], gts: Sequence[Sequence], theta: float = 0.5) -> float:
    """The official overall AP: every proposal against every GT.

    Lists are first ordered by label (stable), like the official class-by-class concatenation,
    because the order of equal-confidence proposals can change the AP.
    """
    by_label = lambda x: int(x[1])  # noqa: E731
    return official_ap(sorted(proposals, key=by_label), sorted(gts, key=by_label), theta)


def ap_2d(proposals: Sequence[Sequence], gts: Sequence[Sequence]) -> float:
    """2D-AP: pooled AP averaged over theta = 0.05, 0.10, ..., 1.00 (20 values, as computed officially)."""
    return float(np.mean([pooled_ap(proposals, gts, (i + 1) * 0.05) for i in range(20)]))


def official_rows(
    proposals_by_video: Mapping[str, Sequence[Proposal]], gt_by_video: Mapping[str, np.ndarray], convention: str
) -> tuple[list[OfficialProposal], list[OfficialGT]]:
    """Flat official lists (videos in sorted order, lines in file order) in the file convention."""
    props = [
        OfficialProposal(video, label, float(start), float(end), score)
        for video in sorted(proposals_by_video)
        for label, start, end, score in to_file_rows(proposals_by_video[video], convention)
    ]
    gts = [
        OfficialGT(video, int(row[0]), float(row[1]), float(row[2]))
        for video in sorted(gt_by_video)
        for row in np.asarray(gt_by_video[video]).reshape(-1, 4)
    ]
    return props, gts


def _as_written(proposals: Sequence[Proposal]) -> list[Proposal]:
    """Round confidences exactly as the proposal files store them, so metrics computed here equal
    metrics recomputed from the files (ties in confidence included)."""
    return [p._replace(score=float(CONFIDENCE_FORMAT % p.score)) for p in proposals]


def evaluate_detection(
    proposals_by_video: Mapping[str, Sequence[Proposal]],
    gt_by_video: Mapping[str, np.ndarray],
    convention: str,
    voc_tious: Sequence[float] = (0.1, 0.3, 0.5),
    official_theta: float = 0.5,
    num_classes: int = 52,
    with_ap_2d: bool = False,
) -> dict[str, float]:
    """All detection metrics (the VOC-style mAP_a and the official ones), in %.

    ``proposals_by_video``: internal [u, v) proposals per test video; ``gt_by_video``: raw GT
    rows (n, 4) in the file convention for EVERY test video (videos without proposals score 0
    in mAP_video). Keys: ``detect/mAP_a_tiou{θ}`` per VOC tIoU, ``detect/mAP_action_theta{θ}``,
    ``detect/mAP_video_theta{θ}``, ``detect/ap_pooled_theta{θ}`` and, if asked, ``detect/ap_2d``.
    """
    check_convention(convention)
    unknown = sorted(set(proposals_by_video) - set(gt_by_video))
    if unknown:
        raise ValueError(f"proposals for videos without ground truth: {unknown[:5]}")
    written = {video: _as_written(props) for video, props in proposals_by_video.items()}

    metrics: dict[str, float] = {}
    for tiou in voc_tious:
        voc = voc_map(written, gt_by_video, tiou, convention, num_classes)
        metrics[f"detect/mAP_a_tiou{tiou:g}"] = 100.0 * voc["mAP"]
    props, gts = official_rows(written, gt_by_video, convention)
    theta = f"{official_theta:g}"
    metrics[f"detect/mAP_action_theta{theta}"] = 100.0 * map_action(props, gts, official_theta, num_classes)
    metrics[f"detect/mAP_video_theta{theta}"] = 100.0 * map_video(props, gts, official_theta, videos=gt_by_video)
    metrics[f"detect/ap_pooled_theta{theta}"] = 100.0 * pooled_ap(props, gts, official_theta)
    if with_ap_2d:
        metrics["detect/ap_2d"] = 100.0 * ap_2d(props, gts)
    return metrics
