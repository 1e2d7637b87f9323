"""The CI gates' own logic (.ci/check_lock.py, .ci/check_metrics.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[1] / ".ci"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_lock, check_metrics = _load("check_lock"), _load("check_metrics")


def test_strict_outputs_are_data_stages_and_random_init_encoders():
    lock = {"stages": {
        "download@ntu60": {"outs": [{"path": "data/raw/ntu60", "md5": "a"}]},
        "preprocess@pku1-xsub": {"outs": [{"path": "data/processed/pku1-xsub.h5", "md5": "b"},
                                          {"path": "reports/preprocess/pku1-xsub.json", "md5": "c"}]},
        "pretrain@pku1-xsub": {"outs": [{"path": "models/pku1-xsub/encoder.pt", "md5": "d"},
                                        {"path": "models/pku1-xsub/encoder_random.pt", "md5": "e"}]},
        "linear@pku1-xsub": {"outs": [{"path": "reports/linear/pku1-xsub/history.jsonl", "md5": "f"}]},
    }}
    assert check_lock.strict_outs(lock) == {
        "download@ntu60": {"data/raw/ntu60": "a"},
        "preprocess@pku1-xsub": {"data/processed/pku1-xsub.h5": "b", "reports/preprocess/pku1-xsub.json": "c"},
        "pretrain@pku1-xsub": {"models/pku1-xsub/encoder_random.pt": "e"}}


def test_metrics_compare_exact_and_by_tolerance():
    ref = {"linear/p/linear/top1": 40.0, "pretrain/p/loss": 2.0, "knn/p/knn/top1": float("nan")}
    near = {"linear/p/linear/top1": 40.0 + check_metrics.TOLERANCE_POINTS / 2,
            "pretrain/p/loss": 2.0 * (1 + check_metrics.TOLERANCE_LOSS / 2), "knn/p/knn/top1": float("nan")}
    assert check_metrics.compare(ref, near, exact=False) == []
    assert len(check_metrics.compare(ref, near, exact=True)) == 2
    far = {**near, "linear/p/linear/top1": 40.0 + 2 * check_metrics.TOLERANCE_POINTS}
    assert [f.split(":")[0] for f in check_metrics.compare(ref, far, exact=False)] == ["linear/p/linear/top1"]
    missing = {k: v for k, v in near.items() if k != "pretrain/p/loss"}
    assert check_metrics.compare(ref, missing, exact=False) == ["pretrain/p/loss: missing in this run"]
    # a metric the reference lacks (a stage's new metric) is named, not a crash
    new = {**near, "linear/p/linear/handcrafted/top1_last": 12.0}
    assert check_metrics.compare(ref, new, exact=False) == [
        "linear/p/linear/handcrafted/top1_last: not in the reference (a new metric?)"]
    assert check_metrics.compare(ref, {**near, "knn/p/knn/top1": 3.0}, exact=False)


def test_metrics_are_read_without_timings(tmp_path):
    (tmp_path / "linear" / "p").mkdir(parents=True)
    (tmp_path / "linear" / "p" / "metrics.json").write_text(json.dumps(
        {"linear/top1": 12.5, "linear/samples_per_s": 99.0, "note": "text"}))
    assert check_metrics.read_metrics(tmp_path) == {"linear/p/linear/top1": 12.5}


def test_fingerprint_names_the_kernels():
    fp = check_metrics.cpu_fingerprint()
    assert {"machine", "aten_capability", "numpy_simd", "torch_threads"} <= set(fp)
    assert fp == check_metrics.cpu_fingerprint()


@pytest.mark.skipif(not (CI / "reference_metrics.json").exists(), reason="no recorded reference yet")
def test_the_reference_covers_every_protocol_and_stage():
    ref = json.loads((CI / "reference_metrics.json").read_text())
    names = set(ref["metrics"])
    for stage in ("pretrain", "linear", "knn"):
        assert {n.split("/")[1] for n in names if n.startswith(stage + "/")} >= {
            "ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub"}
    assert any(n.startswith("detect/pku1-xsub/") for n in names)
