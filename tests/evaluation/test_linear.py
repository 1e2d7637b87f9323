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


def _noisy(seed: int):
    """Overlapping blobs: the test accuracy moves from epoch to epoch."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(60, 8)) + 0.8 * np.eye(8)[c] for c in range(3)])
    return x.astype(np.float32), np.repeat(np.arange(3), 60)


@pytest.mark.parametrize("epochs, eval_every, evaluated", [
    (20, 1, list(range(1, 21))),           # ISC: every epoch
    (20, 5, [5, 10, 15, 20]),              # USDRL, UmURL: every 5 epochs
    (22, 5, [5, 10, 15, 20, 22]),          # the last epoch always (the primary metric)
])
def test_best_on_test_is_over_exactly_the_evaluated_epochs(epochs, eval_every, evaluated):
    (xtr, ytr), (xte, yte) = _noisy(1), _noisy(2)

    def run(every):
        return train_linear_probe(xtr, ytr, xte, yte, num_classes=3, epochs=epochs, lr=0.5, milestones=[],
                                  batch_size=16, eval_every=every, seed=0, progress=False)

    every_epoch = {h["epoch"]: h["test_top1"] for h in run(1).history}  # the same training, evaluated always
    assert len(set(every_epoch.values())) > 1  # the test accuracy does move
    res = run(eval_every)
    assert [h["epoch"] for h in res.history if "test_top1" in h] == evaluated
    assert {h["epoch"]: h["test_top1"] for h in res.history if "test_top1" in h} == {
        e: every_epoch[e] for e in evaluated}
    best = max(every_epoch[e] for e in evaluated)
    assert res.top1_best_on_test == best
    assert res.best_epoch == min(e for e in evaluated if every_epoch[e] == best)  # ties: the earliest
    assert res.top1_last == every_epoch[epochs]
    if eval_every > 1:  # here the best epoch overall (8) is not an evaluated one: it must not count
        assert res.top1_best_on_test < max(every_epoch.values())


def test_usdrl_cadence_gives_32_evaluations():
    xtr, ytr = _blobs(10, 1)
    res = train_linear_probe(xtr, ytr, xtr, ytr, num_classes=3, epochs=160, lr=0.1, milestones=[120, 140],
                             batch_size=512, eval_every=5, seed=0, progress=False)
    assert len([h for h in res.history if "test_top1" in h]) == 32


def test_cached_crops_take_turns_by_epoch(monkeypatch):
    import skelrep.evaluation.linear as linear

    xtr, ytr = _blobs(20, 1)
    xte, yte = _blobs(10, 2)
    crops = np.stack([xtr + 100.0 * k for k in range(3)])  # crop k marked by its offset
    seen = []
    real = linear.sgd_epoch

    def spy(fc, opt, x, y, batch_size, gen):
        seen.append(round(float((x - torch.from_numpy(xtr)).mean()) / 100.0))
        return real(fc, opt, x, y, batch_size, gen)

    monkeypatch.setattr(linear, "sgd_epoch", spy)
    train_linear_probe(crops, ytr, xte, yte, num_classes=3, epochs=7, lr=0.01, milestones=[], batch_size=16,
                       seed=0, progress=False)
    assert seen == [0, 1, 2, 0, 1, 2, 0]  # epoch e trains on crop (e - 1) % K


def test_one_cached_crop_is_the_plain_probe():
    xtr, ytr = _blobs(30, 1)
    xte, yte = _blobs(10, 2)
    kw = dict(num_classes=3, epochs=6, lr=0.1, milestones=[3], batch_size=16, eval_every=2, seed=0, progress=False)
    plain, one = train_linear_probe(xtr, ytr, xte, yte, **kw), train_linear_probe(xtr[None], ytr, xte, yte, **kw)
    assert plain.history == one.history
    np.testing.assert_array_equal(plain.test_scores_last, one.test_scores_last)
    with pytest.raises(ValueError, match="N train labels"):
        train_linear_probe(xtr[None, :-1], ytr, xte, yte, **kw)


def test_standardize_over_all_cached_crops():
    from skelrep.evaluation.linear import standardize_features

    rng = np.random.default_rng(0)
    crops = rng.normal(3.0, 2.0, size=(4, 50, 6)).astype(np.float32)
    test = rng.normal(3.0, 2.0, size=(20, 6)).astype(np.float32)
    tr, te = standardize_features(crops, test)
    rows = crops.reshape(-1, 6)
    assert tr.shape == (4, 50, 6)
    np.testing.assert_allclose(tr, (crops - rows.mean(0)) / (rows.std(0) + 1e-6), atol=1e-5)
    np.testing.assert_allclose(te, (test - rows.mean(0)) / (rows.std(0) + 1e-6), atol=1e-5)
    # a 2-D train split: exactly the former statistics
    flat = crops[0]
    np.testing.assert_array_equal(standardize_features(flat, test)[1],
                                  ((test - flat.mean(0, keepdims=True)) / (flat.std(0, keepdims=True) + 1e-6)
                                   ).astype(np.float32))
