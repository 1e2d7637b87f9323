import numpy as np
import pytest

from skelrep.evaluation.detection.pku_official import (
    ap_2d,
    evaluate_detection,
    map_action,
    map_video,
    official_ap,
    official_match,
    official_overlap,
    pooled_ap,
)
from skelrep.evaluation.detection.proposals import Proposal


def test_overlap_hand_computed():
    p = ("v", 1, 10, 20, 0.9)
    assert official_overlap(p, ("v", 1, 15, 30)) == pytest.approx(5 / 20)
    assert official_overlap(p, ("v", 1, 10, 20)) == 1.0
    assert official_overlap(p, ("v", 1, 20, 30)) == 0.0  # touching: raw values, no +1
    assert official_overlap(p, ("v", 1, 25, 30)) == pytest.approx(-5 / 20)  # disjoint → negative
    assert official_overlap(p, ("v", 2, 10, 20)) == 0.0  # other label
    assert official_overlap(p, ("w", 1, 10, 20)) == 0.0  # other video


def test_several_proposals_share_one_gt():
    # a (overlap 1, conf .9) and b (overlap .9, conf .5) both go to g; c (conf .7) has no GT.
    # count[g] = 2, positive = 1. Ascending: b, c, a.  P0 = 1/3, R0 = 1 → best 1/3.
    #   remove b: count 1, positive 1 → P 1/2, R 1; best 1/2; AP += 1/2·(1-1) = 0
    #   remove c: unassigned → skipped
    #   remove a: count 0, positive 0, nothing left → (0, 0); AP += 1/2·(1-0) = 1/2
    gts = [("v", 1, 0, 10)]
    props = [("v", 1, 0, 10, 0.9), ("v", 1, 0, 9, 0.5), ("v", 1, 50, 60, 0.7)]
    assignment, counts, positive = official_match(props, gts, 0.5)
    assert (assignment, counts, positive) == ([0, 0, -1], [2], 1)
    assert official_ap(props, gts) == pytest.approx(0.5)


def test_tied_overlap_goes_to_later_gt():
    # Two identical GTs: both proposals pick g2, so only one GT counts as found.
    # P0 = 1/2, R0 = 1/2. Remove .8: count 1 → P 1, R 1/2; best 1; AP += 0.
    # Remove .9: → (0, 0); AP += 1·1/2.
    gts = [("v", 1, 0, 10), ("v", 1, 0, 10)]
    props = [("v", 1, 0, 10, 0.9), ("v", 1, 0, 10, 0.8)]
    assert official_match(props, gts, 0.5)[0] == [1, 1]
    assert official_ap(props, gts) == pytest.approx(0.5)


def test_below_theta_is_unassigned():
    assert official_match([("v", 1, 10, 20, 0.9)], [("v", 1, 15, 30)], 0.5)[0] == [-1]
    assert official_ap([("v", 1, 10, 20, 0.9)], [("v", 1, 15, 30)], 0.5) == 0.0
    assert official_ap([("v", 1, 10, 20, 0.9)], [("v", 1, 15, 30)], 0.25) == pytest.approx(1.0)


def test_removal_order_by_ascending_confidence():
    gts = [("v", 1, 0, 10), ("v", 1, 20, 30)]
    # p1 → g1 (.9), FP (.8), p3 → g2 (.1). Ascending: p3, FP, p1. P0 = 2/3, R0 = 1, best 2/3.
    #   remove p3: positive 1, 2 left → P 1/2, R 1/2; best 2/3; AP += 2/3·1/2 = 1/3
    #   remove FP: skipped (no update although precision would rise)
    #   remove p1: → (0, 0); AP += 2/3·1/2 = 1/3  → AP = 2/3
    props = [("v", 1, 0, 10, 0.9), ("v", 1, 100, 110, 0.8), ("v", 1, 20, 30, 0.1)]
    assert official_ap(props, gts) == pytest.approx(2 / 3)
    # With p3 most confident: ascending FP, p1, p3.
    #   remove FP: skipped; remove p1: 1 left, positive 1 → P 1, R 1/2; best 1; AP += 1·(1 - 1/2)
    #   remove p3: → (0, 0); AP += 1·1/2 → AP = 1
    props[2] = ("v", 1, 20, 30, 0.95)
    assert official_ap(props, gts) == pytest.approx(1.0)


def test_empty_inputs_give_zero():
    assert official_ap([], [("v", 1, 0, 10)]) == 0.0
    assert official_ap([("v", 1, 0, 10, 0.9)], []) == 0.0


# Two videos, two classes (file values; zero_based_half_open so file rows = internal frames):
#   GT   A: (1, 0-10), (2, 20-30)         B: (1, 0-10)
#   Prop A: (1, 0-10, .9) TP, (2, 50-60, .8) FP     B: (1, 0-10, .3) TP, (2, 0-10, .95) FP
# mAP_action:
#   class 1: L = [A .9, B .3], 2 GT, both TP. P0 = 1, R0 = 1. remove B: P 1, R 1/2, AP += 1/2;
#            remove A: (0, 0), AP += 1/2 → AP 1.
#   class 2: no proposal matches → AP 0.                   mAP_action = (1 + 0)/2 = 1/2
# mAP_video:
#   video A: ascending FP .8, TP .9; positive 1 of 2 props, 2 GT → P0 = 1/2, R0 = 1/2.
#            remove FP: skipped; remove TP: (0, 0), AP += 1/2·1/2 = 1/4.
#   video B: ascending TP .3, FP .95; P0 = 1/2, R0 = 1. remove TP: 1 left, positive 0 → (0, 0);
#            AP += 1/2·1 = 1/2; remove FP: skipped.       mAP_video = (1/4 + 1/2)/2 = 3/8
# pooled: ascending B1 .3, A2 .8, A1 .9, B2 .95; 2 positive, 4 props, 3 GT → P0 = 1/2, R0 = 2/3.
#   remove B1: 3 left, positive 1 → P 1/3, R 1/3; AP += 1/2·1/3. remove A2: skipped.
#   remove A1: 1 left, positive 0 → P 0, R 0; AP += 1/2·1/3. remove B2: skipped. pooled = 1/3
GTS = [("A", 1, 0, 10), ("A", 2, 20, 30), ("B", 1, 0, 10)]
PROPS = [("A", 1, 0, 10, 0.9), ("A", 2, 50, 60, 0.8), ("B", 1, 0, 10, 0.3), ("B", 2, 0, 10, 0.95)]


def test_map_action_vs_map_video_two_videos():
    assert map_action(PROPS, GTS, 0.5, num_classes=3) == pytest.approx(0.5)
    assert map_video(PROPS, GTS, 0.5) == pytest.approx(3 / 8)
    assert pooled_ap(PROPS, GTS, 0.5) == pytest.approx(1 / 3)


def test_map_action_counts_classes_without_gt_as_zero():
    # Official behaviour (division by 51): class 3 has no GT and adds AP 0 → (1 + 0 + 0)/3.
    assert map_action(PROPS, GTS, 0.5, num_classes=4) == pytest.approx(1 / 3)


def test_map_video_includes_listed_videos_without_proposals_or_gt():
    # A third test video with neither GT nor proposals scores 0: (1/4 + 1/2 + 0)/3.
    assert map_video(PROPS, GTS, 0.5, videos=["A", "B", "C"]) == pytest.approx(0.25)


def test_ap_2d_averages_twenty_thresholds():
    gts = [("v", 1, 0, 10)]
    assert ap_2d([("v", 1, 0, 10, 0.9)], gts) == pytest.approx(1.0)  # overlap 1 passes θ = 1.0
    # Overlap exactly 1/2 passes θ = 0.05 .. 0.50 (10 of 20) → 0.5.
    assert ap_2d([("v", 1, 0, 5, 0.9)], gts) == pytest.approx(0.5)


@pytest.mark.parametrize("convention,shift", [("zero_based_half_open", 0), ("one_based_inclusive", 1)])
def test_evaluate_detection_keys_and_values(convention, shift):
    gt = {
        "A": np.array([[1, 0 + shift, 10, 1], [2, 20 + shift, 30, 1]], dtype=float),
        "B": np.array([[1, 0 + shift, 10, 1]], dtype=float),
    }
    props = {
        "A": [Proposal(1, 0, 10, 0.9), Proposal(2, 50, 60, 0.8)],
        "B": [Proposal(1, 0, 10, 0.3), Proposal(2, 0, 10, 0.95)],
    }
    got = evaluate_detection(props, gt, convention, num_classes=3)
    # VOC: class 1 two TPs → 1; class 2 only FPs → 0.
    expected = {
        "detect/mAP_a_tiou0.1": 50.0,
        "detect/mAP_a_tiou0.3": 50.0,
        "detect/mAP_a_tiou0.5": 50.0,
        "detect/mAP_action_theta0.5": 50.0,
        "detect/mAP_video_theta0.5": 37.5,
        "detect/ap_pooled_theta0.5": 100 / 3,
    }
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_evaluate_detection_rejects_unknown_video():
    with pytest.raises(ValueError):
        evaluate_detection({"X": [Proposal(1, 0, 10, 0.5)]}, {"A": np.zeros((0, 4))}, "zero_based_half_open")
