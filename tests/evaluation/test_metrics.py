import numpy as np
import pytest
import torch

from skelrep.evaluation.metrics import summary_line, topk_accuracy

# Row 3 ties classes 0 and 1; the stable sort ranks class 0 first.
SCORES = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
LABELS = np.array([1, 1, 0, 1])


def test_topk_hand_computed():
    # top-1 predictions 1, 0, 2, 0 → only row 0 correct.
    assert topk_accuracy(SCORES, LABELS, 1) == 25.0
    # top-2 sets {1,2}, {0,1}, {2,1}, {0,1} → rows 0, 1, 3 correct.
    assert topk_accuracy(SCORES, LABELS, 2) == 75.0
    assert topk_accuracy(SCORES, LABELS, 3) == 100.0


def test_topk_accepts_tensors():
    assert topk_accuracy(torch.tensor(SCORES), torch.tensor(LABELS), 2) == 75.0


def test_topk_rejects_bad_k():
    with pytest.raises(ValueError):
        topk_accuracy(SCORES, LABELS, 4)


def test_summary_lines_name_the_metric_and_the_baselines():
    linear = {"linear/top1_last": 33.46, "linear/top5_last": 70.0, "linear/top1_best_on_test": 34.0,
              "linear/random_init/top1_last": 21.04, "linear/handcrafted/top1_last": 26.35}
    assert summary_line("linear", "ntu60-xsub", linear) == \
        "linear ntu60-xsub: top-1 33.5 (random init 21.0, hand-crafted 26.4)"
    assert summary_line("knn", "p", {"knn/top1": 19.94, "knn/k": 1}) == "knn p: KNN-1 19.9"
    detect = {"detect/mAP_a_tiou0.5": 9.0, "detect/mAP_action_theta0.5": 12.34,
              "detect/random_init/mAP_action_theta0.5": 3.21}
    assert summary_line("detect", "pku1-xsub", detect) == "detect pku1-xsub: mAP_action 12.3 at θ=0.5 (random init 3.2)"
    assert summary_line("knn", "p", {}) == "knn p: no KNN-1 measured"
    # the other detection protocols after the dense one's
    detect.update({"detect/window/mAP_action_theta0.5": 10.21, "detect/window/mAP_a_tiou0.5": 1.0,
                   "detect/dense_finetune/mAP_action_theta0.5": 20.06})
    assert summary_line("detect", "pku1-xsub", detect) == (
        "detect pku1-xsub: mAP_action 12.3 at θ=0.5 (random init 3.2); dense_finetune 20.1; window 10.2")
    # ... each with its own random-init baseline when it ran one
    detect.update({"detect/random_init/window/mAP_action_theta0.5": 6.04,
                   "detect/random_init/dense_finetune/mAP_action_theta0.5": 8.66})
    assert summary_line("detect", "pku1-xsub", detect) == (
        "detect pku1-xsub: mAP_action 12.3 at θ=0.5 (random init 3.2); dense_finetune 20.1 (random init 8.7); "
        "window 10.2 (random init 6.0)")
    only = {"detect/window/mAP_action_theta0.5": 10.21}
    assert summary_line("detect", "pku1-xsub", only) == "detect pku1-xsub: mAP_action window 10.2"
