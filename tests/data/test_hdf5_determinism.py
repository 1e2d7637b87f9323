"""The processed files are deterministic by construction: only filters whose output is a
function of the input (deflate, shuffle) and a fill value for every chunked dataset."""

from __future__ import annotations

import h5py

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
