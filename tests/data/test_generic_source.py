"""The generic source in the pipeline: the download stage copies a folder or unpacks a zip into
data/raw/<dataset>; preprocessing writes the standard HDF5 file with the layout attached."""

from __future__ import annotations

import copy
import hashlib
import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.download import read_manifest
from skelrep.data.generic import DATASET_DIR, LAYOUT_FILE, read_generic_index, write_example_dataset
from skelrep.data.hdf5 import read_attrs, read_layout, read_samples
from skelrep.data.layout import load_layout
from skelrep.data.preprocess import PreprocessConfig, _generic_task, _GenericSample, preprocess_generic
from skelrep.data.sources import download_dataset, validate_data_section
from skelrep.errors import DataError, ParamsError

SECTION = {"source": "generic", "base": "mydata",
           "generic": {"root": "", "layout": "kinect_v1_20", "splits": {"xsub": {"column": "subject", "train": "odd"}},
                       "zero_frames": "interpolate", "min_frames": 20, "max_frames": 40, "extra_persons": "fail"}}
CFG = PreprocessConfig(workers=1)


def _section(root, **generic) -> dict:
    section = copy.deepcopy(SECTION)
    section["generic"].update(root=str(root), **generic)
    return section


def _download(tmp_path, root, dataset="mydata", **generic) -> Path:
    cfg = validate_data_section(dataset, _section(root, **generic))
    return download_dataset(dataset, cfg, tmp_path / "raw" / dataset, cache_dir=tmp_path / "cache")


def _preprocess(raw: Path, out: Path, section: dict, cfg=CFG) -> object:
    data_cfg = validate_data_section("mydata", section)
    return preprocess_generic("mydata", raw, out, cfg, data_cfg["generic"])


def _count(summary) -> int:
    return sum(summary.splits["xsub"].values())


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src") / "mydata"
    return write_example_dataset(root, "kinect_v1_20", n_per_class=4, classes=["clap", "wave"], frames=(8, 30),
                                 zero_frame_prob=0.2, seed=0)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- params


def test_data_section_sources_by_dataset_name():
    cfg = validate_data_section("mydata", _section("x"))
    assert cfg["source"] == "generic" and cfg["generic"].layout.name == "kinect_v1_20"
    with pytest.raises(ParamsError, match="not a built-in dataset.*'generic'") as e:
        validate_data_section("mydata", {"source": "synthetic", "seed": 0, "synthetic": {}, "archives": []})
    assert e.value.key == "data.mydata.source"
    with pytest.raises(ParamsError, match="built-in benchmark dataset.*another name") as e:
        validate_data_section("ntu60", _section("x"))
    assert e.value.key == "data.ntu60.source"
    with pytest.raises(ParamsError) as e:
        validate_data_section("mydata", _section("x", layout={"base": "kinect_v1_20", "center": "navel"}))
    assert e.value.key == "data.mydata.generic.layout.center"


# --------------------------------------------------------------------------- download


def test_folder_and_zip_give_the_same_raw_folder(tmp_path, example):
    from_folder = _download(tmp_path / "a", example)
    zipped = write_example_dataset(tmp_path / "mydata.zip", "kinect_v1_20", n_per_class=4, classes=["clap", "wave"],
                                   frames=(8, 30), zero_frame_prob=0.2, seed=0)
    from_zip = _download(tmp_path / "b", zipped)
    files = sorted(p.relative_to(from_folder).as_posix() for p in from_folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(from_zip).as_posix() for p in from_zip.rglob("*") if p.is_file())
    assert "dataset/labels.csv" in files and "dataset/split.csv" in files and LAYOUT_FILE in files
    assert all(_sha(from_folder / f) == _sha(from_zip / f) for f in files if f != "manifest.json")
    manifest = read_manifest(from_folder)
    assert manifest["source"] == "generic"
    assert [(a["name"], a["role"]) for a in manifest["archives"]] == [("dataset", "skeleton"), (LAYOUT_FILE, "layout")]
    assert manifest["archives"] == read_manifest(from_zip)["archives"]
    assert str(tmp_path) not in (from_folder / "manifest.json").read_text()
    assert load_layout(from_folder / LAYOUT_FILE) == load_layout("kinect_v1_20")
    assert read_generic_index(from_folder / "dataset").sample_ids == read_generic_index(example).sample_ids


def test_download_checks_the_source_and_writes_nothing_on_error(tmp_path, example):
    broken = tmp_path / "broken"
    write_example_dataset(broken, "kinect_v1_20", n_per_class=2, classes=2, seed=0)
    first = sorted((broken / "sequences").glob("*.npy"))[0]
    first.unlink()
    with pytest.raises(DataError, match=rf"labels.csv:\d+: sample '{first.stem}' has no array"):
        _download(tmp_path, broken)
    with pytest.raises(ParamsError, match="does not exist") as e:
        _download(tmp_path, tmp_path / "nowhere")
    assert e.value.key == "data.mydata.generic.root"
    with pytest.raises(ParamsError, match="column 'session'") as e:
        _download(tmp_path, example, splits={"xsub": {"column": "session", "train": [1]}})
    assert e.value.key == "data.mydata.generic.splits.xsub.column"
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


# --------------------------------------------------------------------------- preprocess


@pytest.fixture(scope="module")
def raw(tmp_path_factory, example) -> Path:
    return _download(tmp_path_factory.mktemp("dl"), example)


def test_preprocess_writes_the_standard_file_with_the_layout(tmp_path, raw, example):
    out = tmp_path / "p.h5"
    summary = _preprocess(raw, out, _section(example))
    index = read_generic_index(example)
    assert summary.splits == {"xsub": {"train": 4, "test": 4}} and not summary.skipped
    with h5py.File(out, "r") as h5:
        assert sorted(h5["samples"]) == ["joint", "label", "meta", "num_frame", "sample_name"]
        assert sorted(h5["samples/meta"]) == ["camera", "subject"]
        longest = max(np.load(f, mmap_mode="r").shape[0] for f in (example / "sequences").glob("*.npy"))
        assert longest < 40  # T_max: the longest sequence, not max_frames
        assert h5["samples/joint"].shape == (8, 3, longest, 20, 1)
        assert sorted(h5["splits/xsub"]) == ["test", "train"]
    attrs = read_attrs(out)
    assert attrs["num_classes"] == 2 and json.loads(attrs["class_names"]) == ["clap", "wave"]
    assert attrs["dataset"] == "mydata" and json.loads(attrs["splits"]) == ["xsub"]
    assert json.loads(attrs["split_rules"]) == {"xsub": {"column": "subject", "train": "odd"}}
    assert read_layout(out) == load_layout("kinect_v1_20")
    train = read_samples(out, "xsub", "train")
    assert set(train["meta/subject"]) == {1, 3}  # odd subjects train
    assert [index.label_of(s) for s in train["sample_name"]] == train["label"].tolist()
    ds = SkeletonH5Dataset(out, "xsub", "train")
    assert ds.layout == load_layout("kinect_v1_20")
    for i in range(len(ds)):
        joint, num_frame, _, _ = ds[i]
        assert 20 <= num_frame <= 30  # short sequences resampled to min_frames
        # untracked frames interpolated, centred on the spine (joint 1) by the normalisation
        assert joint[:, :num_frame].abs().sum(dim=(0, 2, 3)).gt(0).all()
        assert joint[:, :num_frame, 1].abs().max() < 1e-5
    again = tmp_path / "again.h5"
    _preprocess(raw, again, _section(example))
    assert _sha(again) == _sha(out)  # deterministic bytes


def _written(root: Path, lengths: list[int]) -> Path:
    """A generic dataset whose sequences have the given lengths (two classes, alternating)."""
    write_example_dataset(root, "kinect_v1_20", n_per_class=len(lengths) // 2, classes=["clap", "wave"],
                          frames=(30, 30), seed=0)
    for path, length in zip(sorted((root / "sequences").glob("*.npy")), lengths, strict=True):
        x = np.load(path)
        reps = -(-length // len(x))
        np.save(path, np.concatenate([x] * reps)[:length])
    return root


@pytest.mark.parametrize("lengths,generic,t_max", [
    ([12, 30, 45, 18], {"min_frames": 10, "max_frames": 300}, 45),   # the longest sequence
    ([12, 30, 45, 18], {"min_frames": 10, "max_frames": 40}, 40),    # at most max_frames
    ([12, 14, 9, 13], {"min_frames": 20, "max_frames": 300}, 20),    # short ones stretched to min_frames
])
def test_t_max_is_the_longest_sequence_at_most_max_frames(tmp_path, lengths, generic, t_max):
    """Short sequences are not stored padded to max_frames; every frame stored is the one a file
    padded to max_frames holds (later stages take T from the file and read num_frame frames)."""
    root = _written(tmp_path / "src", lengths)
    raw = _download(tmp_path / "a", root, **generic)
    out = tmp_path / "p.h5"
    _preprocess(raw, out, _section(root, **generic))
    attrs = read_attrs(out)
    assert (attrs["t_max"], attrs["max_frames"]) == (t_max, generic["max_frames"])
    ds = SkeletonH5Dataset(out, "xsub", "train")
    assert ds.sample_shape[1] == t_max
    with h5py.File(out, "r") as h5:
        assert h5["samples/joint"].shape[2] == t_max
        frames = h5["samples/num_frame"][:]
        joint = h5["samples/joint"][:]
        names = h5["samples/sample_name"].asstr()[:].tolist()
    stretched = [min(max(n, generic["min_frames"]), generic["max_frames"]) for n in lengths]
    assert sorted(frames.tolist()) == sorted(stretched)
    # the same samples padded to 300 frames: the same frames up to T_max (the valid ones, then
    # the 2s-AGCN loop fill of the normalisation)
    padded = _GenericSample(load_layout("kinect_v1_20"), "interpolate", generic["min_frames"], 300,
                            "fail", False, True, "fail")
    for pos, sid in enumerate(names):
        _, reference, n, _ = _generic_task((str(raw / DATASET_DIR), sid, padded))
        assert min(n, t_max) == frames[pos] and np.array_equal(reference[:, :t_max], joint[pos])


def test_a_dataset_holds_several_named_splits_of_one_set_of_samples(tmp_path, raw, example):
    out = tmp_path / "p.h5"
    splits = {"xsub": {"column": "subject", "train": "odd"}, "first2": {"column": "subject", "train": [1, 2]}}
    summary = _preprocess(raw, out, _section(example, splits=splits))
    assert set(read_samples(out, "first2", "train")["meta/subject"]) == {1, 2}  # not odd/even
    assert set(read_samples(out, "first2", "test")["meta/subject"]) == {3, 4}
    assert set(read_samples(out, "xsub", "train")["meta/subject"]) == {1, 3}
    assert summary.num_samples == 8 and summary.splits == {"xsub": {"train": 4, "test": 4},
                                                          "first2": {"train": 4, "test": 4}}
    with h5py.File(out, "r") as h5:
        assert len(h5["samples/label"]) == 8  # each sample stored once
    assert json.loads(read_attrs(out)["split_rules"]) == splits


def test_samples_in_no_split_are_not_stored(tmp_path, raw, example):
    out = tmp_path / "p.h5"
    summary = _preprocess(raw, out, _section(example, splits={"s": {"column": "subject", "train": [1],
                                                                     "test": [2]}}))
    assert summary.num_samples == 4 and summary.splits == {"s": {"train": 2, "test": 2}}


def _with_blank_sample(tmp_path, example) -> tuple[Path, str]:
    root = tmp_path / "blank"
    write_example_dataset(root, "kinect_v1_20", n_per_class=4, classes=["clap", "wave"], frames=(8, 30), seed=0)
    victim = sorted((root / "sequences").glob("*.npy"))[0]
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((12, 20, 3), np.float32))
    victim.write_bytes(buffer.getvalue())
    return root, victim.stem


def test_a_sequence_without_any_tracked_frame_is_named(tmp_path, example):
    root, victim = _with_blank_sample(tmp_path, example)
    raw_dir = _download(tmp_path, root)
    with pytest.raises(DataError, match=rf"sequences/{victim}.npy: has no tracked frame"):
        _preprocess(raw_dir, tmp_path / "p.h5", _section(root))
    assert not (tmp_path / "p.h5").exists()
    summary = _preprocess(raw_dir, tmp_path / "p.h5", _section(root), cfg=PreprocessConfig(workers=1, on_error="skip"))
    assert [s["sample"] for s in summary.skipped] == [victim]
    assert _count(summary) == summary.num_samples == 7


def test_normalisation_follows_the_layouts_alignment_joints(tmp_path):
    root = write_example_dataset(tmp_path / "coco", "coco17", n_per_class=2, classes=2, seed=0)
    raw_dir = _download(tmp_path, root, layout="coco17")
    with pytest.raises(ParamsError, match="no align_z joints") as e:
        _preprocess(raw_dir, tmp_path / "p.h5", _section(root, layout="coco17"),
                    cfg=PreprocessConfig(workers=1, normalisation="isc"))
    assert e.value.key == "preprocess.normalisation"
    _preprocess(raw_dir, tmp_path / "p.h5", _section(root, layout="coco17"))
    attrs = read_attrs(tmp_path / "p.h5")
    assert attrs["x_align"] and not attrs["z_align"]
    # shoulders (left 5 - right 6) along +x in the first frame, in the image plane
    joint = SkeletonH5Dataset(tmp_path / "p.h5", "xsub", "train")[0][0]
    axis = joint[:, 0, 5, 0] - joint[:, 0, 6, 0]
    assert joint.shape[0] == 2 and axis[0] > 0 and abs(axis[1]) < 1e-5

    unaligned = {"base": "coco17", "align_x": None}
    raw_dir = _download(tmp_path / "u", root, layout=unaligned)
    _preprocess(raw_dir, tmp_path / "u.h5", _section(root, layout=unaligned))
    assert not read_attrs(tmp_path / "u.h5")["x_align"]


def test_large_integer_columns_are_coded_for_the_int16_meta(tmp_path):
    root = write_example_dataset(tmp_path / "ex", "kinect_v1_20", n_per_class=2, classes=2, seed=0)
    labels = (root / "labels.csv").read_text().splitlines()
    rows = [labels[0] + ",session"] + [f"{row},{40000 + 100 * i}" for i, row in enumerate(labels[1:])]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    raw_dir = _download(tmp_path, root)
    _preprocess(raw_dir, tmp_path / "p.h5", _section(root))
    codes = json.loads(read_attrs(tmp_path / "p.h5")["meta_codes"])
    assert codes == {"session": {str(40000 + 100 * i): i for i in range(4)}}
    sessions = np.concatenate([read_samples(tmp_path / "p.h5", "xsub", s)["meta/session"] for s in ("train", "test")])
    assert sorted(sessions.tolist()) == [0, 1, 2, 3]
