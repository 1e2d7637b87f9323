"""A user's own skeleton data through every stage, for every method: a generic dataset (Kinect v1,
20 joints, 1 person, 3-D; COCO 17 keypoints, 2 persons, 2-D) and a protocol in params.yaml, then
the stage entry points DVC runs: download, preprocess, pretrain, features, knn, linear,
and the report (which keeps to the built-in benchmarks)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.generic import write_example_dataset
from skelrep.data.hdf5 import read_attrs, read_layout, read_samples, split_names
from skelrep.data.layout import load_layout
from skelrep.errors import ParamsError
from skelrep.evaluation.feature_file import load_feature_file
from skelrep.models.encoder_file import load_encoder_file
from skelrep.params import load_params

from ..conftest import REPO_ROOT
from ..data.test_protocols import NO_SETTINGS
from ..dvc_stages import stage_args
from ..methods.isc.test_method import TINY_ISC
from ..methods.umurl.test_method import TINY_UMURL
from ..report import stage_params, write_fake_reports
from ..training.test_pretrain import TINY_USDRL

STAGES = REPO_ROOT / "stages"
PROTOCOL = "mydata-xsub"
LAYOUTS = {"kinect_v1_20": ("kinect_v1_20", 1), "coco17x2": ({"base": "coco17", "persons": 2}, 2)}
TRAIN = {"epochs": 1, "milestones": [], "batch_size": 4, "ckpt_every": 1}


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", STAGES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(layout) -> dict:
    """The committed params.yaml plus a generic dataset and its protocol; tiny methods."""
    params = load_params(REPO_ROOT / "params.yaml")
    params["data"]["mydata"] = {"source": "generic", "base": "mydata", "generic": {
        "root": "data/import/mydata", "layout": layout,
        "splits": {"xsub": {"column": "subject", "train": "odd"}, "xsub2": {"column": "subject", "train": [1, 2]}},
        "zero_frames": "interpolate", "min_frames": 16, "max_frames": 32, "extra_persons": "fail"}}
    params["protocols"][PROTOCOL] = {"dataset": "mydata", "split": "xsub", **NO_SETTINGS}
    params["protocols"]["mydata-xsub2"] = {"dataset": "mydata", "split": "xsub2", **NO_SETTINGS}
    params["preprocess"]["workers"] = 1
    params["mlflow"]["enabled"] = False
    for name, tiny in (("usdrl", TINY_USDRL), ("umurl", TINY_UMURL), ("isc", TINY_ISC)):
        params[name] = copy.deepcopy(tiny)
        params[name]["train"].update(TRAIN)
    params["isc"]["moco"]["k"] = 8
    params["features"]["device"] = "cpu"
    params["linear"].update(epochs=5, milestones=[], batch_size=4, eval_every=1, device="cpu")
    return params


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def workspace(request, tmp_path_factory) -> Path:
    """download@mydata and preprocess@mydata run on a generated dataset, as dvc.yaml runs them."""
    layout, persons = LAYOUTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write_example_dataset("data/import/mydata", layout, n_per_class=4, classes=["clap", "kick"],
                              persons=persons, frames=(10, 30), zero_frame_prob=0.1, seed=0)
        params = _params(layout)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        _stage("download").main(stage_args("download@mydata", params))
        _stage("preprocess").main(stage_args("preprocess@mydata", params))
    return root


def test_one_file_holds_every_protocol_of_the_dataset(workspace):
    """mydata is parsed once; its two protocols select the named splits xsub and xsub2."""
    data = workspace / "data" / "processed" / "mydata.h5"
    assert split_names(data) == ("xsub", "xsub2")
    total = read_attrs(data)
    for split in ("xsub", "xsub2"):
        train, test = (read_samples(data, split, s) for s in ("train", "test"))
        assert not set(train["index"]) & set(test["index"])
        assert len(train["index"]) + len(test["index"]) == 8  # 2 classes x 4: every sample in one subset
    assert set(read_samples(data, "xsub", "train")["meta/subject"]) <= {1, 3, 5, 7}
    assert set(read_samples(data, "xsub2", "train")["meta/subject"]) == {1, 2}
    assert json.loads(total["class_names"]) == ["clap", "kick"]


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_every_stage_runs_on_the_users_data(workspace, method, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["method"] = method
    (workspace / f"params_{method}.yaml").write_text(yaml.safe_dump(params))

    def args(stage):  # as dvc.yaml runs it, with this method's params file
        return [*stage_args(f"{stage}@{PROTOCOL}", params), "--params", f"params_{method}.yaml"]

    layout = read_layout("data/processed/mydata.h5")
    assert layout == load_layout(params["data"]["mydata"]["generic"]["layout"])

    _stage("pretrain").main(args("pretrain"))
    payload = load_encoder_file(f"models/{PROTOCOL}/encoder.pt")
    assert payload["method"] == method
    reads = []  # the features stage reads the split three times (two encoders, the hand-crafted baseline)
    real_read = SkeletonH5Dataset._read
    monkeypatch.setattr(SkeletonH5Dataset, "_read",
                        lambda self, i: reads.append((self.subset, i)) or real_read(self, i))
    _stage("features").main(args("features"))
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 8  # from the file once each, then memory
    capsys.readouterr()
    _stage("knn").main(args("knn"))
    knn = json.loads(Path(f"reports/knn/{PROTOCOL}/metrics.json").read_text())
    assert 0 <= knn["knn/top1"] <= 100
    # the stage ends with its result, as computed: one line on stdout
    assert capsys.readouterr().out == (
        f"knn {PROTOCOL}: KNN-1 {knn['knn/top1']:.1f} (random init {knn['knn/random_init/top1']:.1f}, "
        f"hand-crafted {knn['knn/handcrafted/top1']:.1f})\n")

    features = load_feature_file(f"data/features/{PROTOCOL}/pretrained.npz")
    assert len(features["train_x"]) == len(features["train_y"]) == len(features["train_ids"]) == 4
    assert features["num_classes"] == 2 and list(features["class_names"]) == ["clap", "kick"]
    _stage("linear").main(args("linear"))
    linear = json.loads(Path(f"reports/linear/{PROTOCOL}/metrics.json").read_text())
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"linear {PROTOCOL}: top-1 {linear['linear/top1_last']:.1f} (random init "
        f"{linear['linear/random_init/top1_last']:.1f}, hand-crafted {linear['linear/handcrafted/top1_last']:.1f})")
    assert 0 <= linear["linear/top1_last"] <= 100 and 0 <= linear["linear/random_init/top1_last"] <= 100
    assert 0 <= linear["linear/handcrafted/top1_last"] <= 100 and 0 <= knn["knn/handcrafted/top1"] <= 100
    handcrafted = load_feature_file(f"data/features/{PROTOCOL}/handcrafted.npz")
    assert list(handcrafted["test_ids"]) == list(features["test_ids"])
    predictions = pd.read_csv(f"reports/linear/{PROTOCOL}/predictions.csv")  # ids and the dataset's names
    assert list(predictions.columns) == ["sample", "actual", "predicted", "actual_name", "predicted_name"]
    assert (predictions.actual_name == predictions.actual.map({0: "clap", 1: "kick"})).all()
    scores = dict(np.load(f"reports/linear/{PROTOCOL}/test_scores.npz"))
    assert scores["probs"].shape == (len(features["test_y"]), 2)
    assert np.allclose(scores["probs"].sum(1), 1.0, atol=1e-5)


def test_report_adds_a_table_of_the_users_protocols(tmp_path, monkeypatch):
    """A user protocol gets its own table (custom.md); the four benchmark tables are unchanged."""
    report = _stage("report")
    outputs = {}
    for case in ("builtin", "with_user_protocol"):
        root = tmp_path / case
        reports = write_fake_reports(root)
        params = stage_params(mlflow=False)
        if case == "with_user_protocol":
            for stage in ("pretrain", "linear", "knn"):
                shutil.copytree(reports / stage / "ntu60-xsub", reports / stage / PROTOCOL)
            params["data"]["mydata"] = _params("kinect_v1_20")["data"]["mydata"]
            params["protocols"] = {**load_params(REPO_ROOT / "params.yaml")["protocols"],
                                   PROTOCOL: {"dataset": "mydata", "split": "xsub", **NO_SETTINGS}}
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        monkeypatch.chdir(root)
        report.main(["--no-mlflow", "--reports", "reports"])
        outputs[case] = {p.relative_to(reports).as_posix(): p.read_bytes() for p in sorted(reports.rglob("*"))
                         if p.is_file() and PROTOCOL not in p.parts}
    for name in ("ntu60", "ntu120", "pkummd1", "pkummd2"):
        path = f"benchmarks/{name}.md"
        assert outputs["builtin"][path] == outputs["with_user_protocol"][path]
    assert "benchmarks/custom.md" not in outputs["builtin"]
    custom = outputs["with_user_protocol"]["benchmarks/custom.md"].decode()
    assert custom.startswith("# Your own data: linear evaluation, KNN-1 retrieval, semi-supervised and full "
                             "fine-tuning")
    assert f"{PROTOCOL}: linear top-1, last epoch (primary)" in custom
    measured = next(line for line in custom.splitlines() if line.startswith("| USDRL"))
    assert "| 40.0 |" in measured  # the copied ntu60-xsub linear top-1 of the fake reports
    rows = [line for line in custom.splitlines() if line.startswith("| ") and "---" not in line]
    # header + measured + random-init baseline + hand-crafted baseline
    assert len(rows) == 4 and not any("(paper)" in row for row in rows)
    assert rows[3].startswith("| Hand-crafted baseline (joint coordinates, logistic regression) — measured | 20.0 |")
    assert "Synthetic data" not in custom


@pytest.mark.parametrize("stage", ["preprocess", "pretrain", "features", "linear", "knn"])
def test_an_unknown_protocol_fails_before_any_work(tmp_path, monkeypatch, stage):
    monkeypatch.chdir(tmp_path)
    params = _params("kinect_v1_20")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    if stage == "preprocess":  # per dataset
        args = [a.replace("mydata", "otherdata") for a in stage_args("preprocess@mydata", params)]
        match = "data.otherdata: missing"
    else:
        args = [a.replace(PROTOCOL, "mydata-xset") for a in stage_args(f"{stage}@{PROTOCOL}", params)]
        match = "unknown protocol 'mydata-xset'.*mydata-xsub"
    with pytest.raises(ParamsError, match=match):
        _stage(stage).main(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_a_protocol_selects_a_split_its_dataset_declares(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _params("kinect_v1_20")
    params["protocols"]["mydata-xset"] = {"dataset": "mydata", "split": "xset", **NO_SETTINGS}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="protocols.mydata-xset.split: got 'xset'; data.mydata.generic.splits "
                       "names xsub, xsub2"):
        _stage("pretrain").main(stage_args(f"pretrain@{PROTOCOL}", params))
