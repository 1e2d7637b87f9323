"""Reading what the earlier stages wrote under ``reports/`` (any subset of the protocols)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..catalog import PROTOCOLS

# each writes reports/<stage>/<protocol>/metrics.json, but transfer: reports/finetune/transfer/<name>/,
# read into its source protocol's reports (the encoder evaluated; its MLflow run)
STAGES = ("pretrain", "linear", "knn", "finetune", "transfer", "detect")
TRANSFER_DIR = ("finetune", "transfer")
# what was evaluated: the pretrained encoder (keys without a variant part), the random-init
# baseline encoder (``<stage>/random_init/...``), the hand-crafted baseline (``<stage>/handcrafted/...``)
PRETRAINED, BASELINE, HANDCRAFTED = "pretrained", "random_init", "handcrafted"
VARIANTS = (PRETRAINED, BASELINE, HANDCRAFTED)


@dataclass
class ProtocolReports:
    """Everything one protocol's stages reported; absent files give empty values."""

    protocol: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> its metrics.json
    pretrain_stats: list[dict] = field(default_factory=list)
    linear_history: list[dict] = field(default_factory=list)
    linear_history_random: list[dict] = field(default_factory=list)
    linear_history_handcrafted: list[dict] = field(default_factory=list)
    predictions: pd.DataFrame | None = None

    def all_metrics(self) -> dict[str, float]:
        """The union of the stage metrics, under their JSON keys."""
        return {k: v for stage in STAGES for k, v in self.metrics.get(stage, {}).items()}

    def evaluation(self, variant: str = PRETRAINED) -> dict[str, float]:
        """Linear/KNN/detection metrics of ``variant`` (one of :data:`VARIANTS`), under the keys
        without the variant part."""
        return evaluation_metrics(self.all_metrics(), variant)


# metric-key prefixes of the evaluations (the finetune stage writes semi/ and finetune/)
EVALUATION_STAGES = ("linear", "knn", "semi", "finetune", "transfer", "detect")


def evaluation_metrics(metrics: Mapping[str, float], variant: str = PRETRAINED) -> dict[str, float]:
    """The evaluation metrics (``linear/``, ``knn/``, ``semi/``, ``finetune/``, ``transfer/``,
    ``detect/``; per-epoch ``*_curve`` series left out) of ``variant``: the pretrained encoder
    (``<stage>/<metric>``), the random-init baseline (``<stage>/random_init/<metric>``) or the
    hand-crafted baseline (``<stage>/handcrafted/<metric>``), under the keys without the variant part. ``metrics``
    may hold anything else too (an MLflow run's pretraining metrics, say)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    out = {}
    for key, value in metrics.items():
        prefix, _, rest = key.partition("/")
        if prefix not in EVALUATION_STAGES or not rest or key.endswith("_curve"):
            continue
        head, _, tail = rest.partition("/")
        of = head if tail and head in VARIANTS[1:] else PRETRAINED
        if of == variant:
            out[f"{prefix}/{tail if of != PRETRAINED else rest}"] = value
    return out


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def transfer_metrics_path(reports: Path, name: str) -> Path:
    """The metrics.json of ``transfer@<name>``."""
    return reports.joinpath(*TRANSFER_DIR, name, "metrics.json")


def load_reports(reports: Path, protocols: Iterable[str] = tuple(PROTOCOLS),
                 transfers: Mapping[str, str] | None = None) -> dict[str, ProtocolReports]:
    """The ``protocols`` (default: the built-in ones) with at least one stage's metrics.json, in
    order; ``transfers`` (name -> source protocol, params.yaml ``transfer``) adds each transfer's
    metrics to its source's ``transfer`` stage."""
    found: dict[str, ProtocolReports] = {}
    for protocol in protocols:
        rep = ProtocolReports(protocol)
        for stage in STAGES:
            path = reports / stage / protocol / "metrics.json"
            if stage != "transfer" and path.exists():
                rep.metrics[stage] = read_json(path)
        for name, source in (transfers or {}).items():
            path = transfer_metrics_path(reports, name)
            if source == protocol and path.exists():
                rep.metrics.setdefault("transfer", {}).update(read_json(path))
        if not rep.metrics:
            continue
        optional = {
            "pretrain_stats": reports / "pretrain" / protocol / "stats.jsonl",
            "linear_history": reports / "linear" / protocol / "history.jsonl",
            "linear_history_random": reports / "linear" / protocol / "history_random_init.jsonl",
            "linear_history_handcrafted": reports / "linear" / protocol / "history_handcrafted.jsonl",
        }
        for attr, path in optional.items():
            if path.exists():
                setattr(rep, attr, read_jsonl(path))
        predictions = reports / "linear" / protocol / "predictions.csv"
        if predictions.exists():
            rep.predictions = pd.read_csv(predictions)
        found[protocol] = rep
    return found
