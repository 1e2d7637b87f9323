"""The processed HDF5 file: one per dataset, read by every stage after preprocessing.

Layout of ``data/processed/<dataset>.h5``::

    samples/                         every recognition sample of the dataset, parsed once
        joint        float32 (N, C, T_max, V, M), chunked one sample per chunk
        num_frame    int32 (N,)      original length (<= T_max), every crop uses it
        label        int16 (N,)      0-based
        sample_name  bytes (N,)      NTU stem, PKU clip id or the user's sample id
        meta/<key>   int16 (N,)      setup/camera/performer/... parsed from the name
    splits/<split>/train, test       int32 sample indices (ascending): one named split per
                                     protocol on the dataset (NTU-60: xsub, xview; NTU-120:
                                     xsub, xset; PKU-MMD: xsub; the user's: the protocol name)
    detection/                       PKU-MMD I only: untrimmed videos
        videos/<id>/joint (C, T, V, M), frame_label (T,), gt (n, 4) raw label rows
        split/train, split/test      video ids
    attrs                            dataset, num_classes, class_names (JSON), splits (JSON), ...;
                                     a user dataset's file also has ``layout`` (the skeleton
                                     layout as JSON); the built-in benchmarks' files (NTU,
                                     PKU-MMD) have none: they hold NTU's 25-joint skeleton

A protocol's samples are a split's index set, so a split's train (or test) samples keep the
dataset's sample order. Determinism: every dataset is created with ``track_times=False`` and
the file carries no wall-clock or host attributes, so the same input gives byte-identical
files and stable DVC hashes. Samples are appended in blocks (never a whole dataset in RAM).
"""

from __future__ import annotations

import functools
import io
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import DataError
from .layout import SkeletonLayout, load_layout

SUBSETS = ("train", "test")  # the two halves of every named split
LAYOUT_ATTR = "layout"
SAMPLES = "samples"
SPLITS_GROUP = "splits"
# Deflate level 1 after byte shuffling: as fast as LZF here and 3-4x smaller. LZF is not an
# option: h5py's LZF compressor leaves its hash table uninitialised, so the same chunk compresses
# to different bytes from run to run (same values, different file: measured on the PKU-MMD I
# detection videos). Deflate is deterministic for a given zlib, and classic zlib has no
# CPU-specific code path (docs/reproducibility.md).
_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
# _FILL: a user-defined fill value makes HDF5 initialise every chunk it allocates. Without one, the
# part of an edge chunk beyond the dataset's extent held whatever memory it got, was compressed with
# the data, and made the file bytes (not the data) differ between two runs on the same machine.


class EncodedSample(bytes):
    """One sample's ``joint`` chunk as the file stores it (:func:`encode_sample`), made where the
    sample was computed (a pool worker), so the writing process only copies bytes into the file."""


def encode_sample(joint: np.ndarray) -> EncodedSample:
    """The bytes HDF5 stores for a float32 sample in a ``samples/joint`` chunk: the byte shuffle,
    then zlib's deflate at level 1 (the ``_COMPRESSION`` pipeline, in that order).

    Shuffle: the first byte of every value, then every second byte, ... (HDF5's H5Z_shuffle for
    4-byte values). HDF5's deflate filter is one ``compress2(level)`` call into a buffer of
    ``compressBound`` bytes, which cannot fail: the zlib stream ``zlib.compress`` returns. Whether
    Python's zlib gives the bytes HDF5's own zlib gives is checked once per process by
    :func:`encoded_samples_match`; use this only where it returned True.
    """
    values = np.ascontiguousarray(joint, dtype="<f4")
    shuffled = values.view(np.uint8).reshape(-1, 4).T.tobytes()
    return EncodedSample(zlib.compress(shuffled, _COMPRESSION["compression_opts"]))


@functools.cache
def encoded_samples_match() -> bool:
    """Whether :func:`encode_sample` gives the very chunk bytes h5py writes, on a probe sample
    written through h5py into an in-memory file.

    Python's ``zlib`` and the zlib inside HDF5 are separate libraries (h5py's wheels bundle their
    own); deflate's output is the same for the same zlib version and algorithm, but another
    implementation (zlib-ng, a patched system zlib) compresses to other valid bytes. When this
    returns False the samples go to h5py as arrays, and h5py compresses them as before.
    """
    # A (3, 300, 25, 2) sample like a normalised one: a smooth random walk, looped to the padded
    # length, exact zeros for an absent second person and untracked joints.
    rng = np.random.Generator(np.random.PCG64(0))
    walk = np.cumsum(rng.standard_normal((3, 70, 25, 2)), axis=1) * 0.01
    walk[..., 1] = 0
    walk[:, :, 3] = 0
    probe = np.concatenate([walk] * 5, axis=1)[:, :300].astype(np.float32)
    try:
        with h5py.File(io.BytesIO(), "w") as h5:
            d = _create(h5, "joint", (1, *probe.shape), "float32", chunks=(1, *probe.shape), **_COMPRESSION)
            d[0] = probe
            mask, stored = d.id.read_direct_chunk((0,) * d.ndim)
    except AttributeError:  # an h5py without direct chunk I/O (before 3.0): keep the array path
        return False
    return mask == 0 and bytes(stored) == encode_sample(probe)


def _create(group: h5py.Group, name: str, shape: tuple, dtype: Any, chunks: tuple | None = None, **kw):
    if np.dtype(dtype).kind in "fiu":
        kw.setdefault("fillvalue", 0)  # see _FILL
    return group.create_dataset(
        name, shape=shape, maxshape=(None, *shape[1:]), dtype=dtype, chunks=chunks,
        track_times=False, **kw,
    )


class SampleWriter:
    """Append samples to the ``samples`` group; :meth:`append` returns the sample's index.

    Samples are buffered and written in blocks (one resize and one slice write per dataset
    per block): per-sample resizing of nine datasets dominated preprocessing time. Memory
    stays bounded by ``block`` samples. Call ``close()`` (or use ``with``) at the end.
    """

    def __init__(self, h5: h5py.File, sample_shape: tuple[int, int, int, int], meta_keys: tuple[str, ...],
                 block: int = 64):
        self.h5 = h5
        self.sample_shape = tuple(sample_shape)
        self.meta_keys = tuple(meta_keys)
        self.block = block
        self.count = 0
        self._pending: list[tuple] = []
        self._encoded: bool | None = None  # whether samples come as EncodedSample (set by the first)
        g = h5.create_group(SAMPLES, track_order=True)
        _create(g, "joint", (0, *self.sample_shape), "float32",
                chunks=(1, *self.sample_shape), **_COMPRESSION)
        _create(g, "num_frame", (0,), "int32", chunks=(1024,))
        _create(g, "label", (0,), "int16", chunks=(1024,))
        _create(g, "sample_name", (0,), h5py.string_dtype("ascii"), chunks=(1024,))
        meta = g.create_group("meta", track_order=True)
        for key in self.meta_keys:
            _create(meta, key, (0,), "int16", chunks=(1024,))

    def append(self, name: str, joint: np.ndarray | EncodedSample, num_frame: int, label: int,
               meta: Mapping[str, int]) -> int:
        """``joint``: the (C, T_max, V, M) sample, or its chunk from :func:`encode_sample` (only
        where :func:`encoded_samples_match`; one kind per writer)."""
        encoded = isinstance(joint, EncodedSample)
        if self._encoded is None:
            self._encoded = encoded
        elif encoded != self._encoded:
            raise ValueError("SampleWriter: encoded and array samples mixed in one dataset")
        self._pending.append((name, joint, num_frame, label, [meta[k] for k in self.meta_keys]))
        self.count += 1
        if len(self._pending) >= self.block:
            self._flush()
        return self.count - 1

    def _flush(self) -> None:
        rows = self._pending
        if not rows:
            return
        g = self.h5[SAMPLES]
        lo = g["label"].shape[0]
        hi = lo + len(rows)
        names, joints, frames, labels, metas = zip(*rows, strict=True)
        encoded = isinstance(joints[0], EncodedSample)
        columns = {"joint": joints if encoded else np.stack(joints), "num_frame": np.array(frames),
                   "label": np.array(labels), "sample_name": np.array(names, dtype=object)}
        columns.update({f"meta/{k}": np.array([m[i] for m in metas]) for i, k in enumerate(self.meta_keys)})
        for key, values in columns.items():
            g[key].resize(hi, axis=0)
            if key == "joint" and encoded:
                # The chunks as h5py would have compressed them (encoded_samples_match), one per
                # sample: the same bytes at the same file offsets as the slice write below.
                dataset = g[key].id
                for i, chunk in enumerate(values):
                    dataset.write_direct_chunk((lo + i, *(0,) * len(self.sample_shape)), chunk, 0)
            else:
                g[key][lo:hi] = values
        self._pending = []

    def close(self) -> None:
        self._flush()

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_split(h5: h5py.File, split: str, subsets: Mapping[str, list[int] | np.ndarray]) -> None:
    """The named split ``split``: its train and test sample indices (stored ascending)."""
    g = h5.require_group(SPLITS_GROUP).create_group(split, track_order=True)
    for subset in SUBSETS:
        g.create_dataset(subset, data=np.sort(np.asarray(subsets[subset], dtype=np.int32)), track_times=False)


def write_detection_video(h5: h5py.File, video_id: str, joint: np.ndarray, frame_label: np.ndarray,
                          gt: np.ndarray) -> None:
    g = h5.require_group("detection").require_group("videos").create_group(video_id, track_order=True)
    g.create_dataset("joint", data=joint.astype(np.float32), track_times=False,
                     chunks=True, fillvalue=0.0, **_COMPRESSION)  # see _FILL
    g.create_dataset("frame_label", data=frame_label.astype(np.int16), track_times=False)
    g.create_dataset("gt", data=np.asarray(gt, dtype=np.int64).reshape(-1, 4), track_times=False)


def write_detection_split(h5: h5py.File, train_ids: list[str], test_ids: list[str]) -> None:
    g = h5.require_group("detection").require_group("split")
    for split, ids in (("train", train_ids), ("test", test_ids)):
        g.create_dataset(split, data=np.array(sorted(ids), dtype=h5py.string_dtype("ascii")),
                         track_times=False)


def read_attrs(path: str | Path) -> dict:
    with h5py.File(path, "r") as h5:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in h5.attrs.items()}


def read_layout(path: str | Path) -> SkeletonLayout:
    """The skeleton layout of a recognition file: its ``layout`` attribute, else NTU's 25 joints
    with the file's person count (the built-in benchmarks' files, written without the attribute)."""
    with h5py.File(path, "r") as h5:
        spec = h5.attrs.get(LAYOUT_ATTR)
        persons = h5[SAMPLES]["joint"].shape[-1] if SAMPLES in h5 else None
    if spec is None:
        if persons is None:
            raise DataError(str(path), f"has neither a {LAYOUT_ATTR!r} attribute nor samples")
        return load_layout("ntu25").with_persons(persons)
    try:
        return load_layout(json.loads(spec), key=f"{path}: {LAYOUT_ATTR}")
    except (ValueError, TypeError) as exc:
        raise DataError(str(path), f"attribute {LAYOUT_ATTR!r} is not a layout ({exc})") from None


def split_names(path: str | Path) -> tuple[str, ...]:
    """The named splits a dataset file holds (e.g. ``('xsub', 'xview')``)."""
    with h5py.File(path, "r") as h5:
        return tuple(h5[SPLITS_GROUP]) if SPLITS_GROUP in h5 else ()


def read_indices(h5: h5py.File, split: str, subset: str, path: str | Path = "") -> np.ndarray:
    """The sample indices of ``subset`` (train | test) of the named ``split``; a clear error naming
    the file and the splits it holds otherwise."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; allowed: {', '.join(SUBSETS)}")
    splits = h5.get(SPLITS_GROUP)
    if splits is None or split not in splits:
        held = ", ".join(splits) if splits is not None else "none"
        raise DataError(str(path or h5.filename), f"has no split {split!r} (its splits: {held})")
    return splits[split][subset][:].astype(np.int64)


def read_samples(path: str | Path, split: str, subset: str) -> dict[str, np.ndarray]:
    """Small per-sample arrays of one subset of a split (indices, labels, lengths, names, meta),
    not the joints."""
    with h5py.File(path, "r") as h5:
        index = read_indices(h5, split, subset, path)
        g = h5[SAMPLES]
        out = {
            "index": index,
            "num_frame": g["num_frame"][:][index],
            "label": g["label"][:][index].astype(np.int64),
            "sample_name": np.array([s.decode() for s in g["sample_name"][:][index]]),
        }
        for key in g["meta"]:
            out[f"meta/{key}"] = g["meta"][key][:][index]
    return out


def class_names(path: str | Path) -> list[str] | None:
    """The class names a dataset file carries (``class_names`` attribute), None when it has none."""
    names = read_attrs(path).get("class_names")
    return json.loads(names) if names else None


def read_detection(path: str | Path, subset: str) -> list[dict]:
    """All videos of the train or test half of the detection split as dicts of arrays (PKU-MMD I
    is small per video)."""
    with h5py.File(path, "r") as h5:
        if "detection" not in h5:
            raise DataError(str(path), "has no detection group (only PKU-MMD I provides one)")
        ids = [s.decode() for s in h5["detection/split"][subset][:]]
        videos = []
        for vid in ids:
            g = h5["detection/videos"][vid]
            videos.append({"id": vid, "joint": g["joint"][:], "frame_label": g["frame_label"][:].astype(np.int64),
                           "gt": g["gt"][:]})
    return videos
