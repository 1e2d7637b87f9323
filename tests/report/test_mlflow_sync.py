"""MLflow sync of the report stage and the CI gate .ci/check_mlflow.py, on a temp sqlite DB.

One writer per fact: the stages log their params, curves and metrics (``_stages`` logs what
they log, from their outputs); the report adds only its tables, figure and summary."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from skelrep.config import run_identity
from skelrep.io import write_text_atomic
from skelrep.params import repo_root
from skelrep.report.collect import load_reports, read_jsonl
from skelrep.report.mlflow_sync import sync
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import build_tables, render_markdown
from skelrep.tracking.mlflow_run import RERUN_OF_TAG, RUN_KEY_TAG, epoch_curves, stage_run
from tests.conftest import use_mlflow_db
from tests.report import fake_params, write_fake_reports

REPO = Path(__file__).resolve().parents[2]
PROTOCOLS = ("ntu60-xsub", "pku1-xsub")


_spec = importlib.util.spec_from_file_location("check_mlflow", REPO / ".ci" / "check_mlflow.py")
check_mlflow = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_mlflow)


@pytest.fixture
def repo(tmp_path, template_db, monkeypatch):
    """A fake repository root with stage outputs, params, an encoder and its own MLflow DB."""
    use_mlflow_db(tmp_path, template_db, monkeypatch)
    monkeypatch.chdir(tmp_path)
    write_fake_reports(tmp_path, protocols=PROTOCOLS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(fake_params()))
    (tmp_path / "models" / "ntu60-xsub").mkdir(parents=True)
    (tmp_path / "models" / "ntu60-xsub" / "encoder.pt").write_bytes(b"fake encoder")
    # figures are tested elsewhere; a stand-in keeps these tests fast
    (tmp_path / "reports" / "figures").mkdir()
    (tmp_path / "reports" / "figures" / "confusion_ntu60-xsub.png").write_bytes(b"png")
    assert repo_root() == tmp_path
    return tmp_path


LINEAR_CURVES = ("lr", "train_loss", "train_top1", "test_top1", "test_top5")


def _stages(root: Path, stages=("pretrain", "linear", "knn", "detect")) -> None:
    """What each stage logs into MLflow, from the outputs it wrote (stages/<stage>.py)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    reports = root / "reports"
    for protocol in PROTOCOLS:
        for stage in stages:
            metrics = reports / stage / protocol / "metrics.json"
            if not metrics.exists():
                continue
            with stage_run(run_identity(params, protocol), stage) as run:
                if stage == "pretrain":
                    run.log_params({"method": "usdrl", "usdrl.arch": "dste"})
                    run.log_curves(epoch_curves(read_jsonl(reports / stage / protocol / "stats.jsonl"), "pretrain"))
                if stage == "linear":
                    for name, prefix in (("history", "linear"), ("history_random_init", "linear/random_init")):
                        rows = read_jsonl(reports / stage / protocol / f"{name}.jsonl")
                        run.log_curves(epoch_curves(rows, prefix, LINEAR_CURVES, suffix="_curve"))
                run.log_metrics(json.loads(metrics.read_text()))


def _report(root: Path) -> None:
    """What the report stage does, minus the figures: tables, then the MLflow sync."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    reports = load_reports(root / "reports")
    tables = build_tables(params, reports, table_entries(load_published()))
    for bench, rows in tables:
        write_text_atomic(root / "reports" / "benchmarks" / f"{bench.name}.md",
                          render_markdown(bench, rows, params, tuple(reports)))
    (root / "reports" / "summary.json").write_text("{}\n")
    sync(params, reports, tables, root / "reports")


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _runs(protocol: str):
    client = _client()
    exp = client.get_experiment_by_name(protocol)
    return client.search_runs([exp.experiment_id]) if exp else []


def _json_metrics(root: Path, protocol: str) -> dict:
    out = {}
    for stage in ("pretrain", "linear", "knn", "detect"):
        path = root / "reports" / stage / protocol / "metrics.json"
        if path.exists():
            out.update(json.loads(path.read_text()))
    return out


def _artifacts(run_id: str, folder: str) -> list[str]:
    return sorted(a.path for a in _client().list_artifacts(run_id, folder))


def _points(run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in _client().get_metric_history(run_id, key))


def test_the_report_logs_only_its_own_facts_into_the_configuration_run(repo):
    _report(repo)  # the report alone (mlflow.db deleted, every stage cached): its artifacts only
    params = fake_params()
    for protocol in PROTOCOLS:
        runs = _runs(protocol)
        assert len(runs) == 1
        run = runs[0]
        assert run.data.tags[RUN_KEY_TAG] == run_identity(params, protocol).run_key
        assert run.data.tags["stage.report"] == "done" and run.data.tags["method"] == "usdrl"
        assert run.data.metrics == {} and run.data.params == {}
    run_id = _runs("ntu60-xsub")[0].info.run_id
    assert _artifacts(run_id, "tables") == ["tables/ntu60.json", "tables/ntu60.md"]
    assert _artifacts(run_id, "figures") == ["figures/confusion_ntu60-xsub.png"]
    assert _artifacts(run_id, "model") == [] and "summary.json" in _artifacts(run_id, "")


def test_each_fact_has_one_writer(repo):
    _stages(repo)
    params = fake_params()
    before = {}
    for protocol in PROTOCOLS:
        run = _runs(protocol)[0]
        before[protocol] = {k: _points(run.info.run_id, k) for k in run.data.metrics}
        assert _points(run.info.run_id, "pretrain/loss/sim") == [(e, 5.0 / e) for e in range(1, 5)]
        assert [s for s, _ in _points(run.info.run_id, "linear/random_init/test_top1_curve")] == [2, 4]
    table = None
    for _ in range(2):  # a report, then a second one: no new run, point, param or table row
        _report(repo)
        for protocol in PROTOCOLS:
            runs = _runs(protocol)
            assert len(runs) == 1
            run = runs[0]
            assert run.data.tags[RUN_KEY_TAG] == run_identity(params, protocol).run_key
            assert {k: _points(run.info.run_id, k) for k in run.data.metrics} == before[protocol]
            expected = _json_metrics(repo, protocol)
            assert {k: run.data.metrics[k] for k in expected} == pytest.approx(expected, abs=1e-12)
            assert run.data.params == {"method": "usdrl", "usdrl.arch": "dste"}
        run_id = _runs("ntu60-xsub")[0].info.run_id
        got = json.loads(Path(_client().download_artifacts(run_id, "tables/ntu60.json", str(repo / "dl"))).read_text())
        assert table is None or got == table
        table = got
    assert len(table["data"]) > 2
    assert "detect/mAP_action_theta0.5" in _runs("pku1-xsub")[0].data.metrics

    first = _runs("ntu60-xsub")[0]
    _stages(repo, ("pretrain", "linear"))  # `dvc repro -f`: a new run of this execution, the first one kept
    runs = _runs("ntu60-xsub")  # newest first
    assert len(runs) == 2 and runs[1].info.run_id == first.info.run_id
    rerun = runs[0]
    assert rerun.data.tags[RERUN_OF_TAG] == first.info.run_id
    assert {k: _points(first.info.run_id, k) for k in first.data.metrics} == before["ntu60-xsub"]
    assert len(_client().get_metric_history(rerun.info.run_id, "pretrain/loss/sim")) == 4
    assert len(_client().get_metric_history(rerun.info.run_id, "linear/test_top1_curve")) == 2
    assert "knn/top1" not in rerun.data.metrics  # knn did not run again: its facts stay in the first run
    _report(repo)  # the report adds to the latest run: no third run
    assert [r.info.run_id for r in _runs("ntu60-xsub")] == [rerun.info.run_id, first.info.run_id]
    assert _artifacts(rerun.info.run_id, "tables") == ["tables/ntu60.json", "tables/ntu60.md"]
    assert check_mlflow.main([]) == 0  # each stage's latest run holds what reports/ says


def test_check_mlflow_passes_on_synced_db_and_fails_on_a_difference(repo, capsys):
    _stages(repo)
    _report(repo)
    assert check_mlflow.main([]) == 0
    assert "MLflow matches the reports" in capsys.readouterr().out

    path = repo / "reports" / "linear" / "ntu60-xsub" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["linear/top1_last"] += 1e-6
    path.write_text(json.dumps(metrics))
    assert check_mlflow.main([]) == 1
    out = capsys.readouterr().out
    assert "FAIL: ntu60-xsub: linear/top1_last" in out and "pku1-xsub" in out


def test_check_mlflow_fails_without_runs(repo, capsys):
    assert check_mlflow.main([]) == 1
    assert "found 0" in capsys.readouterr().out


def test_check_mlflow_names_the_stage_to_force(repo, capsys, caplog):
    _stages(repo, ("linear", "knn", "detect"))  # pretrain cached by DVC: never logged here
    with caplog.at_level("WARNING"):
        _report(repo)
    assert "`dvc repro -f pretrain@ntu60-xsub`" in caplog.text
    assert check_mlflow.main([]) == 1
    out = capsys.readouterr().out
    assert "pretrain/loss_last" in out and "`dvc repro -f pretrain@pku1-xsub`" in out
    assert "linear" not in out.split("FAIL", 1)[1]


def test_a_rerun_with_other_values_is_what_the_gate_checks(repo, capsys):
    """A stage re-run with new outputs (a code change) logs into a new run; the gate compares each
    stage's metrics with its latest run, so the old run's values no longer count."""
    _stages(repo)
    _report(repo)
    path = repo / "reports" / "linear" / "ntu60-xsub" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["linear/top1_last"] += 1.0
    path.write_text(json.dumps(metrics))
    assert check_mlflow.main([]) == 1  # MLflow still holds the old value
    _stages(repo, ("linear",))
    assert check_mlflow.main([]) == 0
    assert "MLflow matches the reports" in capsys.readouterr().out


def test_experiments_open_on_the_runs_table_with_key_columns(repo):
    params = {**fake_params(), "detection": {"official_theta": 0.5}}  # PKU-MMD I: its mAP_action column
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _stages(repo, ("linear",))
    client = _client()
    tags = client.get_experiment_by_name("pku1-xsub").tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI view
    view = json.loads(tags["mlflow.sharedViewState.skelrep"])
    assert {"metrics.`linear/top1_last`", "metrics.`knn/top1`", "metrics.`detect/mAP_action_theta0.5`",
            "tags.`changes`"} <= set(view["selectedColumns"])
    assert "metrics.`detect/mAP_action_theta0.5`" not in json.loads(
        client.get_experiment_by_name("ntu60-xsub").tags["mlflow.sharedViewState.skelrep"])["selectedColumns"]


def test_fine_tuning_and_transfer_metrics_in_the_runs_and_the_gate(repo, capsys, caplog):
    """finetune@ logs into its protocol's run, transfer@ into its source's; the report adds the transfer
    table there; the gate checks both files and names transfer@<name> when its metrics are missing."""
    transfers = {"ntu60-xsub-to-pku2-xsub": ("ntu60-xsub", "pku2-xsub")}
    write_fake_reports(repo, protocols=PROTOCOLS, finetune=("ntu60-xsub",), transfers=transfers)
    params = {**fake_params(), "transfer": {name: {"source": s, "source_dataset": "ntu60", "target": t,
                                                   "target_dataset": "pku2"} for name, (s, t) in transfers.items()}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _stages(repo, ("pretrain", "linear", "knn", "finetune", "detect"))  # transfer@ not logged (cached)
    reports = load_reports(repo / "reports", PROTOCOLS, {k: v[0] for k, v in transfers.items()})
    tables = build_tables(params, reports, table_entries(load_published()))
    for bench, rows in tables:
        write_text_atomic(repo / "reports" / "benchmarks" / f"{bench.name}.md",
                          render_markdown(bench, rows, params, tuple(reports)))
    (repo / "reports" / "summary.json").write_text("{}\n")
    with caplog.at_level("WARNING"):
        sync(params, reports, tables, repo / "reports")
    assert "`dvc repro -f transfer@ntu60-xsub-to-pku2-xsub`" in caplog.text
    run = _runs("ntu60-xsub")[0]
    assert run.data.metrics["semi/1pct/top1_last_mean"] == 20.0
    assert _artifacts(run.info.run_id, "tables") == ["tables/ntu60.json", "tables/ntu60.md", "tables/transfer.json",
                                                     "tables/transfer.md"]
    assert _artifacts(_runs("pku1-xsub")[0].info.run_id, "tables") == ["tables/pkummd1.json", "tables/pkummd1.md"]
    assert check_mlflow.main([]) == 1
    out = capsys.readouterr().out
    assert "transfer/pku2-xsub/finetune/top1_last" in out and "`dvc repro -f transfer@ntu60-xsub-to-pku2-xsub`" in out

    with stage_run(run_identity(params, "ntu60-xsub"), "transfer") as mlrun:  # what transfer@ logs
        mlrun.log_metrics(json.loads((repo / "reports/finetune/transfer/ntu60-xsub-to-pku2-xsub/metrics.json")
                                     .read_text()))
    assert check_mlflow.main([]) == 0
