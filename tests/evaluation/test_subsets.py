"""Labelled subsets of the semi-supervised protocol: per class, at least one each, the labelled
total of the fraction, seeded, stable across runs and machines, independent of the file order."""

from __future__ import annotations

import numpy as np
import pytest

from skelrep.evaluation.sections import fraction_name
from skelrep.evaluation.subsets import class_counts, labelled_subset


def _split(sizes: dict[int, int]) -> tuple[list[str], np.ndarray]:
    """Sample ids and labels of a split with ``sizes[c]`` samples of class c, classes interleaved."""
    ids, labels = [], []
    left = dict(sizes)
    i = 0
    while any(left.values()):
        for c in sorted(left):
            if left[c]:
                ids.append(f"S{i:04d}A{c:03d}")
                labels.append(c)
                left[c] -= 1
                i += 1
    return ids, np.array(labels)


def test_every_class_gets_its_share_and_at_least_one():
    ids, labels = _split(dict.fromkeys(range(60), 12))  # the synthetic NTU-60 xsub train split: 720
    for fraction, total in ((0.01, 60), (0.1, 72), (0.5, 360), (1.0, 720)):
        counts = class_counts(labels, fraction, seed=0)
        assert sum(counts.values()) == total and min(counts.values()) >= 1
        subset = labelled_subset(ids, labels, fraction, seed=0)
        assert len(subset) == total and np.bincount(labels[subset], minlength=60).min() >= 1
    # 10 %: 1.2 per class -> one each, the 12 remaining labels to 12 classes (largest remainders, all equal)
    assert sorted(class_counts(labels, 0.1, seed=0).values()) == [1] * 48 + [2] * 12
    # real NTU-60 xsub size (40,320, ~672 per class): 1 % is 403 labels, 6 or 7 per class
    big = np.repeat(np.arange(60), 672)
    counts = class_counts(big, 0.01, seed=0)
    assert sum(counts.values()) == 403 and set(counts.values()) == {6, 7}


def test_unequal_classes_are_proportional_and_absent_classes_get_nothing():
    # PKU-MMD II-like: ids 3 and 8 have no sample, class 5 a single one
    ids, labels = _split({0: 100, 1: 50, 2: 20, 5: 1, 7: 29})
    counts = class_counts(labels, 0.1, seed=3)
    assert set(counts) == {0, 1, 2, 5, 7}
    # quotas 10, 5, 2, 0.1, 2.9: the single sample of class 5 is labelled (at least one each), which
    # takes the one label left of round(0.1 * 200) = 20 that class 7's remainder 0.9 would get
    assert counts == {0: 10, 1: 5, 2: 2, 5: 1, 7: 2}
    assert class_counts(labels, 0.2, seed=3) == {0: 20, 1: 10, 2: 4, 5: 1, 7: 5}  # 40: 5.8 -> 5, 0.2 -> 1
    subset = labelled_subset(ids, labels, 0.1, seed=3)
    assert dict(zip(*np.unique(labels[subset], return_counts=True), strict=True)) == counts


def test_seeded_and_stable_across_runs_and_library_versions():
    ids, labels = _split({0: 5, 1: 5, 2: 5})
    a = labelled_subset(ids, labels, 0.4, seed=0)
    assert np.array_equal(a, labelled_subset(ids, labels, 0.4, seed=0))
    assert not np.array_equal(a, labelled_subset(ids, labels, 0.4, seed=1))
    assert a.dtype == np.int64 and list(a) == sorted(a)
    # pinned (checked by hand: two per class, the lowest sha256("0:<id>") of each): no library
    # random stream is involved, so this holds on any machine and numpy/torch version
    assert [ids[i] for i in a] == ["S0005A002", "S0006A000", "S0007A001", "S0008A002", "S0009A000",
                                   "S0013A001"]


def test_the_subset_depends_on_the_ids_not_on_the_file_order():
    ids, labels = _split(dict.fromkeys(range(5), 9))
    chosen = {ids[i] for i in labelled_subset(ids, labels, 0.3, seed=7)}
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled_ids = [ids[i] for i in order]
    again = {shuffled_ids[i] for i in labelled_subset(shuffled_ids, labels[order], 0.3, seed=7)}
    assert again == chosen


def test_a_larger_fraction_of_the_same_seed_extends_the_smaller():
    ids, labels = _split(dict.fromkeys(range(6), 40))
    small = set(labelled_subset(ids, labels, 0.05, seed=2).tolist())
    large = set(labelled_subset(ids, labels, 0.25, seed=2).tolist())
    assert small < large


def test_bad_arguments_are_refused():
    ids, labels = _split({0: 3, 1: 3})
    with pytest.raises(ValueError, match="fraction"):
        labelled_subset(ids, labels, 0.0, seed=0)
    with pytest.raises(ValueError, match="unique"):
        labelled_subset(["a", "a", "b", "c", "d", "e"], labels, 0.5, seed=0)
    with pytest.raises(ValueError, match="labels"):
        labelled_subset(ids[:-1], labels, 0.5, seed=0)


def test_fraction_names():
    assert [fraction_name(f) for f in (0.01, 0.05, 0.1, 0.2, 0.005)] == ["1pct", "5pct", "10pct", "20pct", "0.5pct"]
