"""The generic data source: index checks, split rules, sequence loading, params, docs example."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from skelrep.data.archive import open_archive
from skelrep.data.generic import (
    GENERIC_SCHEMA,
    GenericConfig,
    assign_splits,
    load_sequence,
    read_generic_index,
    sequence_from_array,
    write_example_dataset,
)
from skelrep.data.layout import SkeletonLayout, load_layout
from skelrep.errors import DataError, ParamsError

REPO = Path(__file__).resolve().parents[2]

# a 3-joint, 3-D, 2-person layout keeps hand-written arrays readable
TINY = SkeletonLayout("tiny", ("a", "b", "c"), (0, 0, 1), center_joint=0, align_x_pair=(1, 2),
                      persons=2, channels=3).validate()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def _dataset(root: Path, labels: str, arrays: dict, extra: dict | None = None) -> Path:
    """A hand-made generic dataset folder: labels.csv text + {sample_id: array}."""
    (root / "sequences").mkdir(parents=True)
    (root / "labels.csv").write_text(labels)
    for sid, array in arrays.items():
        (root / "sequences" / f"{sid}.npy").write_bytes(_npy(array))
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


def _seq(frames=4):
    return np.ones((frames, 3, 3), dtype=np.float32)


def _error(exc_info) -> str:
    return str(exc_info.value)


# --------------------------------------------------------------------------- index


def test_example_dataset_round_trip_folder_and_zip(tmp_path):
    folder = write_example_dataset(tmp_path / "ex", "ntu25", n_per_class=4, classes=3, persons=2, seed=1)
    zipped = write_example_dataset(tmp_path / "ex.zip", "ntu25", n_per_class=4, classes=3, persons=2, seed=1)
    a, b = read_generic_index(folder), read_generic_index(zipped)
    assert len(a) == 12 and a.num_classes == 3 and a.class_names is None
    assert (a.sample_ids, a.labels, a.columns) == (b.sample_ids, b.labels, b.columns)
    assert list(a.columns) == ["subject", "camera"]
    assert b.prefix == ""
    layout = load_layout("ntu25")
    with open_archive(folder) as fa, open_archive(zipped) as za:
        for sid in a.sample_ids[:3]:
            x = load_sequence(fa, sid, layout)
            assert x.dtype == np.float32 and x.shape[0] == 3 and x.shape[2:] == (25, 2)
            np.testing.assert_array_equal(x, load_sequence(za, sid, layout))


def test_zip_with_one_top_level_folder(tmp_path):
    folder = write_example_dataset(tmp_path / "mydata", "coco17", n_per_class=2, classes=["b", "a"])
    zipped = tmp_path / "mydata.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"mydata/{path.relative_to(folder).as_posix()}")
    index = read_generic_index(zipped)
    assert index.prefix == "mydata/"
    assert index.class_names == ("a", "b")  # names are numbered in sorted order
    with open_archive(zipped) as archive:
        x = load_sequence(archive, index.sample_ids[0], load_layout("coco17"))  # prefix found
        assert x.shape[0] == 2


def test_class_names_and_meta_codes(tmp_path):
    root = _dataset(tmp_path / "d", "sample_id,label,subject,room\n"
                    "s2,walk,7,kitchen\ns1,sit,007,hall\ns3,walk,,kitchen\n",
                    {s: _seq() for s in ("s1", "s2", "s3")})
    index = read_generic_index(root)
    assert index.sample_ids == ("s1", "s2", "s3")  # sorted by id
    assert index.class_names == ("sit", "walk") and index.labels == (0, 1, 1)
    assert index.lines == (3, 2, 4)
    codes, mappings = index.meta_codes()
    assert codes["subject"].tolist() == [7, 7, -1]
    assert codes["room"].tolist() == [0, 1, 1] and mappings == {"room": {"hall": 0, "kitchen": 1}}
    assert index.label_of("s2") == 1


@pytest.mark.parametrize("labels, arrays, pattern", [
    ("sample_id,subject\ns1,1\n", ["s1"], r"labels\.csv:1: missing column\(s\) label"),
    ("", [], r"labels\.csv:1: is empty"),
    ("sample_id,label\ns1,0\ns2,1\ns1,0\n", ["s1", "s2"],
     r"labels\.csv:4: duplicate sample_id 's1' \(first on line 2\)"),
    ("sample_id,label\ns1,0\ns2,1\n", ["s1"], r"labels\.csv:3: sample 's2' has no array sequences/s2\.npy"),
    ("sample_id,label\ns1,0\n", ["s1", "s9"], r"labels\.csv: sequences/s9\.npy has no row in labels\.csv"),
    ("sample_id,label\ns1,0\ns2,1,5\n", ["s1", "s2"], r"labels\.csv:3: has 3 fields, the header has 2"),
    ("sample_id,label\ns1,walk\ns2,3\n", ["s1", "s2"],
     r"labels\.csv:3: label '3' is an integer but line 2 has the class name 'walk'"),
    ("sample_id,label\ns1,-1\n", ["s1"], r"labels\.csv:2: label -1 is negative"),
    ("sample_id,label\nbad/id,0\n", [], r"labels\.csv:2: sample_id 'bad/id'"),
    ("sample_id,label\n", [], r"labels\.csv: has no samples"),
    ("sample_id,label\ns1,\n", ["s1"], r"labels\.csv:2: sample 's1' has an empty label"),
])
def test_index_errors_name_labels_csv_and_line(tmp_path, labels, arrays, pattern):
    root = _dataset(tmp_path / "d", labels, {s: _seq() for s in arrays})
    with pytest.raises(DataError, match=pattern):
        read_generic_index(root)


def test_missing_labels_csv(tmp_path):
    (tmp_path / "d" / "sequences").mkdir(parents=True)
    (tmp_path / "d" / "sequences" / "x.npy").write_bytes(_npy(_seq()))
    with pytest.raises(DataError, match="no labels.csv at the top level"):
        read_generic_index(tmp_path / "d")


# --------------------------------------------------------------------------- splits


@pytest.fixture
def subjects(tmp_path):
    ids = [f"x{i}" for i in range(6)]
    rows = "".join(f"{sid},{i % 2},{i + 1:03d},{'ab'[i % 2]}\n" for i, sid in enumerate(ids))
    return _dataset(tmp_path / "d", "sample_id,label,subject,site\n" + rows, {s: _seq() for s in ids},
                    {"split.csv": "sample_id,split\nx0,train\nx1,TEST\nx2,train\nx3,test\n"})


def test_split_listed_values(subjects):
    index = read_generic_index(subjects)
    splits = assign_splits(index, {"column": "subject", "train": [1, "2", "005"]})
    assert splits == {"train": ("x0", "x1", "x4"), "test": ("x2", "x3", "x5")}
    splits = assign_splits(index, {"column": "subject", "train": [1, 2], "test": [6]})
    assert splits == {"train": ("x0", "x1"), "test": ("x5",)}  # the rest is left out
    splits = assign_splits(index, {"column": "site", "train": ["a"]})
    assert splits == {"train": ("x0", "x2", "x4"), "test": ("x1", "x3", "x5")}


def test_split_odd_even(subjects):
    index = read_generic_index(subjects)
    odd = assign_splits(index, {"column": "subject", "train": "odd"})
    even = assign_splits(index, {"column": "subject", "train": "even"})
    assert odd == {"train": ("x0", "x2", "x4"), "test": ("x1", "x3", "x5")}
    assert even == {"train": odd["test"], "test": odd["train"]}
    with pytest.raises(DataError, match=r"labels\.csv:2: column 'site' holds 'a', not an integer"):
        assign_splits(index, {"column": "site", "train": "odd"})


def test_split_file(subjects):
    index = read_generic_index(subjects)
    splits = assign_splits(index, {"file": "split.csv"})
    assert splits == {"train": ("x0", "x2"), "test": ("x1", "x3")}  # x4, x5 unlisted: left out
    with open_archive(subjects) as archive:
        assert assign_splits(index, {"file": "split.csv"}, archive=archive) == splits


@pytest.mark.parametrize("text, pattern", [
    ("sample_id,split\nx0,train\nzz,test\n", r"split\.csv:3: sample_id 'zz' is not in labels\.csv"),
    ("sample_id,split\nx0,train\nx1,val\n", r"split\.csv:3: split 'val'; allowed: train, test"),
    ("sample_id,split\nx0,train\nx0,test\n", r"split\.csv:3: duplicate sample_id 'x0'"),
    ("sample_id,split\nx0,train\nx1,train\n", r"split\.csv: lists no 'test' sample"),
    ("id,split\nx0,train\n", r"split\.csv:1: missing column\(s\) sample_id"),
])
def test_split_file_errors(subjects, text, pattern):
    (subjects / "split.csv").write_text(text)
    with pytest.raises(DataError, match=pattern):
        assign_splits(read_generic_index(subjects), {"file": "split.csv"})


def test_empty_split_is_a_clear_error(subjects):
    index = read_generic_index(subjects)
    with pytest.raises(ParamsError, match="empty train split; column 'subject' has the values: 1, 2, 3") as e:
        assign_splits(index, {"column": "subject", "train": [42]})
    assert e.value.key == "generic.split.train"
    with pytest.raises(ParamsError, match="empty test split"):
        assign_splits(index, {"column": "subject", "train": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(ParamsError, match="empty test split") as e:
        assign_splits(index, {"column": "subject", "train": [1], "test": [42]})
    assert e.value.key == "generic.split.test"
    with pytest.raises(ParamsError, match="no column 'camera'; its extra columns: subject, site") as e:
        assign_splits(index, {"column": "camera", "train": "odd"})
    assert e.value.key == "generic.split.column"


@pytest.mark.parametrize("rule, key", [
    ({"column": "subject", "train": "prime"}, "split.train"),
    ({"column": "subject", "train": []}, "split.train"),
    ({"column": "subject", "train": "odd", "test": [1]}, "split.test"),
    ({"column": "subject", "train": [1], "test": [1]}, "split.test"),
    ({"train": [1]}, "split"),
    ({"file": "../outside.csv"}, "split.file"),
    ({"column": "subject", "train": [1], "colour": 1}, "split.colour"),
])
def test_split_rule_validation(rule, key):
    from skelrep.data.generic import split_rule

    with pytest.raises(ParamsError) as e:
        split_rule(rule, "split")
    assert e.value.key == key


# --------------------------------------------------------------------------- sequences


def test_tvc_and_tmvc_inputs_pad_persons():
    x = np.arange(4 * 3 * 3, dtype=np.float64).reshape(4, 3, 3) + 1
    one = sequence_from_array(x, "s.npy", TINY)
    assert one.shape == (3, 4, 3, 2) and one.dtype == np.float32
    np.testing.assert_array_equal(one[..., 0], x.transpose(2, 0, 1))
    assert not one[..., 1].any()
    np.testing.assert_array_equal(sequence_from_array(x[:, None], "s.npy", TINY), one)
    two = sequence_from_array(np.stack([x, -x], axis=1), "s.npy", TINY)
    np.testing.assert_array_equal(two[..., 1], -x.transpose(2, 0, 1))


def test_shape_and_value_errors_name_the_file():
    with pytest.raises(DataError,
                       match=r"s\.npy: has shape \(4, 5, 3\): 5 joints and 3 channels; expected .* V=3 and C=3"):
        sequence_from_array(np.ones((4, 5, 3)), "s.npy", TINY)
    with pytest.raises(DataError, match="2 channels"):
        sequence_from_array(np.ones((4, 3, 2)), "s.npy", TINY)
    with pytest.raises(DataError, match=r"has shape \(4, 3\)"):
        sequence_from_array(np.ones((4, 3)), "s.npy", TINY)
    with pytest.raises(DataError, match="has 3 persons, but layout 'tiny' allows at most 2"):
        sequence_from_array(np.ones((4, 3, 3, 3)), "s.npy", TINY)
    bad = np.ones((4, 3, 3))
    bad[2, 1, 0] = np.nan
    with pytest.raises(DataError,
                       match=r"s\.npy: has NaN or infinite values \(first at frame 2, person 0, joint 1 'b'\)"):
        sequence_from_array(bad, "s.npy", TINY)
    bad[2, 1, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        sequence_from_array(bad, "s.npy", TINY)
    with pytest.raises(DataError, match="dtype"):
        sequence_from_array(np.array([["a"]]), "s.npy", TINY)


def test_extra_persons_energy_keeps_the_most_active():
    rng = np.random.default_rng(0)
    still = np.ones((6, 3, 3))
    busy = rng.standard_normal((6, 3, 3))
    medium = 0.1 * rng.standard_normal((6, 3, 3)) + 1
    x = np.stack([still, medium, busy], axis=1)
    out = sequence_from_array(x, "s.npy", TINY, extra_persons="energy")
    np.testing.assert_allclose(out[..., 0], busy.transpose(2, 0, 1), rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], medium.transpose(2, 0, 1), rtol=1e-6)


def _frames(values):
    """(T,) values -> (T, V=3, C=3) frames filled with that value (0 = untracked)."""
    return np.asarray(values, dtype=np.float64)[:, None, None] * np.ones((1, 3, 3))


def test_zero_frames_keep_drop_interpolate():
    x = _frames([0, 2, 0, 0, 8, 0])
    keep = sequence_from_array(x, "s.npy", TINY, zero_frames="keep")
    np.testing.assert_array_equal(keep[0, :, 0, 0], [0, 2, 0, 0, 8, 0])
    drop = sequence_from_array(x, "s.npy", TINY, zero_frames="drop")
    np.testing.assert_array_equal(drop[0, :, 0, 0], [2, 8])
    interp = sequence_from_array(x, "s.npy", TINY, zero_frames="interpolate")
    np.testing.assert_allclose(interp[0, :, 0, 0], [2, 2, 4, 6, 8, 8])  # edges copy
    assert not interp[..., 1].any()  # the absent second person stays absent


def test_interpolation_does_not_fade_a_person_in():
    x = np.zeros((4, 2, 3, 3))
    x[:, 0] = _frames([1, 0, 0, 4])
    x[3, 1] = 5.0  # person 1 appears only in the last frame
    out = sequence_from_array(x, "s.npy", TINY, zero_frames="interpolate")
    np.testing.assert_allclose(out[0, :, 0, 0], [1, 2, 3, 4])
    np.testing.assert_allclose(out[0, :, 0, 1], [0, 0, 5, 5])  # nearer frame copied, no 5/3


def test_no_tracked_frame_is_an_error_naming_the_sample():
    for mode in ("keep", "drop", "interpolate"):
        with pytest.raises(DataError, match=r"seq_07\.npy: has no tracked frame \(all 5 frames"):
            sequence_from_array(np.zeros((5, 3, 3)), "seq_07.npy", TINY, zero_frames=mode)


def test_short_sequences_are_resampled_linearly():
    out = sequence_from_array(_frames([1, 3, 5]), "s.npy", TINY, min_frames=5)
    np.testing.assert_allclose(out[0, :, 0, 0], [1, 2, 3, 4, 5])
    single = sequence_from_array(_frames([7]), "s.npy", TINY, min_frames=3)
    np.testing.assert_allclose(single[0, :, 0, 0], [7, 7, 7])
    # resampling follows zero-frame handling
    dropped = sequence_from_array(_frames([0, 2, 0, 4, 0]), "s.npy", TINY, zero_frames="drop", min_frames=3)
    np.testing.assert_allclose(dropped[0, :, 0, 0], [2, 3, 4])
    long = sequence_from_array(_frames([1, 2, 3]), "s.npy", TINY, min_frames=2)
    assert long.shape[1] == 3  # never shortened


def test_load_sequence_errors(tmp_path):
    root = _dataset(tmp_path / "d", "sample_id,label\ns1,0\n", {"s1": np.zeros((3, 3, 3))})
    (root / "sequences" / "s2.npy").write_bytes(b"not an array")
    with open_archive(root) as archive:
        with pytest.raises(DataError, match=r"sequences/s1\.npy: has no tracked frame"):
            load_sequence(archive, "s1", TINY)
        with pytest.raises(DataError, match=r"s2\.npy: is not a valid \.npy array"):
            load_sequence(archive, "s2", TINY)
        with pytest.raises(DataError, match=r"has no member 'sequences/s3\.npy'"):
            load_sequence(archive, "s3", TINY)


# --------------------------------------------------------------------------- params


def _section(**kw) -> dict:
    section = {"root": "data/raw/mydata", "layout": "kinect_v1_20",
               "splits": {"xsub": {"column": "subject", "train": "odd"}}, "zero_frames": "interpolate",
               "min_frames": 16, "max_frames": 300, "extra_persons": "fail"}
    section.update(kw)
    return section


def test_generic_params():
    assert list(GENERIC_SCHEMA) == ["root", "layout", "splits", "zero_frames", "min_frames",
                                    "max_frames", "extra_persons"]
    cfg = GenericConfig.from_params(_section())
    assert cfg.layout.name == "kinect_v1_20" and cfg.splits == {"xsub": {"column": "subject", "train": "odd"}}
    inline = GenericConfig.from_params(_section(layout={"base": "coco17", "persons": 2}))
    assert inline.layout.persons == 2
    for kw, key in [({"zero_frames": "fill"}, "generic.zero_frames"),
                    ({"min_frames": 400}, "generic.min_frames"),
                    ({"layout": "ntu26"}, "generic.layout"),
                    ({"layout": {"base": "coco17", "center": "neck"}}, "generic.layout.center"),
                    ({"splits": {"xsub": {"column": "subject", "train": "prime"}}}, "generic.splits.xsub.train"),
                    ({"splits": {}}, "generic.splits"),
                    ({"splits": {"x/y": {"column": "subject", "train": "odd"}}}, "generic.splits.x/y"),
                    ({"extra_persons": "drop"}, "generic.extra_persons")]:
        with pytest.raises(ParamsError) as e:
            GenericConfig.from_params(_section(**kw))
        assert e.value.key == key, kw
    with pytest.raises(ParamsError, match="missing") as e:
        GenericConfig.from_params({k: v for k, v in _section().items() if k != "splits"})
    assert e.value.key == "generic.splits"


def test_config_load_uses_its_settings(tmp_path):
    root = write_example_dataset(tmp_path / "ex", "kinect_v1_20", n_per_class=2, classes=2,
                                 frames=(8, 10), zero_frame_prob=0.3, seed=3)
    cfg = GenericConfig.from_params(_section(root=str(root), min_frames=40, zero_frames="drop"))
    index = read_generic_index(cfg.root)
    with open_archive(cfg.root) as archive:
        for sid in index.sample_ids:
            x = cfg.load(archive, sid, index.prefix)
            assert x.shape == (3, 40, 20, 1)
            assert np.all(np.any(x != 0, axis=(0, 2, 3)))  # no untracked frame left


# --------------------------------------------------------------------------- docs


def _worked_example(path: Path) -> str:
    return re.search(r"<!-- worked-example -->\s*```python\n(.*?)```", path.read_text(), re.S).group(1)


def test_docs_worked_example_runs(tmp_path, monkeypatch):
    block = _worked_example(REPO / "docs" / "custom_data.md")
    assert _worked_example(REPO / "README.md") == block  # the README shows the same example
    code_lines = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith(("import", "from"))]
    assert len(code_lines) <= 22  # "a ~20-line snippet"
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "my_raw_txt"
    raw.mkdir()
    rng = np.random.default_rng(0)
    for name, frames in (("wave_s01_e01", 5), ("wave_s02_e01", 4), ("pick_up_s01_e02", 6)):
        data = rng.standard_normal((frames, 60))
        data[1, 3:6] = np.nan  # one untracked joint
        np.savetxt(raw / f"{name}.txt", data, delimiter=",")
    exec(compile(block, "custom_data.md", "exec"), {})
    index = read_generic_index("data/import/mydata")
    assert index.class_names == ("pick_up", "wave")
    assert dict(zip(index.sample_ids, index.columns["subject"], strict=True)) == {
        "pick_up_s01_e02": "1", "wave_s01_e01": "1", "wave_s02_e01": "2"}
    assert assign_splits(index, {"column": "subject", "train": "odd"})["test"] == ("wave_s02_e01",)
    with open_archive("data/import/mydata") as archive:
        x = load_sequence(archive, "wave_s01_e01", load_layout("kinect_v1_20"))
    assert x.shape == (3, 5, 20, 1) and x[:, 1, 1, 0].tolist() == [0, 0, 0]
