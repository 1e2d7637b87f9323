import numpy as np
import pytest
import torch

from skelrep.evaluation.linear import train_linear_probe


def _blobs(n_per_class: int, seed: int):
    """Three well-separated Gaussian blobs in 8-d (centres 5·e_c, unit noise)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(n_per_class, 8)) + 5.0 * np.eye(8)[c] for c in range(3)])
    y = np.repeat(np.arange(3), n_per_class)
    return x.astype(np.float32), y


def _run(seed=0, epochs=20, eval_every=5):
    xtr, ytr = _blobs(100, 1)
    xte, yte = _blobs(50, 2)
    return train_linear_probe(
        xtr, ytr, xte, yte, num_classes=3, epochs=epochs, lr=0.1, milestones=[15],
        batch_size=32, eval_every=eval_every, seed=seed, progress=False,
    )


def test_separable_blobs_are_learned():
    res = _run()
    assert res.top1_last > 95.0
    assert res.top5_last == 100.0  # only 3 classes: top-k uses k = min(5, C)
    assert res.test_scores_last.shape == (150, 3)
    assert res.test_scores_last.dtype == np.float32
    np.testing.assert_allclose(res.test_scores_last.sum(axis=1), 1.0, atol=1e-5)


def test_history_and_best_on_test():
    res = _run()
    evaluated = [h["epoch"] for h in res.history if "test_top1" in h]
    assert evaluated == [5, 10, 15, 20]
    assert [h["epoch"] for h in res.history] == list(range(1, 21))
    # MultiStep ×0.1 after 15 epochs: epoch 16 is the first at the lower lr.
    assert res.history[14]["lr"] == pytest.approx(0.1)
    assert res.history[15]["lr"] == pytest.approx(0.01)
    assert res.top1_best_on_test >= res.top1_last
    assert res.best_epoch in evaluated
    best_row = next(h for h in res.history if h["epoch"] == res.best_epoch)
    assert best_row["test_top1"] == res.top1_best_on_test


def test_last_epoch_always_evaluated():
    res = _run(epochs=12)
    assert [h["epoch"] for h in res.history if "test_top1" in h] == [5, 10, 12]


def test_same_seed_is_identical_and_seed_matters():
    a, b, c = _run(seed=3), _run(seed=3), _run(seed=4)
    assert a.history == b.history
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k])
    np.testing.assert_array_equal(a.test_scores_last, b.test_scores_last)
    assert not torch.equal(a.state_dict["weight"], c.state_dict["weight"])


def test_standardize_uses_train_statistics_for_every_split():
    import numpy as np

    from skelrep.evaluation.linear import standardize_features

    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 0.01, size=(200, 4))
    test = rng.normal(5.0, 0.01, size=(50, 4))
    tr, te = standardize_features(train, test)
    assert np.allclose(tr.mean(0), 0, atol=1e-5) and np.allclose(tr.std(0), 1, atol=1e-3)
    assert np.allclose(te, (test - train.mean(0)) / (train.std(0) + 1e-6), atol=1e-4)
