import numpy as np
import pytest

from skelrep.errors import DataError, ParamsError
from skelrep.evaluation.detection.proposal_io import (
    file_to_inclusive,
    read_proposals,
    to_file_rows,
    write_proposals,
)
from skelrep.evaluation.detection.proposals import Proposal, mean_filter, proposals_ssd, proposals_thr, true_runs


def _probs(background, *classes):
    return np.stack([background, *classes], axis=1)


# Frames: bg, bg, class 1, class 2, half class 2 / half bg, bg.
SSD_PROBS = _probs([1, 1, 0, 0, 0.5, 1], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0.5, 0])


def test_true_runs():
    assert true_runs(np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [(0, 2), (3, 4), (6, 7)]
    assert true_runs(np.zeros(3, dtype=bool)) == []


def test_mean_filter_clips_window_at_ends():
    # r=1: t0 = (3+0)/2, t1 = (3+0+0)/3, t2 = (0+0+6)/3, t3 = (0+6)/2.
    np.testing.assert_allclose(mean_filter(np.array([[3.0], [0.0], [0.0], [6.0]]), 1).ravel(), [1.5, 1, 2, 3])


def test_ssd_smoothing_threshold_and_class_choice():
    # Smoothed with r=1 (rows bg, c1, c2):
    #   t0 (1, 0, 0); t1 (2/3, 1/3, 0); t2 (1/3, 1/3, 1/3); t3 (1/6, 1/3, 1/2); t4 (1/2, 0, 1/2); t5 (3/4, 0, 1/4)
    # activity 1 - bg = 0, 1/3, 2/3, 5/6, 1/2, 1/4 → run [2, 5) at thr 0.4.
    # Class means over t2..t4: c1 = (1/3+1/3+0)/3 = 2/9, c2 = (1/3+1/2+1/2)/3 = 4/9 → class 2, conf 4/9.
    (p,) = proposals_ssd(SSD_PROBS, smooth_radius=1, activity_thr=0.4)
    assert (p.label, p.start, p.end) == (2, 2, 5)
    assert p.score == pytest.approx(4 / 9)
    # A higher threshold keeps only t3 (5/6): class means c1 = 1/3, c2 = 1/2.
    (p,) = proposals_ssd(SSD_PROBS, smooth_radius=1, activity_thr=0.7)
    assert (p.label, p.start, p.end, p.score) == (2, 3, 4, pytest.approx(0.5))


def test_ssd_without_smoothing_threshold_is_inclusive():
    # r=0: activity 0, 0, 1, 1, 0.5, 0; 0.5 >= 0.5 keeps t4. c1 mean 1/3, c2 mean (0+1+0.5)/3 = 1/2.
    assert proposals_ssd(SSD_PROBS, smooth_radius=0, activity_thr=0.5) == [Proposal(2, 2, 5, 0.5)]


def test_ssd_two_runs_and_class_tie_goes_to_lowest_class():
    probs = _probs([0, 1, 0.5], [1, 0, 0.25], [0, 0, 0.25])
    # Run [0,1): class 1 (mean 1). Run [2,3): c1 = c2 = 0.25 → lowest class 1.
    assert proposals_ssd(probs, smooth_radius=0, activity_thr=0.4) == [Proposal(1, 0, 1, 1.0), Proposal(1, 2, 3, 0.25)]


def test_thr_runs_per_class():
    c1 = [0.5, 0.01, 0.3, 0.3, 0.02]
    c2 = [0.0, 0.04, 0.06, 0.0, 0.5]
    probs = _probs(1 - np.add(c1, c2), c1, c2)
    got = proposals_thr(probs, class_prob_thr=0.02)
    # 0.02 itself is not > 0.02, so class 1 has no run at t4.
    assert [(p.label, p.start, p.end) for p in got] == [(1, 0, 1), (1, 2, 4), (2, 1, 3), (2, 4, 5)]
    assert [p.score for p in got] == pytest.approx([0.5, 0.3, 0.05, 0.5])


@pytest.mark.parametrize("generator", [proposals_ssd, proposals_thr])
def test_empty_and_no_activity(generator):
    assert generator(np.zeros((0, 3))) == []
    assert generator([]) == []
    all_background = _probs(np.ones(30), np.zeros(30), np.zeros(30))
    assert generator(all_background) == []


def test_file_rows_conventions():
    props = [Proposal(3, 10, 20, 0.5)]
    assert to_file_rows(props, "one_based_inclusive") == [(3, 11, 20, 0.5)]
    assert to_file_rows(props, "zero_based_half_open") == [(3, 10, 20, 0.5)]
    # Both file forms map back to the same inclusive 0-based frames [10, 19] = half-open [10, 20).
    for conv in ("one_based_inclusive", "zero_based_half_open"):
        ((_, start, end, _),) = to_file_rows(props, conv)
        assert tuple(map(int, file_to_inclusive(start, end, conv))) == (10, 19)
    with pytest.raises(ParamsError):
        to_file_rows(props, "one_based_half_open")


def test_write_read_roundtrip(tmp_path):
    path = tmp_path / "out" / "0291-L.txt"
    write_proposals(path, [Proposal(3, 10, 20, 0.5), Proposal(51, 0, 1, 1 / 3)], "one_based_inclusive")
    assert path.read_text() == "3,11,20,0.500000\n51,1,1,0.333333\n"
    np.testing.assert_array_equal(read_proposals(path), [[3, 11, 20, 0.5], [51, 1, 1, 0.333333]])
    write_proposals(path, [], "one_based_inclusive")
    assert path.read_text() == ""
    assert read_proposals(path).shape == (0, 4)


def test_read_rejects_malformed_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1,2,3,0.5\n1,2,3\n")
    with pytest.raises(DataError) as err:
        read_proposals(path)
    assert err.value.line == 2
