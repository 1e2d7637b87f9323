"""One writer per fact, with the real pretrain stage on a local sqlite MLflow: the stage logs its
curve, metrics, params and encoder (once); a report afterwards adds no point, metric or param of
it; a forced re-run of the stage is a new run of the same configuration, linked to the first,
which it leaves unchanged. In a git workspace the run's name and tags say what an ablation changes."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from skelrep.config import run_identity
from skelrep.report.collect import load_reports, read_jsonl
from skelrep.report.mlflow_sync import sync
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import build_tables

from ..conftest import use_mlflow_db
from ..stages.test_pretrain_stage import ARGS, PROTOCOL, STATS, _params, _stage, workspace  # noqa: F401


@pytest.fixture
def tracked(workspace, template_db, monkeypatch):  # noqa: F811
    use_mlflow_db(workspace, template_db, monkeypatch)
    params = _params()
    params["mlflow"]["enabled"] = True
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def _runs(params, count: int = 1):
    """The ``count`` runs of the configuration, oldest first, each with its curves."""
    from mlflow import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(PROTOCOL)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    assert len(runs) == count
    assert {r.data.tags["skelrep.run_key"] for r in runs} == {run_identity(params, PROTOCOL).run_key}
    curves = [{k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k))
               for k in run.data.metrics} for run in runs]
    return client, runs, curves


def _run(params):
    client, runs, curves = _runs(params)
    return client, runs[0], curves[0]


def _artifacts(client, run_id: str, folder: str | None = None) -> list[str]:
    """Every artifact file of a run, recursively."""
    out = []
    for item in client.list_artifacts(run_id, folder):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return sorted(out)


def test_the_pretrain_stage_is_the_one_writer_of_its_facts(tracked):
    root = Path.cwd()  # the workspace fixture's
    stage = _stage()
    stage.main(ARGS)
    client, run, curves = _run(tracked)
    stats = read_jsonl(STATS)
    assert curves["pretrain/loss"] == [(s["epoch"], s["loss"]) for s in stats]
    assert [step for step, _ in curves["pretrain/lr"]] == [s["epoch"] for s in stats] and len(stats) == 2
    metrics = json.loads((root / "reports/pretrain" / PROTOCOL / "metrics.json").read_text())
    assert {k: run.data.metrics[k] for k in metrics} == pytest.approx(metrics, abs=1e-12)
    assert {"method", "usdrl.arch", "data.ntu60.source", "pretrain.epochs"} <= set(run.data.params)
    assert run.data.tags["stage.pretrain"] == "done"
    # the encoder once: one artifact path, whatever folder
    assert [a for a in _artifacts(client, run.info.run_id) if a.endswith(".pt")] == ["encoder/encoder.pt"]

    reports = load_reports(root / "reports", [PROTOCOL])
    tables = build_tables(tracked, reports, table_entries(load_published()))
    for bench, _ in tables:
        (root / "reports/benchmarks").mkdir(parents=True, exist_ok=True)
        (root / "reports/benchmarks" / f"{bench.name}.md").write_text("table\n")
    sync(tracked, reports, tables, root / "reports")
    _, after, after_curves = _run(tracked)
    assert after_curves == curves and after.data.params == run.data.params
    assert after.data.tags["stage.report"] == "done"

    stage.main(ARGS)  # `dvc repro -f pretrain@<protocol>`: a new run of the configuration, linked to the first
    _, (first, second), (first_curves, again) = _runs(tracked, count=2)
    assert second.data.tags["skelrep.rerun_of"] == first.info.run_id and "skelrep.rerun_of" not in first.data.tags
    assert first_curves == curves and first.data.params == run.data.params  # the first run as it was
    assert again["pretrain/loss"] == curves["pretrain/loss"]  # deterministic: the same points, once each
    assert second.info.start_time >= first.info.end_time  # each run's duration is its own execution's
    assert second.data.tags["mlflow.runName"] == first.data.tags["mlflow.runName"] == "usdrl · joint"


def test_an_ablation_run_says_what_it_changes(tracked):
    """In a git repository with params.yaml committed, the stage compares with the committed file:
    the run name and tags carry the changed key, as after `dvc exp run -S usdrl.loss.w_xcorr=0`."""
    root = Path.cwd()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "params.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "profile"], check=True)
    params = copy.deepcopy(tracked)
    params["usdrl"]["loss"]["w_xcorr"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    _stage().main(ARGS)
    _, run, _ = _run(params)
    assert run.info.run_name == "usdrl · joint · w_xcorr=0"
    assert run.data.tags["changes"] == "w_xcorr=0"
    assert run.data.tags["skelrep.changed_params"] == "usdrl.loss.w_xcorr=0"
