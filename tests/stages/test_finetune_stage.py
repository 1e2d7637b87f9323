"""The finetune@ and transfer@ stages on tiny data, with the arguments dvc.yaml gives them: their
outputs and metric keys, the labelled subsets they record, byte-identical re-runs, no resume state
left behind, and a transfer between different skeleton layouts refused before any encoder loads."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.data.layout import load_layout
from skelrep.errors import ParamsError
from skelrep.evaluation.subsets import labelled_subset
from skelrep.models.encoder_file import save_encoder
from skelrep.params import load_params
from skelrep.training.pretrain import build_model_for

from ..conftest import REPO_ROOT, TINY_SPLIT, use_mlflow_db, write_tiny_h5
from ..dvc_stages import stage_args
from ..training.test_pretrain import tiny_usdrl

SOURCE, TARGET, TRANSFER = "ntu60-xsub", "pku2-xsub", "ntu60-xsub-to-pku2-xsub"
FINETUNE_OUT = Path("reports/finetune") / SOURCE
TRANSFER_OUT = Path("reports/finetune/transfer") / TRANSFER


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params() -> dict:
    params = load_params(REPO_ROOT / "params.yaml")
    params["finetune"].update({"epochs": 2, "min_steps": 0, "milestones": [1], "batch_size": 8, "eval_every": 1,
                               "fractions": [0.1, 0.5], "subset_seeds": [0, 1], "random_min_frames": 8})
    params["linear"].update({"epochs": 3, "milestones": [2], "batch_size": 8})
    params["features"].update({"batch_size": 8})
    params["mlflow"]["enabled"] = False
    return params


def _data(path: Path, seed: int, **kw) -> Path:
    write_tiny_h5(path, n_train=20, n_test=8, frames=24, seed=seed, **kw)
    with h5py.File(path, "a") as h5:
        h5.attrs["num_classes"] = 4  # what preprocessing records
    return path


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    source = _data(tmp_path / "data/processed/ntu60.h5", seed=0)
    _data(tmp_path / "data/processed/pku2.h5", seed=1)
    method = tiny_usdrl()
    train = SkeletonH5Dataset(source, TINY_SPLIT, "train")
    models = tmp_path / "models" / SOURCE
    save_encoder(models / "encoder.pt", **method.encoder_payload(build_model_for(method, train, seed=0)))
    save_encoder(models / "encoder_random.pt", **method.encoder_payload(build_model_for(method, train, seed=1)))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params()))
    return tmp_path


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_finetune_stage(workspace):
    stage = _stage("finetune")
    stage.main(stage_args(f"finetune@{SOURCE}"))
    first = _outputs(workspace / FINETUNE_OUT)
    assert sorted(first) == ["history.jsonl", "metrics.json", "subsets.json"]
    metrics = json.loads(first["metrics.json"])
    per_run = ("top1_last_mean", "top1_last_std", "top1_best_on_test_mean", "top1_best_on_test_std",
               "top5_last_mean", "labelled", "runs")
    full = ("top1_last", "top5_last", "top1_best_on_test", "best_epoch")
    expected = {f"semi/{v}{f}/{k}" for v in ("", "random_init/") for f in ("10pct", "50pct") for k in per_run}
    expected |= {f"finetune/{v}{k}" for v in ("", "random_init/") for k in full}
    assert set(metrics) == expected
    assert metrics["semi/10pct/runs"] == 2 and metrics["semi/10pct/labelled"] == 4  # one per class
    assert metrics["semi/50pct/labelled"] == 10
    assert all(0 <= metrics[k] <= 100 for k in metrics if "top" in k)

    # the labelled subsets: per class, seeded, by sample id, the same for any method
    subsets = json.loads(first["subsets.json"])
    train = SkeletonH5Dataset("data/processed/ntu60.h5", TINY_SPLIT, "train")
    assert sorted(subsets) == ["10pct/seed0", "10pct/seed1", "50pct/seed0", "50pct/seed1"]
    for name, entry in subsets.items():
        positions = labelled_subset(train.sample_name, train.label, entry["fraction"], entry["seed"])
        assert entry["samples"] == train.sample_name[positions].tolist()
        assert entry["labelled"] == len(positions) and entry["of"] == 20
        labels = train.label[np.isin(train.sample_name, entry["samples"])]
        assert set(labels.tolist()) == {0, 1, 2, 3}, name
    assert subsets["10pct/seed0"]["samples"] != subsets["10pct/seed1"]["samples"]

    runs = {json.loads(line)["run"] for line in first["history.jsonl"].decode().splitlines()}
    assert runs == {f"semi/{v}{f}/seed{s}" for v in ("", "random_init/") for f in ("10pct", "50pct")
                    for s in (0, 1)} | {"finetune", "finetune/random_init"}
    assert not Path(f"models/.resume/finetune/{SOURCE}").exists()  # a completed run leaves no resume state

    # `dvc repro -f`: the same bytes; another method's params do not change the subsets
    stage.main(stage_args(f"finetune@{SOURCE}"))
    assert _outputs(workspace / FINETUNE_OUT) == first
    params = _params()
    params["method"] = "isc"
    params["finetune"]["full"] = False
    Path("params.yaml").write_text(yaml.safe_dump(params))
    stage.main(stage_args(f"finetune@{SOURCE}"))
    assert json.loads((workspace / FINETUNE_OUT / "subsets.json").read_text()) == subsets


def test_the_stage_refuses_a_protocol_it_does_not_list(workspace):
    params = _params()
    del params["finetune"]["protocols"][SOURCE]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="finetune.protocols: has no entry 'ntu60-xsub'"):
        _stage("finetune").main(stage_args(f"finetune@{SOURCE}", _params()))
    assert not FINETUNE_OUT.exists()


def test_the_transfer_stage(workspace):
    stage = _stage("transfer")
    stage.main(stage_args(f"transfer@{TRANSFER}"))
    metrics = json.loads((workspace / TRANSFER_OUT / "metrics.json").read_text())
    keys = ("top1_last", "top5_last", "top1_best_on_test", "best_epoch")
    assert set(metrics) == {f"transfer/{v}{TARGET}/{kind}/{k}" for v in ("", "random_init/")
                            for kind in ("linear", "finetune") for k in keys}
    history = [json.loads(line) for line in (workspace / TRANSFER_OUT / "history.jsonl").read_text().splitlines()]
    assert {h["run"] for h in history} == {f"transfer/{v}{TARGET}/{kind}" for v in ("", "random_init/")
                                           for kind in ("linear", "finetune")}
    assert not Path(f"models/.resume/transfer/{TRANSFER}").exists()
    first = _outputs(workspace / TRANSFER_OUT)
    stage.main(stage_args(f"transfer@{TRANSFER}"))
    assert _outputs(workspace / TRANSFER_OUT) == first


def test_a_transfer_between_layouts_is_refused_before_any_encoder_loads(workspace):
    target = workspace / "data/processed/pku2.h5"
    target.unlink()
    _data(target, seed=1, joints=20)
    with h5py.File(target, "a") as h5:
        h5.attrs["layout"] = json.dumps(load_layout("kinect_v1_20").with_persons(2).to_dict())
    shutil.rmtree(workspace / "models")  # an encoder read first would fail with "encoder file not found"
    with pytest.raises(ParamsError) as exc:
        _stage("transfer").main(stage_args(f"transfer@{TRANSFER}"))
    assert f"transfer.{TRANSFER}: the source protocol {SOURCE} has skeleton layout 'ntu25'" in str(exc.value)
    assert f"the target {TARGET} has 'kinect_v1_20' (20 joints" in str(exc.value)
    assert not TRANSFER_OUT.exists()


def test_the_stages_log_their_metrics_into_the_configuration_runs(workspace, monkeypatch):
    """MLflow: finetune@ into its protocol's run, transfer@ into the source's, the same keys as the files."""
    logged: dict[str, dict] = {}

    class Recorder:
        def __init__(self, protocol):
            self.protocol = protocol

        def log_metrics(self, metrics, step=None):
            if step is None:
                logged.setdefault(self.protocol, {}).update(metrics)

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    files = {}
    for name, out in (("finetune", FINETUNE_OUT), ("transfer", TRANSFER_OUT)):
        stage = _stage(name)
        monkeypatch.setattr(stage, "stage_run",
                            lambda identity, _stage, **_: contextlib.nullcontext(Recorder(identity.experiment)))
        stage.main(stage_args(f"{name}@{SOURCE if name == 'finetune' else TRANSFER}"))
        files.update(json.loads((workspace / out / "metrics.json").read_text()))
    assert set(logged) == {SOURCE}  # both stages' metrics in the one run of the source protocol
    assert logged[SOURCE] == files


def test_both_stages_log_into_the_source_configuration_run_in_mlflow(workspace, template_db, monkeypatch):
    """On a real MLflow DB: one run (the configuration's run key), the metrics of both files, the
    stages' own params and curves, the subsets as an artifact."""
    from mlflow import MlflowClient

    from skelrep.config import run_identity

    use_mlflow_db(workspace, template_db, monkeypatch)
    params = _params()
    params["mlflow"]["enabled"] = True
    params["finetune"]["subset_seeds"] = [0]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _stage("finetune").main(stage_args(f"finetune@{SOURCE}"))
    _stage("transfer").main(stage_args(f"transfer@{TRANSFER}"))
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(SOURCE).experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["skelrep.run_key"] == run_identity(params, SOURCE).run_key
    run = runs[0]
    files = {**json.loads((FINETUNE_OUT / "metrics.json").read_text()),
             **json.loads((TRANSFER_OUT / "metrics.json").read_text())}
    assert {k: run.data.metrics[k] for k in files} == pytest.approx(files, abs=1e-12)
    assert run.data.params["finetune.lr"] == "0.05" and run.data.params[f"transfer.{TARGET}.source"] == SOURCE
    curve = client.get_metric_history(run.info.run_id, "semi/random_init/10pct/seed0/test_top1_curve")
    assert [m.step for m in curve] == [1, 2]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "finetune")] == ["finetune/subsets.json"]
    assert {"stage.finetune", "stage.transfer"} <= set(run.data.tags)
