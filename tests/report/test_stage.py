"""The report stage CLI: all outputs written, identical bytes on a second run, MLflow optional."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from tests.report import stage_params, write_fake_reports

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("report_stage", REPO / "stages" / "report.py")
report_stage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_stage)

OUTPUTS = ["benchmarks/ntu120.md", "benchmarks/ntu60.md", "benchmarks/pkummd1.md", "benchmarks/pkummd2.md",
           "benchmarks/transfer.md", "figures/confusion_pku1-xsub.png", "figures/linear_accuracy.png",
           "figures/pretrain_loss.png", "index.html", "metrics.json", "results.csv", "summary.json"]


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exc:
        report_stage.main(["--help"])
    assert exc.value.code == 0
    assert "--no-mlflow" in capsys.readouterr().out


def _outputs(reports: Path) -> dict[str, bytes]:
    inputs = ("pretrain", "linear", "knn", "finetune", "detect")
    return {str(p.relative_to(reports)): p.read_bytes() for p in sorted(reports.rglob("*"))
            if p.is_file() and p.relative_to(reports).parts[0] not in inputs}


def test_stage_writes_all_outputs_without_mlflow(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    reports = write_fake_reports(tmp_path / "in", protocols=("pku1-xsub",))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(stage_params(mlflow=True)))
    report_stage.main(["--no-mlflow", "--reports", str(reports)])
    outputs = _outputs(reports)
    assert sorted(outputs) == OUTPUTS
    assert not (tmp_path / "mlflow.db").exists()
    # no absolute paths in any output (determinism across checkouts)
    assert str(tmp_path).encode() not in b"".join(outputs.values())
    # the four tables in the terminal: pku1-xsub's measured row with its linear, KNN and detection values
    printed = capsys.readouterr().out
    for title in ("NTU RGB+D 60", "NTU RGB+D 120", "PKU-MMD I (synthetic", "PKU-MMD II"):
        assert f"\n{title}" in "\n" + printed, title
    metrics = {**json.loads((reports / "linear/pku1-xsub/metrics.json").read_text()),
               **json.loads((reports / "knn/pku1-xsub/metrics.json").read_text()),
               **json.loads((reports / "detect/pku1-xsub/metrics.json").read_text())}
    block = next(b for b in printed.split("\n\n") if b.startswith("PKU-MMD I ("))
    row = next(line for line in block.splitlines() if line.startswith("USDRL (DSTE, joint) "))
    assert row.split()[-4:] == [f"{metrics[k]:.1f}" for k in ("linear/top1_last", "linear/top1_best_on_test",
                                                               "knn/top1")] + ["–"]
    # the detection values: a row per detection protocol
    for tag, key in (("[det: dense head]", "detect/mAP_action_theta0.5"),
                     ("[det: W]", "detect/window/mAP_action_theta0.5"),
                     ("[det: D]", "detect/dense_finetune/mAP_action_theta0.5")):
        row = next(line for line in block.splitlines() if line.startswith(f"USDRL (DSTE, joint) {tag}"))
        assert row.split()[-4:] == ["–", "–", "–", f"{metrics[key]:.1f}"]
