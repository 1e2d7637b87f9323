"""SkeletonH5Dataset: what it returns, and that it goes into DataLoader workers without its file."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import torch

from ..conftest import TINY_SPLIT, write_tiny_h5


def test_items_are_the_file_samples_of_the_subset(tmp_path):
    from skelrep.data.dataset import SkeletonH5Dataset

    path = write_tiny_h5(tmp_path / "tiny.h5", n_train=6, n_test=3, frames=16)
    ds = SkeletonH5Dataset(path, TINY_SPLIT, "test")
    with h5py.File(path, "r") as h5:
        joint = h5["samples"]["joint"][:]
        num_frame = h5["samples"]["num_frame"][:]
    assert len(ds) == 3
    for i in (2, 0, 1, 2):  # any order, repeated: one open handle serves them all
        x, frames, label, index = ds[i]
        k = int(ds.sample_index[i])
        assert index == i and frames == num_frame[k] and label == int(ds.label[i])
        assert x.dtype == torch.float32 and np.array_equal(x.numpy(), joint[k])


def test_a_dataset_in_use_pickles_without_its_open_file(tmp_path):
    """DataLoader workers receive the dataset pickled: never an open h5py handle (it cannot be
    pickled, and sharing one across processes is unsafe); each worker opens its own."""
    from skelrep.data.dataset import SkeletonH5Dataset

    ds = SkeletonH5Dataset(write_tiny_h5(tmp_path / "tiny.h5", n_train=4, n_test=2, frames=16), TINY_SPLIT, "train")
    first = ds[1][0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._h5 is None and copy._joint is None
    assert torch.equal(copy[1][0], first)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    assert torch.equal(next(iter(loader))[0][1], first)


def test_a_memoised_split_reads_each_sample_from_the_file_once(tmp_path, monkeypatch):
    from skelrep.data.dataset import SkeletonH5Dataset

    path = write_tiny_h5(tmp_path / "tiny.h5", n_train=6, n_test=3, frames=16)
    plain = SkeletonH5Dataset(path, TINY_SPLIT, "train")
    memo = SkeletonH5Dataset(path, TINY_SPLIT, "train", memo_mb=1.0)
    assert memo.memoised and not plain.memoised
    reads = []
    real_getitem = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, key: reads.append(key) or real_getitem(self, key))
    for _epoch in range(3):
        for i in (4, 0, 5, 1, 3, 2):
            got, want = memo[i], plain[i]
            assert torch.equal(got[0], want[0]) and got[1:] == want[1:]
    assert len(reads) == 6 + 3 * 6  # the memoised dataset: one read per sample; the plain one: every time
    # a DataLoader worker reads the file (it lives for one epoch) and gets the dataset without the memo
    copy = pickle.loads(pickle.dumps(memo))
    assert copy._memo is None and torch.equal(copy[2][0], plain[2][0])
    loader = torch.utils.data.DataLoader(memo, batch_size=3, num_workers=1)
    assert torch.equal(next(iter(loader))[0], torch.stack([plain[i][0] for i in range(3)]))


def test_a_split_larger_than_the_memo_budget_is_read_from_the_file(tmp_path):
    from skelrep.data.dataset import SkeletonH5Dataset

    path = write_tiny_h5(tmp_path / "tiny.h5", n_train=6, n_test=3, frames=16)
    size_mb = 6 * int(np.prod(SkeletonH5Dataset(path, TINY_SPLIT, "train").sample_shape)) * 4 / 2**20
    assert SkeletonH5Dataset(path, TINY_SPLIT, "train", memo_mb=size_mb).memoised
    small = SkeletonH5Dataset(path, TINY_SPLIT, "train", memo_mb=size_mb * 0.99)
    assert not small.memoised
    small[0], small[0]
    assert small._memo is None
