"""One writer per fact, with the real pretrain stage on a local sqlite MLflow: the stage logs its
curve, metrics, params and encoder; a report afterwards adds no point, metric or param of it,
and a forced re-run of the stage (same outputs) adds no duplicate point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from skelrep.config import run_identity
from skelrep.report.collect import load_reports, read_jsonl
from skelrep.report.mlflow_sync import sync
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import build_tables

from ..stages.test_pretrain_stage import ARGS, PROTOCOL, STATS, _params, _stage, workspace  # noqa: F401


@pytest.fixture
def tracked(workspace, template_db, monkeypatch):  # noqa: F811
    shutil.copy(template_db, workspace / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'mlflow.db'}")
    monkeypatch.setenv("DVC_ROOT", str(workspace))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    params = _params()
    params["mlflow"]["enabled"] = True
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def _run(params):
    from mlflow import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(PROTOCOL)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["skelrep.run_key"] == run_identity(params, PROTOCOL).run_key
    run = runs[0]
    curves = {k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k))
              for k in run.data.metrics}
    return client, run, curves


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
    assert [a.path for a in client.list_artifacts(run.info.run_id, "encoder")] == ["encoder/encoder.pt"]

    reports = load_reports(root / "reports", [PROTOCOL])
    tables = build_tables(tracked, reports, table_entries(load_published()))
    for bench, _ in tables:
        (root / "reports/benchmarks").mkdir(parents=True, exist_ok=True)
        (root / "reports/benchmarks" / f"{bench.name}.md").write_text("table\n")
    sync(tracked, reports, tables, root / "reports")
    _, after, after_curves = _run(tracked)
    assert after_curves == curves and after.data.params == run.data.params
    assert after.data.tags["stage.report"] == "done"

    stage.main(ARGS)  # `dvc repro -f pretrain@<protocol>`: the same run, the same (deterministic) points
    _, _, again = _run(tracked)
    assert again["pretrain/loss"] == curves["pretrain/loss"]
