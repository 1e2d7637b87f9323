"""PKU-MMD skeleton, label and split files, clip cutting and frame labels."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from skelrep.data.pku import (
    clip_range,
    cut_clip,
    frame_labels,
    parse_pku_labels,
    parse_pku_skeleton,
    parse_pku_split,
    parse_pku_video_name,
)
from skelrep.errors import DataError, SkelrepError


def frame_line(seed: int) -> str:
    values = np.round(np.random.default_rng(seed).uniform(-1, 3, 150), 6)
    return " ".join(f"{v:.6f}" for v in values)


# ------------------------------------------------------------------ skeleton files


def test_real_skeleton_file(pku_fixture):
    path = pku_fixture("A10N08-L.txt")
    video = parse_pku_skeleton(path.read_bytes(), str(path))
    assert video.shape == (1040, 2, 25, 3) and video.dtype == np.float32
    assert video[:, 0].any(axis=(1, 2)).all()
    assert int(video[:, 1].any(axis=(1, 2)).sum()) == 728
    first = np.float32(path.read_text().split("\n", 1)[0].split()[:3])
    np.testing.assert_array_equal(video[0, 0, 0], first)


def test_synthetic_skeleton_layout_and_crlf():
    lines = [frame_line(s) for s in range(3)]
    video = parse_pku_skeleton("\r\n".join(lines) + "\r\n\r\n", "v.txt")
    values = np.float32(lines[2].split())
    np.testing.assert_array_equal(video[2, 0, 24], values[72:75])  # body 1, joint 25
    np.testing.assert_array_equal(video[2, 1, 0], values[75:78])  # body 2, joint 1


@pytest.mark.parametrize("case, line", [("short", 2), ("word", 3), ("nan", 1), ("inf", 3),
                                        ("empty", 1), ("blank_inside", 2)])
def test_bad_skeleton_file(case, line):
    lines = [frame_line(s) for s in range(3)]
    if case == "short":
        lines[1] = " ".join(lines[1].split()[:149])
    elif case == "word":
        lines[2] = lines[2].replace(" ", " x ", 1).rsplit(" ", 1)[0]
    elif case == "nan":
        lines[0] = "nan " + lines[0].split(" ", 1)[1]
    elif case == "inf":
        lines[2] = lines[2].rsplit(" ", 1)[0] + " -inf"
    elif case == "empty":
        lines = []
    else:
        lines.insert(1, "")
    with pytest.raises(DataError) as info:
        parse_pku_skeleton("\n".join(lines), "clip.txt")
    assert str(info.value).startswith(f"clip.txt:{line}: ")


# ------------------------------------------------------------------ label files


def test_labels_parse_and_swap(caplog):
    text = "3,10,20,1\n\n51, 40 ,30,2\r\n"
    with caplog.at_level(logging.WARNING, logger="skelrep.data.pku"):
        rows = parse_pku_labels(text, "0002-L.txt")
    np.testing.assert_array_equal(rows, [[3, 10, 20, 1], [51, 30, 40, 2]])
    assert rows.dtype == np.int64
    assert "0002-L.txt:3" in caplog.text and "swapped" in caplog.text


@pytest.mark.parametrize("bad", ["3,10,20", "3,10,20,1,5", "3,a,20,1", "0,10,20,1",
                                 "52,10,20,1", "3,-1,20,1"])
def test_bad_label_line(bad):
    with pytest.raises(DataError, match=r"^lab\.txt:2: "):
        parse_pku_labels(f"1,1,5,1\n{bad}\n", "lab.txt")


def test_empty_label_file_gives_no_rows():
    assert parse_pku_labels("\n", "x").shape == (0, 4)


# ------------------------------------------------------------------ split files


def test_official_cross_subject_split(pku_fixture):
    path = pku_fixture("cross-subject_v1.txt")
    train, test = parse_pku_split(path.read_bytes(), str(path))
    assert (len(train), len(test)) == (944, 132)
    assert sorted(test) == [f"{v:04d}-{view}" for v in range(291, 335) for view in "LMR"]
    assert "0002-L" in train and not set(train) & set(test)


def test_split_accepts_correct_spelling_and_rejects_malformed():
    good = "Training videos: \nA01N01-L, A01N01-M,\nValidation videos: \nA02N01-R,\n"
    assert parse_pku_split(good, "s") == (["A01N01-L", "A01N01-M"], ["A02N01-R"])
    with pytest.raises(DataError, match="^s:3: .*header"):
        parse_pku_split(good.replace("Validation", "Testing"), "s")
    with pytest.raises(DataError, match="^s:2: .*not a PKU-MMD video id"):
        parse_pku_split(good.replace("A01N01-M", "A01N01-X"), "s")
    with pytest.raises(DataError, match="^s: expected 4"):
        parse_pku_split("Training videos: \n0002-L,\n", "s")
    with pytest.raises(DataError, match="both lists"):
        parse_pku_split(good.replace("A02N01-R", "A01N01-L"), "s")


def test_video_names():
    assert parse_pku_video_name("0291-M") == {"phase": 1, "video": 291, "view": "M"}
    assert parse_pku_video_name("A10N08-L.txt") == {"phase": 2, "sequence": 10, "subject": 8,
                                                    "view": "L"}
    for bad in ("291-M", "0291-X", "A1N08-L", "A10N08L"):
        with pytest.raises(SkelrepError, match=bad):
            parse_pku_video_name(bad)


# ------------------------------------------------------------------ clips and labels


def test_clip_range_conventions():
    assert clip_range(11, 20, "one_based_inclusive") == (10, 20)
    assert clip_range(11, 20, "zero_based_half_open") == (11, 20)
    with pytest.raises(SkelrepError, match="one_based_inclusive"):
        clip_range(1, 2, "inclusive")


def test_cut_clip_policies():
    video = np.arange(1000, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 25, 3))
    head = cut_clip(video, 100, 500, max_frames=300, long_policy="head")
    centre = cut_clip(video, 100, 500, max_frames=300, long_policy="centre")
    assert head.shape == centre.shape == (300, 2, 25, 3)
    assert (head[0, 0, 0, 0], head[-1, 0, 0, 0]) == (100, 399)
    assert (centre[0, 0, 0, 0], centre[-1, 0, 0, 0]) == (150, 449)
    short = cut_clip(video, 990, 1200)  # clipped to the video end
    assert short.shape[0] == 10 and short[0, 0, 0, 0] == 990
    assert cut_clip(video, 1100, 1200).shape[0] == 0
    with pytest.raises(SkelrepError, match="head"):
        cut_clip(video, 0, 10, long_policy="tail")


def test_frame_labels_overlap_and_conventions(caplog):
    rows = np.array([[5, 3, 6, 1], [7, 6, 8, 1], [9, 18, 30, 2]])
    with caplog.at_level(logging.WARNING, logger="skelrep.data.pku"):
        one = frame_labels(20, rows, "one_based_inclusive", source="v")
    # [2, 6) -> 5, then [5, 8) -> 7 overwrites frame 5, then [17, 20) -> 9 (clipped)
    expected = np.zeros(20, dtype=np.int16)
    expected[2:5], expected[5:8], expected[17:] = 5, 7, 9
    np.testing.assert_array_equal(one, expected)
    assert one.dtype == np.int16
    assert "v: 1 frames" in caplog.text
    zero = frame_labels(20, rows, "zero_based_half_open")
    expected = np.zeros(20, dtype=np.int16)
    expected[3:6], expected[6:8], expected[18:] = 5, 7, 9
    np.testing.assert_array_equal(zero, expected)
