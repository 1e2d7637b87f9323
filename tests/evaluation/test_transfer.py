"""Transfer between datasets: refused, naming both layouts, when the skeleton layouts differ."""

from __future__ import annotations

import json

import h5py
import pytest

from skelrep.data.layout import load_layout
from skelrep.errors import ParamsError
from skelrep.evaluation.transfer import check_layouts, layout_differences

from ..conftest import write_tiny_h5


def _with_layout(path, layout):
    with h5py.File(path, "a") as h5:
        h5.attrs["layout"] = json.dumps(layout.to_dict())
    return path


def test_the_same_layout_transfers(tmp_path):
    a = write_tiny_h5(tmp_path / "a.h5")
    b = write_tiny_h5(tmp_path / "b.h5", seed=1)  # no layout attribute: NTU's 25 joints, as the built-ins
    check_layouts(a, b, "transfer.x", "ntu60-xsub", "pku2-xsub")
    # a user's file with NTU's skeleton under another name is the same skeleton
    renamed = load_layout({"base": "ntu25", "name": "my_kinect_v2", "persons": 2})
    check_layouts(a, _with_layout(write_tiny_h5(tmp_path / "c.h5"), renamed), "transfer.x", "ntu60-xsub", "mine")


def test_different_layouts_are_refused_naming_both(tmp_path):
    ntu = write_tiny_h5(tmp_path / "ntu.h5")
    kinect = _with_layout(write_tiny_h5(tmp_path / "kinect.h5", joints=20),
                          load_layout("kinect_v1_20").with_persons(2))
    with pytest.raises(ParamsError) as exc:
        check_layouts(ntu, kinect, "transfer.ntu-to-mine", "ntu60-xsub", "mine-xsub")
    message = str(exc.value)
    assert message.startswith("params.yaml: transfer.ntu-to-mine: the source protocol ntu60-xsub has skeleton "
                              "layout 'ntu25' (25 joints, 2 persons, 3 channels), the target mine-xsub has "
                              "'kinect_v1_20' (20 joints, 2 persons, 3 channels)")
    assert "they differ in joint_names, parents" in message and "refused" in message


def test_persons_or_channels_alone_differ_too():
    ntu = load_layout("ntu25")
    assert layout_differences(ntu.with_persons(2), ntu.with_persons(1)) == ["persons"]
    assert layout_differences(ntu, ntu) == []
    coco = load_layout("coco17")
    assert "channels" in layout_differences(ntu, coco)
