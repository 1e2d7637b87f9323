"""``stage_run(..., background=True)``: a writer process logs the stage's calls, with the same
result as logging in process; a stage that fails, dies or whose writer fails is handled as in
process (a FAILED run without ``stage.<stage>: done``; the writer's failure fails the stage)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pandas as pd
import pytest

from skelrep.tracking.mlflow_run import (
    STAGE_DONE,
    BackgroundRunLogger,
    RunIdentity,
    TrackingError,
    _writer_env,
    stage_run,
)

from ..conftest import use_mlflow_db


@pytest.fixture
def db(tmp_path, template_db, monkeypatch):
    use_mlflow_db(tmp_path, template_db, monkeypatch)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _identity(experiment: str) -> RunIdentity:
    return RunIdentity(experiment, "key", {"method": "usdrl"}, f"run of {experiment}")


def _log_everything(run, folder):
    (folder / "scores.txt").write_text("0.5\n")
    run.log_params({"linear.lr": 0.1, "linear.epochs": 3})
    run.log_curves({"linear/test_top1_curve": [(1, 10.0), (2, 20.0)]})
    run.log_metrics({"linear/top1_last": 20.0, "knn@1": 5.0})
    run.set_tags({"device": "cpu"})
    run.log_artifact(folder / "scores.txt", "linear")
    run.log_dict({"a": 1}, "extra/a.json")
    run.log_table(pd.DataFrame({"x": [1, 2]}), "tables/t.json")


def _content(experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])  # not the process's last URI
    exp = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([exp.experiment_id])
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    curves = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics}
    artifacts = sorted(f.path for folder in ("linear", "extra", "tables")
                       for f in client.list_artifacts(run.info.run_id, folder))
    return run.info.status, run.data.params, run.data.metrics, tags, curves, artifacts, run.info.run_name


def test_background_logging_records_what_in_process_logging_records(db):
    with stage_run(_identity("inproc"), "linear") as run:
        _log_everything(run, db)
    with stage_run(_identity("bg"), "linear", background=True) as run:
        assert isinstance(run, BackgroundRunLogger)
        _log_everything(run, db)
    inproc, bg = _content("inproc"), _content("bg")
    assert bg[0] == "FINISHED" and bg[3][STAGE_DONE.format(stage="linear")] == "done"
    assert bg[1:4] == inproc[1:4] and bg[5] == inproc[5]
    assert {k: [p[0] for p in v] for k, v in bg[4].items()} == {k: [p[0] for p in v] for k, v in inproc[4].items()}
    assert bg[6] == "run of bg"


def test_a_stage_that_fails_leaves_a_failed_run_and_its_own_error(db):
    with pytest.raises(KeyError, match="the stage's own error"), \
            stage_run(_identity("fails"), "knn", background=True) as run:
        run.log_metrics({"knn/top1": 1.0})
        raise KeyError("the stage's own error")
    status, _, metrics, tags, *_ = _content("fails")
    assert status == "FAILED" and STAGE_DONE.format(stage="knn") not in tags and metrics == {"knn/top1": 1.0}


def test_a_writer_that_fails_fails_the_stage(db):
    with pytest.raises(TrackingError, match="'linear'.*writer process"), \
            stage_run(_identity("writer-fails"), "linear", background=True) as run:
        run.log_artifact(db / "missing.txt", "linear")  # the writer cannot log it
    status, *_ = _content("writer-fails")
    assert status == "FAILED"


def test_a_stage_killed_mid_run_leaves_a_failed_run(db):
    """The writer sees its input end without a close: the stage died (e.g. SIGKILL)."""
    proc = subprocess.Popen([sys.executable, "-m", "skelrep.tracking.writer"], stdin=subprocess.PIPE,
                            env=_writer_env())
    for message in (("open", _identity("killed"), "pretrain", False),
                    ("call", "log_metrics", ({"pretrain/loss": 3.0},), {"step": 0})):
        pickle.dump(message, proc.stdin)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    status, _, metrics, tags, *_ = _content("killed")
    assert status == "FAILED" and metrics == {"pretrain/loss": 3.0} and "stage.pretrain" not in tags


def test_params_metrics_and_tags_reach_the_writer_as_builtins(db, monkeypatch):
    """Values of a type the writer cannot import (here from a module only the stage has; in the
    pretraining stage torch.__version__, a str subclass) are recorded as their text and number:
    the writer never has to import the stage's types to read its messages."""
    folder = db / "stage_only"  # not on the writer's path (its own folder, the cwd, src)
    folder.mkdir()
    (folder / "stage_types.py").write_text("class Version(str):\n    pass\n\n\nclass Number(float):\n    pass\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "stage_types", raising=False)
    import stage_types

    try:
        with stage_run(_identity("types"), "pretrain", background=True) as run:
            run.log_params({"torch": stage_types.Version("2.13.0")})
            run.log_metrics({"loss": stage_types.Number(0.5), "skipped": None})
            run.set_tags({"torch": stage_types.Version("2.13.0")})
    finally:
        del sys.modules["stage_types"]
    status, params, metrics, tags, *_ = _content("types")
    assert status == "FINISHED" and params == {"torch": "2.13.0"} and metrics == {"loss": 0.5}
    assert tags["torch"] == "2.13.0"


def test_a_background_logger_has_no_client(db):
    with stage_run(_identity("no-client"), "knn", background=True) as run, \
            pytest.raises(TrackingError, match="background=False"):
        run.client  # noqa: B018


@pytest.mark.parametrize("argv, env, params, starts", [
    (["--protocol", "p"], {}, {"mlflow": {"enabled": True}}, True),
    (["--protocol", "p", "--params", "other.yaml"], {}, {"mlflow": {"enabled": True}}, True),
    (["--protocol", "p"], {}, {"mlflow": {"enabled": False}}, False),
    (["--help"], {}, {"mlflow": {"enabled": True}}, False),
    (["--protocol", "p"], {"RANK": "1"}, {"mlflow": {"enabled": True}}, False),  # only rank 0 logs
    (["--protocol", "p", "--params", "missing.yaml"], {}, None, False),
])
def test_a_stage_prestarts_its_writer_only_when_it_will_log(db, monkeypatch, argv, env, params, starts):
    import yaml

    from skelrep.tracking import mlflow_run

    name = argv[argv.index("--params") + 1] if "--params" in argv else "params.yaml"
    if params is not None:
        (db / name).write_text(yaml.safe_dump(params))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(mlflow_run, "_prestarted", None)
    mlflow_run.prestart_writer(argv)
    writer = mlflow_run._prestarted
    assert (writer is not None) == starts
    if writer is not None:  # the next background run is logged by it, and it is used once
        with stage_run(_identity("prestarted"), "knn", background=True) as run:
            run.log_metrics({"knn/top1": 7.0})
        assert mlflow_run._prestarted is None and writer.returncode == 0
        assert _content("prestarted")[2] == {"knn/top1": 7.0}


def test_ctrl_c_is_the_stage_s_to_handle_not_the_writer_s(db):
    """Ctrl-C goes to the stage's process group; the writer runs in its own session, so it records
    the run as the stage ends it (the stage's handling decides)."""
    with stage_run(_identity("interrupted"), "linear", background=True) as run:
        assert os.getpgid(run._process.pid) != os.getpgid(0)
        run.log_metrics({"linear/top1_last": 1.0})
    status, _, metrics, tags, *_ = _content("interrupted")
    assert status == "FINISHED" and metrics == {"linear/top1_last": 1.0} and tags["stage.linear"] == "done"
