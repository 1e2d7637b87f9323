"""``skelrep compare``: rows per configuration from MLflow runs, and 3s late fusion."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skelrep.config import run_identity
from skelrep.evaluation.metrics import topk_accuracy
from skelrep.io import write_npz_atomic
from skelrep.report.compare import compare, fuse_scores
from skelrep.report.published import load_published, table_entries
from skelrep.tracking.mlflow_run import stage_run
from tests.conftest import use_mlflow_db
from tests.report import fake_params, linear_metrics

PROTOCOL = "ntu60-xsub"
LABELS = np.array([0, 1, 2, 0, 1, 2])
SAMPLES = np.array([f"s{i}" for i in range(6)])


def _probs(correct: list[bool], confidence: float) -> np.ndarray:
    """Rows scoring the true class (correct) or the next class with ``confidence``."""
    p = np.full((len(LABELS), 3), (1 - confidence) / 2, dtype=np.float32)
    for i, ok in enumerate(correct):
        p[i, LABELS[i] if ok else (LABELS[i] + 1) % 3] = confidence
    return p


# each stream is right on 4 of 6 samples; where two streams agree they outvote the third
STREAM_PROBS = {
    "joint": _probs([True, True, True, True, False, False], 0.6),
    "bone": _probs([True, True, False, False, True, True], 0.6),
    "motion": _probs([False, False, True, True, True, True], 0.6),
}


def _params(method: str = "usdrl", modality: str | None = "joint", hidden: int = 64) -> dict:
    params = fake_params()
    params["method"] = method
    if method == "usdrl":
        params["usdrl"] = {"encoder": {"arch": "dste", "hidden": hidden}, "train": {"modality": modality}}
    else:
        params[method] = {"encoder": {"hidden": hidden}}
    return params


def _log_run(tmp: Path, params: dict, top1: float, probs: np.ndarray | None = None,
             protocol: str = PROTOCOL, baseline: dict | None = None) -> None:
    """What the linear and knn stages log for one configuration."""
    with stage_run(run_identity(params, protocol, baseline), "linear") as run:
        run.log_metrics(linear_metrics(top1))
        run.log_metrics({"knn/top1": top1 - 5, "knn/random_init/top1": 3.0, "knn/handcrafted/top1": top1 / 8,
                         "linear/test_top1_curve": 1.0})
        if probs is not None:
            path = tmp / f"scores-{top1}" / "test_scores.npz"
            write_npz_atomic(path, probs=probs, label=LABELS, sample=SAMPLES)
            run.log_artifact(path, "linear")


@pytest.fixture
def mlflow_db(tmp_path, template_db, monkeypatch):
    use_mlflow_db(tmp_path, template_db, monkeypatch)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _table(out: Path, name: str = "ntu60") -> str:
    return (out / f"{name}.md").read_text()


def _rows(out: Path) -> pd.DataFrame:
    frame = pd.read_csv(out / "results.csv")
    return frame[(frame.protocol == PROTOCOL) & (frame.source == "measured")]


def test_fuse_scores_sums_softmax_scores():
    fused = fuse_scores([{"probs": p, "label": LABELS, "sample": SAMPLES} for p in STREAM_PROBS.values()])
    expected = topk_accuracy(sum(STREAM_PROBS.values()), LABELS, 1)
    assert fused["linear/top1_last"] == pytest.approx(expected)
    # the majority of two correct streams wins on every sample: fusion beats each stream (66.7 %)
    assert fused["linear/top1_last"] == pytest.approx(100.0)
    assert topk_accuracy(STREAM_PROBS["joint"], LABELS, 1) == pytest.approx(200 / 3)


def test_fuse_scores_refuses_different_test_sets():
    a = {"probs": STREAM_PROBS["joint"], "label": LABELS, "sample": SAMPLES}
    b = dict(a, sample=SAMPLES[::-1])
    with pytest.raises(ValueError, match="different test samples"):
        fuse_scores([a, b])
    with pytest.raises(ValueError, match="at least one"):
        fuse_scores([])


def test_one_row_per_method_and_a_fusion_row_for_three_streams(mlflow_db):
    for i, (stream, probs) in enumerate(STREAM_PROBS.items()):
        _log_run(mlflow_db, _params(modality=stream), 40.0 + i, probs)
    _log_run(mlflow_db, _params("umurl", None), 50.0)
    out = mlflow_db / "reports" / "compare"
    compare(out, table_entries(load_published()))

    text = _table(out)
    for label in ("USDRL (DSTE, joint) — measured", "USDRL (DSTE, bone) — measured",
                  "USDRL (DSTE, motion) — measured", "UmURL — measured",
                  "3s-USDRL (DSTE, 3s late fusion (J+B+M)) — measured",
                  "Random-init baseline, UmURL architecture — measured"):
        assert label in text, label
    assert "(paper)" in text  # published rows next to the measured ones
    rows = _rows(out)
    fused = rows[rows.variant == "DSTE, 3s late fusion (J+B+M)"].set_index("metric").value
    assert fused["linear/top1_last"] == pytest.approx(100.0)
    assert set(fused.index) == {"linear/top1_last", "linear/top5_last"}
    umurl = rows[(rows.method == "UmURL") & rows.variant.isna()].set_index("metric").value
    assert umurl["linear/top1_last"] == 50.0 and umurl["knn/top1"] == 45.0
    assert "linear/test_top1_curve" not in set(rows.metric)
    # one hand-crafted baseline row (it depends on no method), from the latest run
    assert text.count("Hand-crafted baseline (joint coordinates, logistic regression) — measured") == 1
    handcrafted = rows[rows.method == "Hand-crafted baseline"].set_index("metric").value
    assert handcrafted["linear/top1_last"] == 25.0 and handcrafted["knn/top1"] == 50.0 / 8
    assert not any(m.startswith(("linear/handcrafted", "knn/handcrafted")) for m in rows.metric)


def test_no_hand_crafted_row_from_runs_without_it(mlflow_db):
    params = _params()
    with stage_run(run_identity(params, PROTOCOL), "linear") as run:  # logged before the baseline existed
        run.log_metrics({k: v for k, v in linear_metrics(40.0).items() if "/handcrafted/" not in k})
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    assert "USDRL (DSTE, joint) — measured" in _table(out) and "Hand-crafted baseline (joint" not in _table(out)


def test_no_fusion_row_until_all_three_streams_ran(mlflow_db):
    for stream in ("joint", "bone"):
        _log_run(mlflow_db, _params(modality=stream), 40.0, STREAM_PROBS[stream])
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    assert "3s-USDRL" not in _table(out)


def test_streams_of_different_configurations_are_not_fused(mlflow_db):
    _log_run(mlflow_db, _params(modality="joint"), 40.0, STREAM_PROBS["joint"])
    _log_run(mlflow_db, _params(modality="bone"), 41.0, STREAM_PROBS["bone"])
    _log_run(mlflow_db, _params(modality="motion", hidden=128), 42.0, STREAM_PROBS["motion"])
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    text = _table(out)
    assert "3s-USDRL" not in text
    assert text.count("USDRL (DSTE, motion)") == 2  # its measured row and its baseline row


def test_ablations_with_the_same_name_get_distinct_rows(mlflow_db):
    _log_run(mlflow_db, _params(hidden=64), 40.0)
    _log_run(mlflow_db, _params(hidden=128), 45.0)
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    labels = [line.split("|")[1].strip() for line in _table(out).splitlines()
              if line.startswith("| USDRL (DSTE, joint) [config ")]
    assert len(labels) == 2 and labels[0] != labels[1]


def test_a_rerun_of_the_same_configuration_is_one_row(mlflow_db):
    params = _params()
    _log_run(mlflow_db, params, 40.0)
    _log_run(mlflow_db, copy.deepcopy(params), 40.0)
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    assert _table(out).count("USDRL (DSTE, joint) — measured") == 1


def test_rows_show_what_a_configuration_changes(mlflow_db):
    profile = _params(hidden=64)
    _log_run(mlflow_db, profile, 40.0, baseline=profile)
    _log_run(mlflow_db, _params(hidden=128), 45.0, baseline=profile)
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    text = _table(out)
    assert "| USDRL (DSTE, joint) — measured |" in text
    assert "| USDRL (DSTE, joint) · hidden=128 — measured | 45.0 |" in text
    assert "Random-init baseline, USDRL (DSTE, joint) · hidden=128 architecture — measured" in text


def test_a_rerun_of_one_stage_updates_its_cells_and_keeps_the_others(mlflow_db):
    params = _params()
    _log_run(mlflow_db, params, 40.0)  # linear and knn: knn/top1 = 35.0
    with stage_run(run_identity(params, PROTOCOL), "linear") as run:  # linear again: a new run
        run.log_metrics({"linear/top1_last": 42.0})
    out = mlflow_db / "compare"
    compare(out, table_entries(load_published()))
    measured = _rows(out)
    usdrl = measured[measured.method == "USDRL"].set_index(["variant", "metric"]).value["DSTE, joint"]
    assert usdrl["linear/top1_last"] == 42.0 and usdrl["knn/top1"] == 35.0
