import numpy as np
import pytest

from skelrep.evaluation.detection.proposals import Proposal
from skelrep.evaluation.detection.voc import tiou_inclusive, voc_average_precision, voc_map

ONE = "one_based_inclusive"
ZERO = "zero_based_half_open"


def _gt(*rows):
    return np.array([[label, s, e, 1] for label, s, e in rows], dtype=float)


def test_tiou_plus_one_convention():
    # [0,9] vs [5,14]: inter 5 frames, union 10 + 10 - 5 = 15.
    assert tiou_inclusive(0, 9, np.array([5]), np.array([14]))[0] == pytest.approx(1 / 3)
    # Adjacent inclusive segments share no frame.
    assert tiou_inclusive(0, 4, np.array([5]), np.array([9]))[0] == 0
    # A single frame against itself.
    assert tiou_inclusive(7, 7, np.array([7]), np.array([7]))[0] == 1


def test_average_precision_hand_computed():
    # FP then TP, 1 GT: precision 0, 1/2 at recall 0, 1 → envelope 1/2 over recall [0, 1].
    assert voc_average_precision([False, True], 1) == pytest.approx(0.5)
    # TP, FP, TP with 2 GT: recall .5 @ P 1, recall 1 @ P 2/3 → .5·1 + .5·2/3.
    assert voc_average_precision([True, False, True], 2) == pytest.approx(0.5 + 1 / 3)
    assert voc_average_precision([], 3) == 0


def test_perfect_predictions_both_conventions():
    props = {"a": [Proposal(1, 10, 20, 0.9), Proposal(2, 30, 40, 0.8)]}
    one = voc_map(props, {"a": _gt((1, 11, 20), (2, 31, 40))}, 0.5, ONE, num_classes=4)
    zero = voc_map(props, {"a": _gt((1, 10, 20), (2, 30, 40))}, 0.5, ZERO, num_classes=4)
    for res in (one, zero):
        assert res["mAP"] == 1.0
        assert res["per_class"] == {1: 1.0, 2: 1.0}
        assert res["classes_without_gt"] == [3]


def test_convention_changes_the_boundaries():
    # File rows (1, 10, 20): one-based → inclusive [9, 19]; proposal [10, 20) → [10, 19]:
    # tIoU = 10/11 ≈ 0.909 < 0.95 → FP. Zero-based → [10, 19], identical → TP.
    props = {"a": [Proposal(1, 10, 20, 0.9)]}
    gt = {"a": _gt((1, 10, 20))}
    assert voc_map(props, gt, 0.95, ONE, num_classes=2)["mAP"] == 0.0
    assert voc_map(props, gt, 0.90, ONE, num_classes=2)["mAP"] == 1.0
    assert voc_map(props, gt, 0.95, ZERO, num_classes=2)["mAP"] == 1.0


def test_false_positive_above_true_positive():
    props = {"a": [Proposal(1, 100, 110, 0.9), Proposal(1, 0, 10, 0.8)]}
    res = voc_map(props, {"a": _gt((1, 0, 10))}, 0.5, ZERO, num_classes=2)
    assert res["mAP"] == pytest.approx(0.5)  # ranked FP, TP with 1 GT


def test_duplicate_detection_is_false_positive():
    # Ranked: TP (GT 1), duplicate of GT 1 → FP, TP (GT 2); 2 GT → 0.5·1 + 0.5·2/3.
    props = {"a": [Proposal(1, 0, 10, 0.9), Proposal(1, 0, 10, 0.8), Proposal(1, 50, 60, 0.7)]}
    res = voc_map(props, {"a": _gt((1, 0, 10), (1, 50, 60))}, 0.5, ZERO, num_classes=2)
    assert res["mAP"] == pytest.approx(0.5 + 1 / 3)


def test_best_gt_already_matched_gives_fp_even_if_another_gt_passes():
    # GT A = [0,9], B = [4,13] (inclusive). p1 [0,9] → A (tIoU 1). p2 [1,10]: A 9/11 ≈ .82, B 7/13 ≈ .54;
    # its best GT A is taken → FP, although B passes 0.5. Ranked TP, FP with 2 GT → AP 0.5.
    props = {"a": [Proposal(1, 0, 10, 0.9), Proposal(1, 1, 11, 0.8)]}
    res = voc_map(props, {"a": _gt((1, 0, 10), (1, 4, 14))}, 0.5, ZERO, num_classes=2)
    assert res["mAP"] == pytest.approx(0.5)


def test_classes_without_gt_excluded_and_reported():
    # Class 2 has only a (false) proposal and no GT: excluded from the mean.
    props = {"a": [Proposal(1, 0, 10, 0.9), Proposal(2, 20, 30, 0.95)]}
    res = voc_map(props, {"a": _gt((1, 0, 10))}, 0.5, ZERO, num_classes=4)
    assert res["mAP"] == 1.0
    assert res["per_class"] == {1: 1.0}
    assert res["classes_without_gt"] == [2, 3]


def test_empty_predictions_score_zero_for_classes_with_gt():
    res = voc_map({}, {"a": _gt((1, 0, 10)), "b": _gt((2, 5, 9))}, 0.5, ZERO, num_classes=3)
    assert res == {"mAP": 0.0, "per_class": {1: 0.0, 2: 0.0}, "classes_without_gt": []}


def test_same_segment_in_another_video_is_fp():
    props = {"b": [Proposal(1, 0, 10, 0.9)], "a": [Proposal(1, 0, 10, 0.5)]}
    res = voc_map(props, {"a": _gt((1, 0, 10)), "b": np.zeros((0, 4))}, 0.5, ZERO, num_classes=2)
    assert res["mAP"] == pytest.approx(0.5)  # ranked FP (video b), TP (video a)


def test_rejects_labels_outside_action_classes():
    with pytest.raises(ValueError):
        voc_map({"a": [Proposal(0, 0, 10, 0.9)]}, {"a": _gt((1, 0, 10))}, 0.5, ZERO, num_classes=2)
