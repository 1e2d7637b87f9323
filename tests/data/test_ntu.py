"""NTU `.skeleton` reader, sample names, splits and missing lists."""

from __future__ import annotations

import numpy as np
import pytest

from skelrep.data.ntu import (
    BENCHMARKS,
    PUBLISHED_SPLIT_SIZES,
    XSUB_TRAIN_SUBJECTS,
    InvalidNameError,
    NTUName,
    in_dataset,
    load_missing,
    ntu_split,
    parse_ntu_name,
    parse_skeleton,
    slot_xyz,
)
from skelrep.errors import DataError, SkelrepError

FIXTURE_FRAMES = {1: 103, 2: 158, 3: 104, 4: 99, 5: 54}
FIXTURE_BODY_IDS = {1: "72057594037931101", 2: "72057594037931115", 3: "72057594037931186",
                    4: "72057594037931303", 5: "72057594037931327"}
BIG_ID = str(2**63 + 12345)  # beyond int64


def fixture_name(action: int) -> str:
    return f"S001C001P001R001A{action:03d}.skeleton"


def body_joints(seed: int) -> np.ndarray:
    """(25, 12) joint fields with float32-exact values and trackingState 2."""
    rng = np.random.default_rng(seed)
    joints = np.round(rng.uniform(-2, 4, size=(25, 12)), 3)
    joints[:, 11] = 2
    return joints


def make_text(frames: list[list[tuple[str, np.ndarray]]], newline: str = "\n") -> str:
    """A `.skeleton` text: each frame is a list of (bodyID, (25, 12) joint fields)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 2 0 3 0 0.5 -0.25 2")
            lines.append(str(len(joints)))
            lines += [" ".join(f"{v:g}" for v in row) for row in joints]
    return newline.join(lines) + newline


def one_body_text(num_frames: int = 2) -> list[str]:
    """Lines of a file with one body per frame: frame f's joint j is on line 5 + 27f + j."""
    return make_text([[("7", body_joints(f))] for f in range(num_frames)]).split("\n")[:-1]


# ------------------------------------------------------------------ real fixture files


@pytest.mark.parametrize("action", sorted(FIXTURE_FRAMES))
def test_fixture_frames_and_body(ntu_fixture, action):
    path = ntu_fixture(fixture_name(action))
    skel = parse_skeleton(path.read_bytes(), str(path))
    assert skel.num_frames == FIXTURE_FRAMES[action]
    assert skel.joints.shape == (FIXTURE_FRAMES[action], 4, 25, 12)
    assert (skel.body_count == 1).all()
    assert set(skel.body_id[:, 0]) == {FIXTURE_BODY_IDS[action]}
    assert set(skel.body_id[:, 1:].ravel()) == {""}
    assert not skel.joints[:, 1:].any()


def test_a001_first_joint_and_tracking_states(ntu_fixture):
    path = ntu_fixture(fixture_name(1))
    skel = parse_skeleton(path.read_text(), str(path))
    np.testing.assert_array_equal(skel.joints[0, 0, 0, :3],
                                  np.float32([0.2181153, 0.1725972, 3.785547]))
    # first body line: "72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083 2"
    np.testing.assert_allclose(skel.body_info[0, 0], [0, 1, 1, 1, 1, 0, 0.02764709,
                                                      0.05745083, 2])
    assert set(np.unique(skel.joints[:, 0, :, 11])) == {1.0, 2.0}
    xyz = slot_xyz(skel)
    assert xyz.shape == (4, 103, 25, 3) and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz[0, 5], skel.joints[5, 0, :, :3])


def test_crlf_copy_parses_identically(ntu_fixture, tmp_path):
    path = ntu_fixture(fixture_name(1))
    crlf = tmp_path / path.name
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    a = parse_skeleton(path.read_bytes(), "lf")
    b = parse_skeleton(crlf.read_bytes(), "crlf")
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.body_info, b.body_info)
    np.testing.assert_array_equal(a.body_id, b.body_id)


def test_missing_lists(ntu_fixture):
    ntu60, ntu120 = load_missing("ntu60"), load_missing("ntu120")
    assert (len(ntu60), len(ntu120)) == (302, 535)
    assert ntu60 < ntu120
    assert not {fixture_name(a)[:-9] for a in FIXTURE_FRAMES} & ntu120
    # the package copy is the official list shipped in the fixtures
    official = ntu_fixture("NTU_RGBD120_samples_with_missing_skeletons.txt").read_text()
    assert ntu120 == {line.strip() for line in official.splitlines()[3:] if line.strip()}


# ------------------------------------------------------------------ synthetic files


def test_multi_body_and_empty_frames():
    frames = [
        [("11", body_joints(0)), (BIG_ID, body_joints(1))],
        [],
        [(str(i), body_joints(10 + i)) for i in range(4)],
    ]
    skel = parse_skeleton(make_text(frames).encode(), "multi")
    assert skel.num_frames == 3
    np.testing.assert_array_equal(skel.body_count, [2, 0, 4])
    assert list(skel.body_id[0]) == ["11", BIG_ID, "", ""]
    assert list(skel.body_id[2]) == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(skel.joints[0, 1], body_joints(1).astype(np.float32))
    np.testing.assert_array_equal(skel.joints[2, 3], body_joints(13).astype(np.float32))
    assert not skel.joints[1].any() and not skel.joints[0, 2:].any()
    np.testing.assert_allclose(skel.body_info[2, 3], [0, 1, 2, 0, 3, 0, 0.5, -0.25, 2])
    assert not skel.body_info[1].any()


def test_crlf_synthetic_and_trailing_whitespace_allowed():
    frames = [[("5", body_joints(3))]]
    lf = parse_skeleton(make_text(frames), "lf")
    crlf = parse_skeleton(make_text(frames, newline="\r\n") + "\r\n  \n", "crlf")
    np.testing.assert_array_equal(lf.joints, crlf.joints)


def _replace(lines: list[str], index: int, text: str) -> str:
    lines = list(lines)
    lines[index] = text
    return "\n".join(lines) + "\n"


def _bad_cases() -> dict[str, tuple[str, int]]:
    """name -> (file text, expected 1-based error line)."""
    lines = one_body_text(2)  # 2 frames, 1 + 2 * 28 = 57 lines
    joint_fields = lines[5].split()
    cases = {
        "truncated_in_joints": ("\n".join(lines[:40]) + "\n", 41),
        "truncated_before_frame": ("\n".join(lines[:29]) + "\n", 30),
        "24_joints": (_replace(lines, 3, "24"), 4),
        "non_numeric": (_replace(lines, 7, " ".join(["abc"] + joint_fields[1:])), 8),
        "nan": (_replace(lines, 35, " ".join(["nan"] + joint_fields[1:])), 36),
        "inf_body_info": (_replace(lines, 2, "7 0 1 2 0 3 0 inf -0.25 2"), 3),
        "13_fields": (_replace(lines, 10, " ".join(joint_fields + ["1"])), 11),
        "11_fields": (_replace(lines, 10, " ".join(joint_fields[:11])), 11),
        "body_line_9_fields": (_replace(lines, 2, "7 0 1 2 0 3 0 0.5 -0.25"), 3),
        "bad_body_id": (_replace(lines, 2, "-7 0 1 2 0 3 0 0.5 -0.25 2"), 3),
        "frame_count_0": ("0\n", 1),
        "no_body_anywhere": ("3\n0\n0\n0\n", 1),
        "negative_body_count": (_replace(lines, 1, "-1"), 2),
        "five_bodies": (make_text([[(str(i), body_joints(i)) for i in range(5)]]), 2),
        "non_integer_count": (_replace(lines, 0, "2.5"), 1),
        "trailing_garbage": ("\n".join(lines) + "\n\n1 2 3\n", 59),
        "empty": ("", 1),
    }
    return cases


@pytest.mark.parametrize("case", sorted(_bad_cases()))
def test_bad_input_names_file_and_line(case):
    text, line = _bad_cases()[case]
    source = f"bad/{case}.skeleton"
    with pytest.raises(DataError) as info:
        parse_skeleton(text.encode(), source)
    assert info.value.line == line
    assert str(info.value).startswith(f"{source}:{line}: ")


def test_truncated_message_says_truncated():
    lines = one_body_text(2)
    with pytest.raises(DataError, match="truncated"):
        parse_skeleton("\n".join(lines[:-3]), "t")


# ------------------------------------------------------------------ names and splits


def test_parse_ntu_name():
    name = parse_ntu_name("S017C002P040R002A060.skeleton")
    assert name == NTUName(setup=17, camera=2, performer=40, replication=2, action=60)
    assert name.label == 59
    assert name.stem == "S017C002P040R002A060"
    assert parse_ntu_name("S032C003P106R001A120").action == 120


@pytest.mark.parametrize("bad", ["S001C001P001R001A01", "S001C001P001R001A001.txt",
                                 "X001C001P001R001A001", "S000C001P001R001A001",
                                 "S001C004P001R001A001", "S001C001P001R001A121"])
def test_parse_ntu_name_rejects(bad):
    with pytest.raises(InvalidNameError, match=bad.split(".")[0]) as info:
        parse_ntu_name(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SkelrepError)


def test_fixture_name_splits():
    name = parse_ntu_name("S001C001P001R001A001")
    assert ntu_split(name, "ntu60", "xsub") == "train"
    assert ntu_split(name, "ntu120", "xsub") == "train"
    assert ntu_split(name, "ntu60", "xview") == "test"
    assert ntu_split(name, "ntu120", "xset") == "test"


@pytest.mark.parametrize("stem, dataset, benchmark, expected", [
    ("S001C001P003R001A001", "ntu60", "xsub", "test"),
    ("S001C001P038R001A001", "ntu60", "xsub", "train"),
    ("S020C001P045R001A001", "ntu120", "xsub", "train"),
    ("S020C001P044R001A001", "ntu120", "xsub", "test"),
    ("S020C001P103R001A001", "ntu120", "xsub", "train"),
    ("S005C002P003R001A001", "ntu60", "xview", "train"),
    ("S005C003P003R001A001", "ntu60", "xview", "train"),
    ("S032C001P003R001A120", "ntu120", "xset", "train"),
    ("S031C002P003R001A120", "ntu120", "xset", "test"),
])
def test_split_rules(stem, dataset, benchmark, expected):
    assert ntu_split(parse_ntu_name(stem), dataset, benchmark) == expected


@pytest.mark.parametrize("dataset, benchmark", [("ntu60", "xset"), ("ntu120", "xview"),
                                                ("ntu60", "cross"), ("ntu99", "xsub")])
def test_unknown_benchmark_raises(dataset, benchmark):
    with pytest.raises(SkelrepError, match="allowed: .*ntu60"):
        ntu_split(parse_ntu_name("S001C001P001R001A001"), dataset, benchmark)


def test_ntu120_sample_rejected_for_ntu60():
    name = parse_ntu_name("S018C001P001R001A001")
    assert in_dataset(name, "ntu120") and not in_dataset(name, "ntu60")
    with pytest.raises(SkelrepError, match="not a ntu60 sample"):
        ntu_split(name, "ntu60", "xsub")


def test_xsub_lists_and_published_sizes():
    assert len(XSUB_TRAIN_SUBJECTS["ntu60"]) == 20
    assert len(XSUB_TRAIN_SUBJECTS["ntu120"]) == 53
    assert XSUB_TRAIN_SUBJECTS["ntu60"] < XSUB_TRAIN_SUBJECTS["ntu120"]
    assert max(XSUB_TRAIN_SUBJECTS["ntu60"]) <= 40
    # each benchmark's train + test is the usable sample count (total - missing)
    for (dataset, benchmark), (train, test) in PUBLISHED_SPLIT_SIZES.items():
        assert benchmark in BENCHMARKS[dataset]
        assert train + test == {"ntu60": 56578, "ntu120": 113945}[dataset]
