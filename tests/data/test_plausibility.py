"""The layout check: a correct dataset passes, swapped joints warn, the data is never changed."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from skelrep.data.generic import SEQUENCES_DIR, write_example_dataset
from skelrep.data.layout import layout_roles, load_layout
from skelrep.data.plausibility import LIKELY_CAUSE, LayoutCheck
from skelrep.data.preprocess import PreprocessConfig, preprocess_generic, write_summary
from skelrep.data.sources import download_dataset, validate_data_section

CFG = PreprocessConfig(workers=1)


def _preprocess(tmp_path: Path, root: Path, layout: str, name: str, cfg=CFG):
    section = {"source": "generic", "base": name,
               "generic": {"root": str(root), "layout": layout, "splits": {"xsub": {"file": "split.csv"}},
                           "zero_frames": "interpolate", "min_frames": 20, "max_frames": 60,
                           "extra_persons": "fail"}}
    data_cfg = validate_data_section(name, section)
    raw = download_dataset(name, data_cfg, tmp_path / "raw" / name, cache_dir=tmp_path / "cache")
    out, figure = tmp_path / f"{name}.h5", tmp_path / f"{name}_skeleton.png"
    summary = preprocess_generic(name, raw, out, cfg, data_cfg["generic"], figure=figure)
    return summary, out, figure


def _swap(root: Path, a: int, b: int) -> None:
    for path in sorted((root / SEQUENCES_DIR).glob("*.npy")):
        x = np.load(path)
        x[..., [a, b], :] = x[..., [b, a], :]
        np.save(path, x)


def test_roles_of_the_builtin_layouts():
    ntu = load_layout("ntu25")
    roles = layout_roles(ntu)
    names = ntu.joint_names
    assert (names[roles.head], names[roles.hip]) == ("Head", "SpineBase")
    assert [(names[k], names[f]) for k, f in roles.legs] == [("KneeLeft", "FootLeft"), ("KneeRight", "FootRight")]
    kinect = load_layout("kinect_v1_20")
    roles = layout_roles(kinect)
    assert (kinect.joint_names[roles.head], kinect.joint_names[roles.hip]) == ("head", "hip_center")
    assert len(roles.legs) == 2
    coco = load_layout("coco17")  # no head / hip names; ankles below knees
    roles = layout_roles(coco)
    assert roles.head is None and [coco.joint_names[f] for _, f in roles.legs] == ["left_ankle", "right_ankle"]


@pytest.mark.parametrize("layout", ["kinect_v1_20", "ntu25"])
def test_correct_example_passes(tmp_path, caplog, layout):
    root = write_example_dataset(tmp_path / "src", layout, n_per_class=4, classes=3, seed=0)
    with caplog.at_level(logging.WARNING):
        summary, _, figure = _preprocess(tmp_path, root, layout, "mydata")
    check = summary.layout_check
    assert check["passed"], check
    assert check["checks"]["head_above_hip"]["fraction"] == 1.0
    assert check["checks"]["feet_below_knees"]["fraction"] == 1.0
    assert check["checks"]["bone_length_cv"]["max_median_cv"] < 0.05
    assert not [r for r in caplog.records if "layout check" in r.getMessage()]
    assert figure.read_bytes().startswith(b"\x89PNG")
    write_summary(tmp_path / "summary.json", summary)
    assert json.loads((tmp_path / "summary.json").read_text())["layout_check"]["passed"]


def test_swapped_joints_warn_and_the_data_is_unchanged(tmp_path, caplog):
    layout = load_layout("kinect_v1_20")
    head, foot = layout.joint_index("head"), layout.joint_index("foot_left")
    good = write_example_dataset(tmp_path / "good", layout, n_per_class=4, classes=3, seed=0)
    bad = write_example_dataset(tmp_path / "bad", layout, n_per_class=4, classes=3, seed=0)
    _swap(bad, head, foot)
    summary, out, figure = _preprocess(tmp_path, bad, "kinect_v1_20", "swapped")
    check = summary.layout_check
    assert not check["passed"]
    assert check["checks"]["head_above_hip"]["fraction"] < 0.1 and not check["checks"]["head_above_hip"]["passed"]
    assert not check["checks"]["feet_below_knees"]["passed"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    head_warning = [m for m in messages if "head_above_hip" in m]
    assert head_warning and "swapped" in head_warning[0] and LIKELY_CAUSE in head_warning[0]
    assert "%" in head_warning[0]  # the fraction of frames

    # the check reads the samples only: the file is the one preprocessing writes without it
    class NoCheck(LayoutCheck):
        def add(self, *args, **kwargs):
            pass

    import skelrep.data.preprocess as pp
    original = pp.LayoutCheck
    pp.LayoutCheck = NoCheck
    try:
        _, out2, _ = _preprocess(tmp_path / "nocheck", bad, "kinect_v1_20", "swapped")
    finally:
        pp.LayoutCheck = original
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(out2.read_bytes()).digest()
    assert good.exists()


def test_skeleton_figure_is_deterministic(tmp_path):
    root = write_example_dataset(tmp_path / "src", "coco17", n_per_class=2, classes=2, seed=0)
    cfg = PreprocessConfig(workers=1, normalisation="umurl")
    first = _preprocess(tmp_path / "a", root, "coco17", "cc", cfg)
    second = _preprocess(tmp_path / "b", root, "coco17", "cc", cfg)
    assert first[2].read_bytes() == second[2].read_bytes()
    assert "skipped" in first[0].layout_check  # 2-D: no check, but a drawing


def test_layout_check_on_one_sample():
    layout = load_layout("ntu25")
    check = LayoutCheck("d", layout)
    x = np.zeros((3, 10, 25, 2), dtype=np.float32)  # all zero: nothing tracked, nothing counted
    check.add("s", x, 10)
    result = check.result()
    assert check.example is None
    assert result["checks"]["bone_length_cv"] == {"skipped": "no sequence with two tracked frames"}
    assert "skipped" in result["checks"]["head_above_hip"]


def test_measure_then_merge_adds_what_add_adds():
    """The NTU workers measure each sample's part of the check; the writer merges them in order."""
    layout = load_layout("ntu25")
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((3, 12, 25, 2)).astype(np.float32) for _ in range(3)]
    samples[0][..., 0] = 0  # person 0 untracked: the example comes from the second sample
    samples[2][:, :, 4] = 0  # an untracked joint
    added, merged = LayoutCheck("d", layout), LayoutCheck("d", layout)
    for i, x in enumerate(samples):
        added.add(f"s{i}", x, 10)
        merged.merge(f"s{i}", merged.measure(x, 10))
    assert added.result() == merged.result()
    assert added.example[0] == merged.example[0] == "s1"
    assert np.array_equal(added.example[1], merged.example[1])
