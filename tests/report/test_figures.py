"""Figures: written, and byte-identical across two runs."""

from __future__ import annotations

from skelrep.report.collect import load_reports
from skelrep.report.figures import confusion_matrix, write_figures
from tests.report import write_fake_reports

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_written_and_byte_identical(tmp_path):
    outputs = []
    for run in ("a", "b"):
        reports = load_reports(write_fake_reports(tmp_path / run, protocols=("ntu60-xsub", "pku2-xsub")))
        written = write_figures(reports, tmp_path / run / "figures")
        outputs.append({p.name: p.read_bytes() for p in written})
    assert sorted(outputs[0]) == ["confusion_ntu60-xsub.png", "confusion_pku2-xsub.png", "linear_accuracy.png",
                                  "pretrain_loss.png"]
    assert all(data.startswith(PNG) for data in outputs[0].values())
    assert outputs[0] == outputs[1]
    assert b"Software" not in outputs[0]["pretrain_loss.png"]


def test_stale_confusion_removed_and_empty_reports_still_plot(tmp_path):
    out = tmp_path / "figures"
    out.mkdir()
    (out / "confusion_ntu60-xview.png").write_bytes(b"old")
    written = write_figures({}, out)
    assert sorted(p.name for p in out.iterdir()) == ["linear_accuracy.png", "pretrain_loss.png"]
    assert [p.name for p in written] == ["pretrain_loss.png", "linear_accuracy.png"]


def test_confusion_matrix_is_row_normalised(tmp_path):
    reports = load_reports(write_fake_reports(tmp_path, protocols=("ntu60-xsub",)))
    matrix, classes = confusion_matrix(reports["ntu60-xsub"].predictions)
    assert classes == [0, 1, 2]
    assert matrix.sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    assert (matrix.diagonal() < 1.0).any()
