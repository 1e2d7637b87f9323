"""The pretrain stage's resume state: only an interrupted run of the same configuration resumes,
a completed run leaves nothing behind (so `dvc repro -f` trains from scratch), throughput is never
logged as NaN, and `dvc status` stays clean when switching between experiments."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from skelrep.models.encoder_file import load_encoder_file
from skelrep.params import load_params
from skelrep.tracking.mlflow_run import RunLogger
from skelrep.training.checkpoint import CKPT_NAME

from ..conftest import REPO_ROOT, write_tiny_h5
from ..dvc_stages import stage_args
from ..training.test_pretrain import TINY_USDRL

PROTOCOL = "ntu60-xsub"
DATA = Path("data/processed/ntu60.h5")  # the protocol's dataset file (its xsub split)
ARGS = stage_args(f"pretrain@{PROTOCOL}")  # as dvc.yaml runs it
RESUME = Path("models/.resume") / PROTOCOL
ENCODER = Path("models") / PROTOCOL / "encoder.pt"
STATS = Path("reports/pretrain") / PROTOCOL / "stats.jsonl"


def _stage():
    spec = importlib.util.spec_from_file_location("stage_pretrain", REPO_ROOT / "stages" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(**train) -> dict:
    params = load_params(REPO_ROOT / "params.yaml")
    params["method"] = "usdrl"
    params["usdrl"] = copy.deepcopy(TINY_USDRL)
    params["usdrl"]["train"].update({"epochs": 2, "milestones": [], **train})
    params["mlflow"]["enabled"] = False
    return params


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "processed").mkdir(parents=True)
    write_tiny_h5(tmp_path / DATA, n_train=16, n_test=4, frames=24)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params()))
    return tmp_path


class _Recorder:
    """Stands in for the MLflow run: keeps every metrics dict the stage logs."""

    def __init__(self):
        self.metrics: list[dict] = []

    def log_metrics(self, metrics, step=None):
        self.metrics.append(dict(metrics))

    def __getattr__(self, name):  # log_params, set_tags, log_artifact: nothing to keep
        return lambda *args, **kwargs: None


def _recording(stage, monkeypatch) -> _Recorder:
    recorder = _Recorder()
    monkeypatch.setattr(stage, "stage_run", lambda *args, **kwargs: contextlib.nullcontext(recorder))
    return recorder


class Killed(Exception):
    pass


def _killed_after(stage, monkeypatch, epoch: int) -> None:
    """The stage's training loop stops after ``epoch`` (its checkpoint written), like a killed job."""
    real = stage.run_pretraining

    def kill(stats):
        if stats["epoch"] == epoch:
            raise Killed

    monkeypatch.setattr(stage, "run_pretraining", lambda *a, **kw: real(*a, **{**kw, "on_epoch_end": kill}))


def _weights() -> dict:
    return load_encoder_file(ENCODER)["state_dict"]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _remove_outputs() -> None:
    """What DVC does before it runs the stage."""
    shutil.rmtree("models/" + PROTOCOL)
    shutil.rmtree("reports")


def test_a_completed_run_leaves_no_resume_state_and_a_rerun_trains_from_scratch(workspace, monkeypatch, caplog):
    stage = _stage()
    recorder = _recording(stage, monkeypatch)
    stage.main(ARGS)
    assert ENCODER.exists() and not RESUME.exists()
    first, first_stats = _weights(), STATS.read_bytes()
    speed = [m["pretrain_samples_per_s"] for m in recorder.metrics if "pretrain_samples_per_s" in m]
    assert len(speed) == 1 and math.isfinite(speed[0]) and speed[0] > 0

    caplog.clear()
    with caplog.at_level("INFO"):
        stage.main(ARGS)  # what `dvc repro -f pretrain@<protocol>` runs
    assert "resuming" not in caplog.text and "epoch 0:" in caplog.text
    assert not RESUME.exists()
    _assert_same(first, _weights())
    assert STATS.read_bytes() == first_stats


def test_an_interrupted_run_resumes_to_the_uninterrupted_outputs(workspace, monkeypatch, caplog):
    stage = _stage()
    stage.main(ARGS)
    straight, straight_stats = _weights(), STATS.read_bytes()
    _remove_outputs()

    with monkeypatch.context() as mp:
        _killed_after(stage, mp, epoch=0)
        with pytest.raises(Killed):
            stage.main(ARGS)
    assert (RESUME / CKPT_NAME).exists() and not ENCODER.exists()

    caplog.clear()
    with caplog.at_level("INFO"):
        stage.main(ARGS)
    assert f"resuming from the checkpoint of epoch 0 in {RESUME}" in caplog.text
    assert not RESUME.exists()
    _assert_same(straight, _weights())
    assert STATS.read_bytes() == straight_stats


def test_a_checkpoint_of_another_configuration_is_not_resumed(workspace, monkeypatch, caplog):
    stage = _stage()
    with monkeypatch.context() as mp:
        _killed_after(stage, mp, epoch=0)
        with pytest.raises(Killed):
            stage.main(ARGS)
    (workspace / "params.yaml").write_text(yaml.safe_dump(_params(lr=2e-3)))
    caplog.clear()
    with caplog.at_level("INFO"):
        stage.main(ARGS)
    assert "belongs to another configuration" in caplog.text and "resuming" not in caplog.text
    assert not RESUME.exists()


def test_a_run_killed_after_its_last_epoch_finishes_without_nan(workspace, monkeypatch, caplog):
    """Killed after the last checkpoint, before the outputs: the rerun trains no epoch, writes the
    outputs, and logs no throughput instead of NaN (0 samples in 0 s)."""
    stage = _stage()
    with monkeypatch.context() as mp:
        _killed_after(stage, mp, epoch=1)
        with pytest.raises(Killed):
            stage.main(ARGS)
    recorder = _recording(stage, monkeypatch)
    with caplog.at_level("INFO"):
        stage.main(ARGS)
    assert "no epoch left to train" in caplog.text and ENCODER.exists() and not RESUME.exists()
    logged = [v for m in recorder.metrics for v in m.values()]
    assert all(v is None or math.isfinite(v) for v in logged)
    final = next(m for m in recorder.metrics if "pretrain_samples_per_s" in m)
    assert final["pretrain_samples_per_s"] is None


def test_min_steps_epochs_are_recorded_in_the_metrics(workspace, monkeypatch):
    """16 training samples at batch 8: 2 steps per epoch; min_steps 7 makes the 2 epochs 4."""
    params = _params()
    params["protocols"][PROTOCOL]["pretrain"] = {"train": {"min_steps": 7}}  # the protocol's own budget
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    stage = _stage()
    recorder = _recording(stage, monkeypatch)
    stage.main(ARGS)
    metrics = json.loads((Path("reports/pretrain") / PROTOCOL / "metrics.json").read_text())
    assert (metrics["pretrain/epochs"], metrics["pretrain/steps"]) == (4, 8)
    assert len(STATS.read_text().splitlines()) == 4 and not RESUME.exists()
    assert any(m.get("pretrain/epochs") == 4 for m in recorder.metrics)


def test_run_logger_drops_metrics_without_a_value():
    sent = []

    class FakeMlflow:
        @staticmethod
        def log_metrics(metrics, step=None):
            sent.append(metrics)

    RunLogger(FakeMlflow, "run").log_metrics({"pretrain_samples_per_s": None, "pretrain_peak_memory_mb": 12.0})
    assert sent == [{"pretrain_peak_memory_mb": 12.0}]


# --- real DVC -----------------------------------------------------------------------------------


def _sh(cwd: Path, *cmd: str, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _dvc_repo(root: Path) -> None:
    """A git + DVC repository holding the project's own pretrain stage (dvc.yaml, code deps,
    .gitignore), the tiny params and one processed file."""
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    stage = dvc_yaml["stages"]["pretrain"]
    data_dep = "data/processed/${item.dataset}.h5"
    assert data_dep in stage["do"]["deps"]
    # the code deps are copied; other stages' outputs (not built here) are left out
    stage["do"]["deps"] = [dep for dep in stage["do"]["deps"]
                           if dep == data_dep or not dep.startswith(("data/", "reports/", "models/"))]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"pretrain": stage}}, sort_keys=False))
    for dep in stage["do"]["deps"]:
        if dep == data_dep:
            continue
        src, dst = REPO_ROOT / dep, root / dep
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")
    (root / "data" / "processed").mkdir(parents=True)
    write_tiny_h5(root / DATA, n_train=16, n_test=4, frames=24)
    (root / "params.yaml").write_text(yaml.safe_dump(_params()))


@pytest.mark.slow
def test_dvc_status_stays_clean_across_experiments_and_force_retrains(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _dvc_repo(root)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("DVC_ROOT", None)
    git = lambda *a: _sh(root, "git", *a, env=env)  # noqa: E731
    dvc = lambda *a: _sh(root, sys.executable, "-m", "dvc", *a, env=env)  # noqa: E731
    target = f"pretrain@{PROTOCOL}"
    resume = root / RESUME

    git("init", "-q", "-b", "main")
    dvc("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    assert "Running stage" in dvc("repro", target)
    assert not resume.exists()
    git("add", "dvc.lock")
    git("commit", "-qm", "experiment a")
    a_encoder = (root / ENCODER).read_bytes()
    assert "up to date" in dvc("status", target)

    git("checkout", "-qb", "lr")  # another experiment
    (root / "params.yaml").write_text(yaml.safe_dump(_params(lr=2e-3)))
    assert "Running stage" in dvc("repro", target)
    git("add", "dvc.lock", "params.yaml")
    git("commit", "-qm", "experiment lr")
    assert (root / ENCODER).read_bytes() != a_encoder

    git("checkout", "-q", "main")
    dvc("checkout", target)
    assert "up to date" in dvc("status", target)
    assert (root / ENCODER).read_bytes() == a_encoder
    out = dvc("repro", target)
    assert "Running stage" not in out and "didn't change" in out

    out = dvc("repro", "-f", target)  # from scratch: the same outputs, dvc.lock unchanged
    assert "Running stage" in out and "resuming" not in out and "epoch 0:" in out
    assert (root / ENCODER).read_bytes() == a_encoder and not resume.exists()
    assert "up to date" in dvc("status", target)
    git("diff", "--exit-code", "dvc.lock")
