"""Raw archives -> HDF5, end to end on small synthetic archives (the real code path)."""

from __future__ import annotations

import hashlib
import logging
import os
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from skelrep.data import ntu
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.download import ArchiveSpec, write_manifest
from skelrep.data.hdf5 import read_detection, read_samples, split_names
from skelrep.data.normalize import NORMALISATIONS, pre_normalize, select_bodies_by_energy
from skelrep.data.preprocess import PreprocessConfig, preprocess_dataset
from skelrep.data.synthetic import SyntheticNTUConfig, SyntheticPKUConfig, write_ntu_archives, write_pku_archives
from skelrep.errors import DataError

from ..kill9 import kill9, kill_session, needs_kill9, start, wait_for
from .test_hdf5_determinism import DETERMINISTIC_FILTERS, _datasets

_JOINT = b"0.1 0.2 3.0 1 1 1 1 0 0 0 0 2\n"
SMALL_NTU = SyntheticNTUConfig(performers=(1, 3), setups=(1, 2), classes=3, max_frames=80)
CFG = PreprocessConfig(workers=1)


def _raw(root: Path, dataset: str, written) -> Path:
    write_manifest(root / dataset, dataset, "synthetic", [ArchiveSpec(p.name, r, None) for p, r in written])
    return root / dataset


@pytest.fixture(scope="module")
def ntu_raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    (root / "ntu60").mkdir()
    _raw(root, "ntu60", write_ntu_archives(root / "ntu60", "ntu60", SMALL_NTU, seed=0))
    return root


def _run(root: Path, out: Path, dataset="ntu60", cfg=CFG):
    return preprocess_dataset(dataset, {d: root / d for d in ("ntu60", "ntu120", "pku1", "pku2")}, out, cfg)


def _total(summary, split="xsub") -> int:
    return summary.splits[split]["train"] + summary.splits[split]["test"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hdf5_round_trip_equals_parse_and_normalise(ntu_raw, tmp_path):
    out = tmp_path / "p.h5"
    summary = _run(ntu_raw, out)
    archive = next((ntu_raw / "ntu60").glob("*.zip"))
    with zipfile.ZipFile(archive) as z:
        members = sorted(m for m in z.namelist() if m.endswith(".skeleton"))
        assert summary.num_samples == len(members)
        for split, subset in ((s, t) for s in ("xsub", "xview") for t in ("train", "test")):
            assert _total(summary, split) == len(members)  # every sample in one subset of each split
            arrays = read_samples(out, split, subset)
            names = list(arrays["sample_name"])
            assert names == sorted(names)
            assert all(ntu.ntu_split(ntu.parse_ntu_name(n), "ntu60", split) == subset for n in names)
            ds = SkeletonH5Dataset(out, split, subset)
            joint, num_frame, label, _ = ds[0]
            skel = ntu.parse_skeleton(z.read(f"nturgb+d_skeletons/{names[0]}.skeleton"), names[0])
            bodies = select_bodies_by_energy(ntu.slot_xyz(skel), keep=2)
            padded = np.zeros((3, 300, 25, 2), np.float32)
            padded[:, : bodies.shape[1]] = bodies
            expected = pre_normalize(padded, **NORMALISATIONS["umurl"])
            assert torch.equal(joint, torch.from_numpy(expected))
            assert num_frame == skel.num_frames and label == ntu.parse_ntu_name(names[0]).label
            assert arrays["meta/performer"][0] == ntu.parse_ntu_name(names[0]).performer
    with h5py.File(out) as h5:
        assert h5["samples/joint"].shape[0] == len(members)  # parsed and stored once for both splits
        assert h5["samples/joint"].chunks == (1, 3, 300, 25, 2)
        assert h5.attrs["normalisation"] == "umurl" and h5.attrs["num_classes"] == 60
    assert split_names(out) == ("xsub", "xview")


def test_same_input_gives_byte_identical_hdf5_with_one_or_two_workers(ntu_raw, tmp_path):
    _run(ntu_raw, tmp_path / "a.h5")
    _run(ntu_raw, tmp_path / "b.h5", cfg=PreprocessConfig(workers=2))
    assert _sha(tmp_path / "a.h5") == _sha(tmp_path / "b.h5")


def test_samples_compressed_in_the_workers_give_the_bytes_h5py_writes(ntu_raw, tmp_path, monkeypatch):
    """The NTU workers compress each sample's chunk themselves (hdf5.encode_sample) when that gives
    h5py's bytes; the file must be the one h5py writes from the arrays, summary included."""
    import skelrep.data.preprocess as pp

    assert pp.encoded_samples_match()  # else the test below compares the array path with itself
    encoded = _run(ntu_raw, tmp_path / "encoded.h5", cfg=PreprocessConfig(workers=2))
    monkeypatch.setattr(pp, "encoded_samples_match", lambda: False)
    arrays = _run(ntu_raw, tmp_path / "arrays.h5")
    assert _sha(tmp_path / "encoded.h5") == _sha(tmp_path / "arrays.h5")
    assert encoded.as_dict() == arrays.as_dict()  # the layout check measured in the workers too


def test_isc_normalisation_differs_and_is_recorded(ntu_raw, tmp_path):
    _run(ntu_raw, tmp_path / "u.h5")
    _run(ntu_raw, tmp_path / "i.h5", cfg=PreprocessConfig(workers=1, normalisation="isc"))
    with h5py.File(tmp_path / "u.h5") as u, h5py.File(tmp_path / "i.h5") as i:
        assert bool(i.attrs["z_align"]) and not bool(u.attrs["z_align"])
        assert not np.allclose(u["samples/joint"][0], i["samples/joint"][0])


def _with_bad_member(ntu_raw: Path, root: Path, text: bytes) -> Path:
    """A copy of the raw folder whose first .skeleton member is replaced by ``text``."""
    (root / "ntu60").mkdir(parents=True)
    src = next((ntu_raw / "ntu60").glob("*.zip"))
    dst = root / "ntu60" / src.name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        names = sorted(n for n in zin.namelist() if n.endswith(".skeleton"))
        for n in zin.namelist():
            zout.writestr(n, text if n == names[0] else zin.read(n))
    _raw(root, "ntu60", [(dst, "skeleton")])
    return root


@pytest.mark.parametrize("text, line, what", [
    (b"2\n1\n72057594037931101 0 0 0 0 0 0 0 0 2\n25\n" + b"0.1 0.2 3.0 1 1 1 1 0 0 0 0 2\n" * 3, 8, "truncated"),
    (b"1\n1\n72057594037931101 0 0 0 0 0 0 0 0 2\n24\n", 4, "25"),
    (b"1\n1\n72057594037931101 0 0 0 0 0 0 0 0 2\n25\n" + b"0.1 abc 3.0 1 1 1 1 0 0 0 0 2\n" + _JOINT * 24, 5, ""),
    (b"1\n1\n72057594037931101 0 0 0 0 0 0 0 0 2\n25\n" + _JOINT * 3 + b"nan 0.2 3 1 1 1 1 0 0 0 0 2\n"
     + _JOINT * 21, 8, ""),
    (b"0\n", 1, ""),
])
def test_bad_member_fails_naming_archive_member_and_line_and_leaves_no_output(ntu_raw, tmp_path, text, line, what):
    root = _with_bad_member(ntu_raw, tmp_path / "raw", text)
    out = tmp_path / "out.h5"
    with pytest.raises(DataError) as err:
        _run(root, out)
    assert "nturgbd_skeletons_s001_to_s017.zip:nturgb+d_skeletons/S001" in str(err.value)
    assert err.value.line == line and what in str(err.value)
    assert list(tmp_path.glob("out.h5*")) == [] and list(tmp_path.glob(".out.h5*")) == []


def test_on_error_skip_lists_the_sample_and_keeps_the_rest(ntu_raw, tmp_path):
    root = _with_bad_member(ntu_raw, tmp_path / "raw", b"1\n1\n72057594037931101 0 0 0 0 0 0 0 0 2\n24\n")
    summary = _run(root, tmp_path / "out.h5", cfg=PreprocessConfig(workers=1, on_error="skip"))
    assert len(summary.skipped) == 1 and ":4:" in summary.skipped[0]["error"]
    assert summary.as_dict()["num_skipped"] == 1
    total = sum(len(read_samples(tmp_path / "out.h5", "xview", s)["label"]) for s in ("train", "test"))
    # performers x classes x cameras x replications, minus the bad one
    assert total == summary.num_samples == 2 * 3 * 3 * 1 - 1


def test_corrupt_archive_is_reported_by_name(ntu_raw, tmp_path):
    (tmp_path / "raw" / "ntu60").mkdir(parents=True)
    bad = tmp_path / "raw" / "ntu60" / "nturgbd_skeletons_s001_to_s017.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    write_manifest(tmp_path / "raw" / "ntu60", "ntu60", "synthetic", [ArchiveSpec(bad.name, "skeleton", None)])
    with pytest.raises(DataError, match="nturgbd_skeletons_s001_to_s017.zip"):
        _run(tmp_path / "raw", tmp_path / "out.h5")


def test_unknown_split_or_subset_is_rejected(ntu_raw, tmp_path):
    _run(ntu_raw, tmp_path / "p.h5")
    with pytest.raises(DataError, match=r"p.h5: has no split 'xset' \(its splits: xsub, xview\)"):
        SkeletonH5Dataset(tmp_path / "p.h5", "xset", "train")
    with pytest.raises(ValueError, match="unknown subset 'val'"):
        SkeletonH5Dataset(tmp_path / "p.h5", "xsub", "val")


def test_pku1_trimmed_clips_and_detection_videos(tmp_path):
    cfg = SyntheticPKUConfig(train_recordings=2, test_recordings=4, actions_per_video=13)
    (tmp_path / "pku1").mkdir()
    _raw(tmp_path, "pku1", write_pku_archives(tmp_path / "pku1", 1, cfg, seed=0))
    out = tmp_path / "pku1.h5"
    summary = _run(tmp_path, out, dataset="pku1")
    assert summary.detection_videos == {"train": 6, "test": 12}
    assert summary.splits == {"xsub": {"train": 6 * 13, "test": 12 * 13}}
    videos = read_detection(out, "test")
    for v in videos:
        assert v["joint"].shape[1] == len(v["frame_label"])
        # every ground-truth segment is labelled in the per-frame vector (one_based_inclusive)
        for label, first, last, _ in v["gt"]:
            lo, hi = min(first, last) - 1, max(first, last)
            assert (v["frame_label"][lo:hi] == label).mean() > 0.9
    assert read_samples(out, "xsub", "test")["label"].max() <= 50
    for name, compression, _, _ in _datasets(out):  # detection videos included
        assert compression in DETERMINISTIC_FILTERS, name


_KILLED_RUN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from skelrep.data import ntu
    from skelrep.data.preprocess import PreprocessConfig, preprocess_dataset

    RAW, OUT, MARKS = map(Path, sys.argv[1:4])
    _parse = ntu.parse_skeleton

    def slow_parse(*args, **kwargs):  # runs in a worker; slow, so that the kill comes mid-run
        (MARKS / str(os.getpid())).touch()
        time.sleep(0.5)
        return _parse(*args, **kwargs)

    ntu.parse_skeleton = slow_parse
    if __name__ == "__main__":
        preprocess_dataset("ntu60", {d: RAW / d for d in ("ntu60", "ntu120", "pku1", "pku2")}, OUT,
                            PreprocessConfig(workers=2))
""")


@needs_kill9
def test_kill9_mid_run_leaves_no_litter_after_the_next_run_and_workers_exit_quietly(ntu_raw, tmp_path):
    script, marks, out = tmp_path / "killed_run.py", tmp_path / "marks", tmp_path / "processed" / "p.h5"
    script.write_text(_KILLED_RUN)
    marks.mkdir()

    def temps():
        return sorted(out.parent.glob(".p.h5.*.h5"))

    proc = start(script, ntu_raw, out, marks, stderr=tmp_path / "stderr.txt")
    try:
        wait_for(lambda: len(list(marks.iterdir())) >= 2 and bool(temps()), proc)  # both workers busy
        assert kill9(proc) == []  # its workers are gone
    finally:
        kill_session(proc)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert len(temps()) == 1 and not out.exists()  # the half file exists under its temp name only

    summary = _run(ntu_raw, out)  # the next run sweeps the stale temp file
    assert os.listdir(out.parent) == ["p.h5"]
    with zipfile.ZipFile(next((ntu_raw / "ntu60").glob("*.zip"))) as z:
        members = sum(m.endswith(".skeleton") for m in z.namelist())
    assert summary.num_samples == _total(summary) == members
    assert sum(len(read_samples(out, "xsub", subset)["label"]) for subset in ("train", "test")) == members


@pytest.mark.parametrize("synthetic", [True, False])
def test_swapped_label_rows_are_counted_once(tmp_path, caplog, synthetic):
    """Label rows with start > end: one message with their count, INFO for the synthetic suite
    (it writes them on purpose), a WARNING for real data; never one message per row."""
    cfg = SyntheticPKUConfig(train_recordings=1, test_recordings=4, actions_per_video=13, reversed_label_fraction=0.2)
    (tmp_path / "pku1").mkdir()
    raw = _raw(tmp_path, "pku1", write_pku_archives(tmp_path / "pku1", 1, cfg, seed=0))
    with zipfile.ZipFile(raw / "Label_PKUMMD.zip") as z:
        rows = [line.split(",") for m in z.namelist() for line in z.read(m).decode().splitlines() if line]
    reversed_rows = sum(int(r[1]) > int(r[2]) for r in rows)
    assert reversed_rows > 1
    with caplog.at_level(logging.DEBUG, logger="skelrep"):
        preprocess_dataset("pku1", {"pku1": raw}, tmp_path / "pku1.h5", CFG, synthetic=synthetic)
    messages = [r for r in caplog.records if "swapped" in r.getMessage()]
    assert len(messages) == 1
    assert messages[0].levelno == (logging.INFO if synthetic else logging.WARNING)
    assert f"pku1: {reversed_rows} label rows had start > end and were swapped" in messages[0].getMessage()
