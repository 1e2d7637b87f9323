"""A lazy ``torch.utils.data.Dataset`` over one split of a skelrep HDF5 file.

Kept apart from ``hdf5.py`` so preprocessing workers never import torch.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import DataError
from .hdf5 import SAMPLES, read_indices, read_layout

# The processes that read a subset more than once keep it in memory (``memo_mb``) when it takes
# at most this many MiB decoded: pretraining (every epoch) and the features stage (each encoder
# and the hand-crafted baseline). The built-in synthetic splits (80-400 MiB) are kept; the real
# NTU train splits (7-11 GiB at T_max 300) are read from the file each time.
MEMO_MB = 2048


class SkeletonH5Dataset(torch.utils.data.Dataset):
    """Lazy reader of one subset (train | test) of a named split of a dataset file: one
    ``h5py.File`` per DataLoader worker, opened on first use.

    Returns ``(joint (C, T_max, V, M) float32, num_frame, label, index)`` with ``index`` the
    position in this subset; ``sample_index`` maps it to the file's ``samples``. Cropping,
    augmentation and bone/motion happen on the training device, in batches. ``layout`` is the
    file's skeleton layout (joints, bone tree, persons, channels), which models are built for.

    ``memo_mb``: when the subset's samples take at most this many MiB decoded, each one is kept
    after its first read, so later reads (the later epochs of a training run, the features
    stage's second encoder) take memory instead of inflating the file again (~0.4 ms a sample).
    Only in the reading process: DataLoader workers live for one epoch, so they read the file.
    A memoised item's ``joint`` is a view of the kept sample (batching copies it); callers must
    not modify it in place.
    """

    def __init__(self, path: str | Path, split: str, subset: str, memo_mb: float = 0.0):
        self.path = str(path)
        self.split = split
        self.subset = subset
        with h5py.File(self.path, "r") as h5:
            if SAMPLES not in h5:
                raise DataError(self.path, f"has no {SAMPLES!r} group (not a skelrep dataset file)")
            self.sample_index = read_indices(h5, split, subset, self.path)
            g = h5[SAMPLES]
            self.num_frame = g["num_frame"][:][self.sample_index].astype(np.int64)
            self.label = g["label"][:][self.sample_index].astype(np.int64)
            self.sample_name = np.array([n.decode() for n in g["sample_name"][:][self.sample_index]])
            self.sample_shape = g["joint"].shape[1:]
        self.layout = read_layout(self.path)
        channels, _, joints, persons = self.sample_shape
        declared = (self.layout.channels, self.layout.num_joints, self.layout.persons)
        if (channels, joints, persons) != declared:
            raise DataError(self.path, f"{SAMPLES}/joint has (C, V, M) = {(channels, joints, persons)} but its "
                            f"layout {self.layout.name!r} declares {declared}")
        self._h5: h5py.File | None = None
        self._joint: h5py.Dataset | None = None  # samples/joint of self._h5, looked up once
        decoded_mb = len(self.label) * int(np.prod(self.sample_shape)) * 4 / 2**20
        self.memoised = 0 < decoded_mb <= memo_mb
        self._memo: np.ndarray | None = None  # (N, C, T_max, V, M), filled on first reads
        self._memo_filled: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int):
        kept = self._memo_filled is not None and self._memo_filled[i]
        joint = self._memo[i] if kept else self._read(i)
        return torch.from_numpy(joint), int(self.num_frame[i]), int(self.label[i]), i

    def _read(self, i: int) -> np.ndarray:
        """Sample ``i`` from the file, kept in the memo when the subset is memoised and this is
        the training process."""
        if self._joint is None:
            # one open file and dataset handle per process: h5py's two group lookups per
            # sample cost ~0.2 ms, a third of reading a sample
            self._h5 = h5py.File(self.path, "r")
            self._joint = self._h5[SAMPLES]["joint"]
        joint = self._joint[int(self.sample_index[i])]
        if self.memoised and torch.utils.data.get_worker_info() is None:
            if self._memo is None:  # pages are only touched as samples arrive
                self._memo = np.empty((len(self.label), *self.sample_shape), dtype=np.float32)
                self._memo_filled = np.zeros(len(self.label), dtype=bool)
            self._memo[i] = joint
            self._memo_filled[i] = True
            return self._memo[i]
        return joint

    def __getstate__(self):
        # never pickle an open file handle into worker processes
        state = self.__dict__.copy()
        state["_h5"] = state["_joint"] = None
        state["_memo"] = state["_memo_filled"] = None  # workers read the file
        return state
