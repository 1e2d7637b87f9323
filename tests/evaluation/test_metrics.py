import numpy as np
import pytest
import torch

from skelrep.evaluation.metrics import topk_accuracy

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
