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
import pytest
import yaml

from skelrep.data.generic import write_example_dataset
from skelrep.data.hdf5 import read_layout
from skelrep.data.layout import load_layout
from skelrep.errors import ParamsError
from skelrep.evaluation.features import load_feature_file
from skelrep.models.encoder_file import load_encoder_file
from skelrep.params import load_params

from ..conftest import REPO_ROOT
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
    params["data"]["mydata"] = {"source": "generic", "generic": {
        "root": "data/import/mydata", "layout": layout, "split": {"column": "subject", "train": "odd"},
        "zero_frames": "interpolate", "min_frames": 16, "max_frames": 32, "extra_persons": "fail"}}
    params["protocols"][PROTOCOL] = {"dataset": "mydata", "base": "mydata"}
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
    """download@mydata and preprocess@mydata-xsub run on a generated dataset."""
    layout, persons = LAYOUTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write_example_dataset("data/import/mydata", layout, n_per_class=4, classes=["clap", "kick"],
                              persons=persons, frames=(10, 30), zero_frame_prob=0.1, seed=0)
        (root / "params.yaml").write_text(yaml.safe_dump(_params(layout)))
        _stage("download").main(["--dataset", "mydata"])
        _stage("preprocess").main(["--protocol", PROTOCOL])
    return root


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_every_stage_runs_on_the_users_data(workspace, method, monkeypatch):
    monkeypatch.chdir(workspace)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["method"] = method
    (workspace / f"params_{method}.yaml").write_text(yaml.safe_dump(params))
    args = ["--protocol", PROTOCOL, "--params", f"params_{method}.yaml"]
    layout = read_layout(f"data/processed/{PROTOCOL}.h5")
    assert layout == load_layout(params["data"]["mydata"]["generic"]["layout"])

    _stage("pretrain").main(args)
    payload = load_encoder_file(f"models/{PROTOCOL}/encoder.pt")
    assert payload["method"] == method
    _stage("features").main(args)
    _stage("knn").main(args)
    knn = json.loads(Path(f"reports/knn/{PROTOCOL}/metrics.json").read_text())
    assert 0 <= knn["knn/top1"] <= 100

    features = load_feature_file(f"data/features/{PROTOCOL}/pretrained.npz")
    assert len(features["train_x"]) == len(features["train_y"]) == 4
    _stage("linear").main(args)
    linear = json.loads(Path(f"reports/linear/{PROTOCOL}/metrics.json").read_text())
    assert 0 <= linear["linear/top1_last"] <= 100 and 0 <= linear["linear/random_init/top1_last"] <= 100
    scores = load_feature_file(f"reports/linear/{PROTOCOL}/test_scores.npz")
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
                                   PROTOCOL: {"dataset": "mydata", "base": "mydata"}}
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        monkeypatch.chdir(root)
        report.main(["--no-mlflow", "--reports", "reports", "--models", "models"])
        outputs[case] = {p.relative_to(reports).as_posix(): p.read_bytes() for p in sorted(reports.rglob("*"))
                         if p.is_file() and PROTOCOL not in p.parts}
    for name in ("ntu60", "ntu120", "pkummd1", "pkummd2"):
        path = f"benchmarks/{name}.md"
        assert outputs["builtin"][path] == outputs["with_user_protocol"][path]
    assert "benchmarks/custom.md" not in outputs["builtin"]
    custom = outputs["with_user_protocol"]["benchmarks/custom.md"].decode()
    assert custom.startswith("# Your own data: linear evaluation and KNN-1 retrieval")
    assert f"{PROTOCOL}: linear top-1, last epoch (primary)" in custom
    measured = next(line for line in custom.splitlines() if line.startswith("| USDRL"))
    assert "| 40.0 |" in measured  # the copied ntu60-xsub linear top-1 of the fake reports
    rows = [line for line in custom.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3 and not any("(paper)" in row for row in rows)  # header + measured + baseline
    assert "Synthetic data" not in custom


@pytest.mark.parametrize("stage", ["preprocess", "pretrain", "features", "linear", "knn"])
def test_an_unknown_protocol_fails_before_any_work(tmp_path, monkeypatch, stage):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params("kinect_v1_20")))
    with pytest.raises(ParamsError, match="unknown protocol 'mydata-xview'.*mydata-xsub"):
        _stage(stage).main(["--protocol", "mydata-xview"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written
