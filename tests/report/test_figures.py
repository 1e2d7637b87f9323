"""Figures: written, byte-identical across two runs, their axes and legends naming the classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skelrep.evaluation.detection.dense import draw_timeline, plot_timeline, timeline_classes
from skelrep.report.collect import load_reports
from skelrep.report.figures import class_labels, confusion_figure, confusion_matrix, draw_confusion, write_figures
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


def _predictions(n: int, names: bool = True) -> pd.DataFrame:
    actual = np.arange(n)
    frame = pd.DataFrame({"sample": [f"s{i}" for i in actual], "actual": actual, "predicted": (actual + 1) % n})
    if names:
        frame["actual_name"] = [f"class {k} name" for k in frame.actual]
        frame["predicted_name"] = [f"class {k} name" for k in frame.predicted]
    return frame


def _tick_labels(fig) -> tuple[list[str], list[str]]:
    ax = fig.axes[0]
    return [t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()]


@pytest.mark.parametrize("n", [5, 60, 120])
def test_confusion_axes_name_every_class(n):
    x, y = _tick_labels(draw_confusion("p", _predictions(n)))
    assert x == y == [f"class {k} name" for k in range(n)]


def test_confusion_axes_without_names_show_ids_and_thin_out_beyond_120():
    x, y = _tick_labels(draw_confusion("p", _predictions(4, names=False)))
    assert y == ["0", "1", "2", "3"]
    _, y = _tick_labels(draw_confusion("p", _predictions(150)))
    assert y == [f"class {k} name" for k in range(0, 150, 2)]
    long = _predictions(3)
    long["actual_name"] = long["predicted_name"] = "a very long action name that goes on and on"
    assert class_labels(long, [0, 1, 2])[0] == "a very long action name tha…"


def test_the_confusion_png_with_names_is_byte_identical(tmp_path):
    for run in ("a", "b"):
        confusion_figure("p", _predictions(60), tmp_path / f"{run}.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_detection_timeline_legend_names_the_classes(tmp_path):
    truth = np.array([0, 0, 3, 3, 0, 7, 7, 0])
    predicted = np.array([0, 3, 3, 0, 0, 7, 2, 2])
    names = [f"action {k}" for k in range(1, 52)]
    assert timeline_classes(truth, predicted, names) == [(2, "2: action 2"), (3, "3: action 3"), (7, "7: action 7")]
    fig = draw_timeline(truth, predicted, "v", names)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["2: action 2", "3: action 3", "7: action 7"]
    assert timeline_classes(truth, predicted)[0] == (2, "2")  # no names: the class ids
    for run in ("a", "b"):
        plot_timeline(tmp_path / f"{run}.png", truth, predicted, "v", names)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
