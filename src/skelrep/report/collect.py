"""Reading what the earlier stages wrote under ``reports/`` (any subset of the protocols)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..catalog import PROTOCOLS

STAGES = ("pretrain", "linear", "knn", "detect")
RANDOM_INIT = "random_init/"


@dataclass
class ProtocolReports:
    """Everything one protocol's stages reported; absent files give empty values."""

    protocol: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> its metrics.json
    pretrain_stats: list[dict] = field(default_factory=list)
    linear_history: list[dict] = field(default_factory=list)
    linear_history_random: list[dict] = field(default_factory=list)
    predictions: pd.DataFrame | None = None

    def all_metrics(self) -> dict[str, float]:
        """The union of the stage metrics, under their JSON keys."""
        return {k: v for stage in STAGES for k, v in self.metrics.get(stage, {}).items()}

    def evaluation(self, baseline: bool = False) -> dict[str, float]:
        """Linear/KNN/detection metrics of the pretrained encoder, or of the random-init baseline
        (``baseline=True``), under the keys without the ``random_init/`` part."""
        return evaluation_metrics(self.all_metrics(), baseline)


EVALUATION_STAGES = ("linear", "knn", "detect")


def evaluation_metrics(metrics: Mapping[str, float], baseline: bool = False) -> dict[str, float]:
    """The evaluation metrics (``linear/``, ``knn/``, ``detect/``; per-epoch ``*_curve`` series
    left out) of the pretrained encoder, or of the random-init baseline (``baseline=True``),
    under the keys without the ``random_init/`` part. ``metrics`` may hold anything else too
    (an MLflow run's pretraining metrics, say)."""
    out = {}
    for key, value in metrics.items():
        prefix, _, rest = key.partition("/")
        if prefix not in EVALUATION_STAGES or not rest or key.endswith("_curve"):
            continue
        if rest.startswith(RANDOM_INIT) == baseline:
            out[f"{prefix}/{rest.removeprefix(RANDOM_INIT)}"] = value
    return out


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_reports(reports: Path, protocols: Iterable[str] = tuple(PROTOCOLS)) -> dict[str, ProtocolReports]:
    """The ``protocols`` (default: the built-in ones) with at least one stage's metrics.json, in order."""
    found: dict[str, ProtocolReports] = {}
    for protocol in protocols:
        rep = ProtocolReports(protocol)
        for stage in STAGES:
            path = reports / stage / protocol / "metrics.json"
            if path.exists():
                rep.metrics[stage] = read_json(path)
        if not rep.metrics:
            continue
        optional = {
            "pretrain_stats": reports / "pretrain" / protocol / "stats.jsonl",
            "linear_history": reports / "linear" / protocol / "history.jsonl",
            "linear_history_random": reports / "linear" / protocol / "history_random_init.jsonl",
        }
        for attr, path in optional.items():
            if path.exists():
                setattr(rep, attr, read_jsonl(path))
        predictions = reports / "linear" / protocol / "predictions.csv"
        if predictions.exists():
            rep.predictions = pd.read_csv(predictions)
        found[protocol] = rep
    return found
