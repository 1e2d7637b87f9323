"""The processed files are deterministic by construction: only filters whose output is a
function of the input (deflate, shuffle) and a fill value for every chunked dataset."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from skelrep.data.hdf5 import SampleWriter, encode_sample, encoded_samples_match

from ..conftest import write_tiny_h5

DETERMINISTIC_FILTERS = {None, "gzip"}


def _datasets(path):
    found = []
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: found.append((name, obj.compression, obj.chunks, obj.fillvalue))
                      if isinstance(obj, h5py.Dataset) else None)
    return found


def test_every_dataset_uses_a_deterministic_filter(tmp_path):
    for name, compression, chunks, fill in _datasets(write_tiny_h5(tmp_path / "t.h5")):
        assert compression in DETERMINISTIC_FILTERS, f"{name}: {compression} (LZF output is not deterministic)"
        if chunks is not None:  # strings: HDF5's empty-string fill
            assert fill in (0, b""), name


def test_two_writes_give_the_same_bytes(tmp_path):
    a, b = write_tiny_h5(tmp_path / "a.h5"), write_tiny_h5(tmp_path / "b.h5")
    assert a.read_bytes() == b.read_bytes()


def test_encoded_samples_are_the_chunks_h5py_writes(tmp_path):
    """A writer fed hdf5.encode_sample's chunks writes the file a writer fed the arrays writes."""
    assert encoded_samples_match()
    rng = np.random.Generator(np.random.PCG64(1))
    joints = [np.cumsum(rng.standard_normal((3, 30, 25, 2)), axis=1).astype(np.float32) for _ in range(70)]
    joints[3][:] = 0  # an all-zero sample
    paths = []
    for kind in ("array", "encoded"):
        path = tmp_path / f"{kind}.h5"
        with h5py.File(path, "w", track_order=True) as h5, SampleWriter(h5, (3, 30, 25, 2), ("k",)) as w:
            for i, joint in enumerate(joints):  # 70 samples: one block of 64 and a partial one
                w.append(f"s{i}", encode_sample(joint) if kind == "encoded" else joint, 30, i % 5, {"k": i})
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with h5py.File(tmp_path / "mixed.h5", "w") as h5, SampleWriter(h5, (3, 30, 25, 2), ()) as w:
        w.append("a", joints[0], 30, 0, {})
        with pytest.raises(ValueError, match="mixed"):
            w.append("b", encode_sample(joints[1]), 30, 0, {})
