"""The small Kinect-v1-sized calibration set: deterministic, the right joints, a valid generic dataset."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from skelrep.data.generic import LABELS_FILE, SEQUENCES_DIR
from skelrep.data.synthetic import CLASSES, is_mutual
from skelrep.data.synthetic.small import KINECT_V1_FROM_NTU, small_set_classes, write_small_kinect_set

from .test_plausibility import _preprocess

SMALL = {"classes": 4, "subjects": 2, "cameras": (1, 2)}


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_classes_are_single_person_and_spread():
    picks = small_set_classes(20)
    assert len(set(picks)) == 20 and not any(is_mutual(a) for a in picks)
    assert picks[0] == 1 and picks[-1] == 49  # the first and last single-person NTU-60 classes
    with pytest.raises(ValueError, match="classes=1"):
        small_set_classes(1)
    with pytest.raises(ValueError, match="single-person"):
        small_set_classes(50)


def test_joint_map_is_kinect_v1_order():
    from skelrep.data.layout import load_layout
    ntu, v1 = load_layout("ntu25"), load_layout("kinect_v1_20")
    names = [ntu.joint_names[i] for i in KINECT_V1_FROM_NTU]
    assert len(set(KINECT_V1_FROM_NTU)) == v1.num_joints == 20
    # SDK 1.x names and the Kinect v2 joints they correspond to
    assert names[:4] == ["SpineBase", "SpineMid", "SpineShoulder", "Head"]
    for v1_name, v2_name in zip(v1.joint_names[4:], names[4:], strict=True):
        side, part = v1_name.split("_")[1], v1_name.split("_")[0]
        assert v2_name.lower() == (part + side).lower(), (v1_name, v2_name)


def test_same_arguments_same_bytes(tmp_path):
    a = write_small_kinect_set(tmp_path / "a", **SMALL)
    b = write_small_kinect_set(tmp_path / "b", **SMALL)
    assert _digest(a) == _digest(b)
    c = write_small_kinect_set(tmp_path / "c", **SMALL, seed=1)
    assert _digest(a) != _digest(c)
    with pytest.raises(FileExistsError):
        write_small_kinect_set(tmp_path / "a", **SMALL)


def test_files_labels_and_split(tmp_path):
    root = write_small_kinect_set(tmp_path / "s", **SMALL)
    rows = list(csv.DictReader((root / LABELS_FILE).open()))
    split = {r["sample_id"]: r["split"] for r in csv.DictReader((root / "split.csv").open())}
    assert len(rows) == 4 * 2 * 2 == len(split)
    assert {r["label"] for r in rows} == {CLASSES[a].name for a in small_set_classes(4)}
    for r in rows:
        x = np.load(root / SEQUENCES_DIR / f"{r['sample_id']}.npy")
        assert x.dtype == np.float32 and x.shape[1:] == (20, 3) and 10 <= x.shape[0] <= 150
        assert np.isfinite(x).all()
        assert split[r["sample_id"]] == ("train" if int(r["subject"]) % 2 else "test")


def test_passes_the_layout_check(tmp_path):
    """Head above the hips, feet below the knees, stable bones: the 25 -> 20 map is right."""
    root = write_small_kinect_set(tmp_path / "s", **SMALL)
    summary, out, _ = _preprocess(tmp_path, root, "kinect_v1_20", "small")
    check = summary.layout_check
    assert check["passed"], check
    assert check["checks"]["head_above_hip"]["fraction"] > 0.95
