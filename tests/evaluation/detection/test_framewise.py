import numpy as np
import pytest
import torch

from skelrep.evaluation.detection.framewise import predict_frame_probs, train_frame_classifier


def _video(labels, rng):
    """Features encode the label: 3·one_hot(label) plus small noise, in 6-d."""
    labels = np.asarray(labels)
    feats = 3.0 * np.eye(6)[labels] + rng.normal(scale=0.3, size=(labels.size, 6))
    return feats.astype(np.float32), labels


def _dataset(seed):
    rng = np.random.default_rng(seed)
    videos = [_video(np.repeat([0, 1, 0, 2, 0], 12), rng), _video(np.repeat([0, 2, 1, 0], 15), rng)]
    return [f for f, _ in videos], [y for _, y in videos]


def _train(seed=0):
    feats, labels = _dataset(0)
    return train_frame_classifier(feats, labels, num_classes=3, epochs=15, lr=0.5, batch_size=16, seed=seed)


def test_separable_toy_is_learned_and_probs_sum_to_one():
    head, history = _train()
    assert [h["epoch"] for h in history] == list(range(1, 16))
    test_feats, test_labels = _dataset(1)
    probs = predict_frame_probs(head, test_feats[0])
    assert probs.shape == (60, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == test_labels[0]).mean() > 0.9


def test_deterministic_for_a_seed():
    (a, ha), (b, hb) = _train(seed=5), _train(seed=5)
    assert ha == hb
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_rejects_mismatched_lengths_and_bad_labels():
    feats, labels = _dataset(0)
    kwargs = dict(epochs=1, lr=0.1, batch_size=8, seed=0)
    with pytest.raises(ValueError):
        train_frame_classifier(feats, [labels[0][:-1], labels[1]], num_classes=3, **kwargs)
    with pytest.raises(ValueError):
        train_frame_classifier(feats, labels, num_classes=2, **kwargs)
