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


class SkeletonH5Dataset(torch.utils.data.Dataset):
    """Lazy reader of one subset (train | test) of a named split of a dataset file: one
    ``h5py.File`` per DataLoader worker, opened on first use.

    Returns ``(joint (C, T_max, V, M) float32, num_frame, label, index)`` with ``index`` the
    position in this subset; ``sample_index`` maps it to the file's ``samples``. Cropping,
    augmentation and bone/motion happen on the training device, in batches. ``layout`` is the
    file's skeleton layout (joints, bone tree, persons, channels), which models are built for.
    """

    def __init__(self, path: str | Path, split: str, subset: str):
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

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int):
        if self._joint is None:
            # one open file and dataset handle per process: h5py's two group lookups per
            # sample cost ~0.2 ms, a third of reading a sample
            self._h5 = h5py.File(self.path, "r")
            self._joint = self._h5[SAMPLES]["joint"]
        joint = torch.from_numpy(self._joint[int(self.sample_index[i])])
        return joint, int(self.num_frame[i]), int(self.label[i]), i

    def __getstate__(self):
        # never pickle an open file handle into worker processes
        state = self.__dict__.copy()
        state["_h5"] = state["_joint"] = None
        return state
