"""Class names for figures: the user's own, the synthetic suite's, the official NTU action list."""

from __future__ import annotations

import h5py

from skelrep.data.class_names import NTU_ACTIONS, builtin_class_names, dataset_class_names
from skelrep.data.synthetic.actions import CLASSES, is_mutual, pku_to_ntu_class
from skelrep.evaluation.feature_file import label_names

from ..conftest import write_tiny_h5


def test_ntu_action_list():
    assert len(NTU_ACTIONS) == 120 and len(set(NTU_ACTIONS)) == 120
    assert NTU_ACTIONS[0] == "drink water" and NTU_ACTIONS[59] == "walking apart from each other"
    # anchors: the first two-person actions of each half, A058, the first of the extension
    assert [NTU_ACTIONS[a - 1] for a in (50, 58, 61, 106)] == [
        "punching/slapping other person", "handshaking", "put on headphone", "hit other person with something"]
    assert is_mutual(50) and is_mutual(106) and not is_mutual(49) and not is_mutual(105)


def test_builtin_names_follow_the_source():
    assert builtin_class_names("ntu60", "official", 60) == list(NTU_ACTIONS[:60])
    assert builtin_class_names("ntu120", "official", 120)[-1] == "rock-paper-scissors"
    synthetic = builtin_class_names("ntu60", "synthetic", 60)
    assert synthetic == [CLASSES[a].name for a in range(1, 61)] and synthetic[0] != NTU_ACTIONS[0]
    # PKU-MMD labels (1-based in the label files, 0-based in the dataset file) map onto the synthetic motions
    assert builtin_class_names("pku1", "synthetic", 51)[41] == CLASSES[pku_to_ntu_class(42)].name
    assert builtin_class_names("pku2", "official", 51)[:2] == ["label 1", "label 2"]
    assert builtin_class_names("mydata", "generic", 3) is None


def test_a_dataset_file_names_its_classes(tmp_path):
    path = write_tiny_h5(tmp_path / "x.h5", classes=4)
    assert dataset_class_names(path, "generic") is None  # no names, not a built-in dataset
    with h5py.File(path, "a") as h5:
        h5.attrs["dataset"] = "ntu60"
        h5.attrs["num_classes"] = 60
    assert dataset_class_names(path, "official")[:2] == ["drink water", "eat meal/snack"]
    with h5py.File(path, "a") as h5:
        h5.attrs["class_names"] = '["clap", "kick"]'
    assert dataset_class_names(path, "official") == ["clap", "kick"]  # the file's own names first


def test_label_names_fall_back_to_ids():
    assert label_names([1, 0, 5], ["a", "b"]) == ["b", "a", "5"]
    assert label_names([2], None) == ["2"]
