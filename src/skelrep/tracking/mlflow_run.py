"""The one place stages talk to MLflow. DVC decides what runs; MLflow records what ran.

- Tracking URI: ``sqlite:///<repo root>/mlflow.db`` with the root from ``DVC_ROOT`` (set by
  DVC, also inside ``dvc exp run --temp/--queue`` copies), so every run lands in one database.
- Each benchmark protocol is an MLflow experiment; each pipeline *configuration* is one run in
  it, found by a deterministic ``skelrep.run_key`` tag. What a run is (experiment, run key,
  tags, name) is a :class:`RunIdentity`, built by ``skelrep.config.run_identity``, the one
  place that knows the domain; this package knows no method, dataset or protocol (it imports
  nothing from ``skelrep.data``, ``skelrep.methods`` or ``skelrep.config``).
- ``stage_run(identity, stage)`` opens (or re-opens) that run, so every stage's columns land
  side by side and a forced re-run logs into the same run instead of creating a duplicate.
- **One writer per fact.** Each fact is logged by the stage that produces it, and by no other:

  ============  ==============================================================================
  stage         logs
  ============  ==============================================================================
  pretrain      identifying params (``method``, ``<method>.<key>``, ``data.<dataset>.source``),
                ``pretrain.*`` params, per-epoch curves ``pretrain/<stat>`` (step = epoch),
                ``reports/pretrain/<P>/metrics.json``, throughput/memory, the encoder artifact
  linear        ``linear.*`` params, curves ``linear[/random_init|/handcrafted]/<column>_curve``,
                ``reports/linear/<P>/metrics.json``, the ``test_scores.npz`` artifact
  knn           ``knn.*`` params, ``reports/knn/<P>/metrics.json``
  detect        ``detection.*`` params, ``reports/detect/pku1-xsub/metrics.json``
  report        only what no stage owns: the benchmark table artifacts (``tables/``), its
                figures (``figures/confusion_<P>.png``) and ``summary.json``
  ============  ==============================================================================

  So a run whose stage was skipped (its outputs cached by DVC, say after ``mlflow.db`` was
  deleted) lacks that stage's facts: ``dvc repro -f <stage>@<protocol>`` logs them again.
  ``.ci/check_mlflow.py`` names the stage to force.
- Nothing from MLflow (run ids, times) is ever written into a DVC output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..params import repo_root
from ..schema import boolean

log = logging.getLogger(__name__)

RUN_KEY_TAG = "skelrep.run_key"
CONFIG_KEY_TAG = "skelrep.config_key"  # the configuration across protocols (one comparison row)
STREAM_KEY_TAG = "skelrep.stream_key"  # the same with the input modality left out (late fusion)

MLFLOW_SCHEMA = {"enabled": boolean}  # the params.yaml `mlflow` section


@dataclass(frozen=True)
class RunIdentity:
    """Which MLflow run a stage logs into: ``experiment`` (the protocol), ``run_key`` (the
    ``skelrep.run_key`` tag that finds the run), the ``tags`` every stage sets on it, the
    ``run_name`` given when the run is created, and whether tracking is ``enabled`` at all."""

    experiment: str
    run_key: str
    tags: Mapping[str, Any]
    run_name: str
    enabled: bool = True


def tracking_uri(root: Path | None = None) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(root or repo_root()).resolve() / 'mlflow.db'}"


def run_key(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:20]


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def epoch_curves(rows: Iterable[Mapping[str, Any]], prefix: str, keys: Iterable[str] | None = None,
                 suffix: str = "") -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series ``<prefix>/<key><suffix>`` -> ``[(epoch, value)]`` of the rows'
    ``keys`` (default: every key but ``epoch``); missing and None values are left out."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        for key in (keys if keys is not None else [k for k in row if k != "epoch"]):
            if row.get(key) is not None:
                series[f"{prefix}/{key}{suffix}"].append((int(row["epoch"]), float(row[key])))
    return dict(series)


def _experiment_id(mlflow, name: str, root: Path) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # artifact root under the repository, created once per experiment
    location = (root / "mlruns" / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another process
        return mlflow.get_experiment_by_name(name).experiment_id


class RunLogger:
    """Thin wrapper over an active MLflow run; params are logged once, metrics any time."""

    def __init__(self, mlflow, run_id: str):
        self._mlflow = mlflow
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        client = self._mlflow.MlflowClient()
        existing = client.get_run(self.run_id).data.params
        new = {k: str(v)[:6000] for k, v in params.items() if k not in existing}
        if new:
            self._mlflow.log_params(new)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k.replace("@", "_"): float(v) for k, v in metrics.items() if v is not None}
        if clean:
            self._mlflow.log_metrics(clean, step=step)

    def log_curves(self, series: Mapping[str, Iterable[tuple[int, float]]]) -> None:
        """Log each ``(step, value)`` point of each series that the run does not hold yet, so
        logging a curve again (a resumed or repeated stage) adds no duplicate points."""
        client = self._mlflow.MlflowClient()
        by_step: dict[int, dict[str, float]] = defaultdict(dict)
        for key, points in series.items():
            logged = {(m.step, m.value) for m in client.get_metric_history(self.run_id, key.replace("@", "_"))}
            for step, value in points:
                if (int(step), float(value)) not in logged:
                    by_step[int(step)][key] = float(value)
        for step in sorted(by_step):
            self.log_metrics(by_step[step], step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self._mlflow.log_dict(obj, artifact_file)

    def log_table(self, df, artifact_file: str) -> None:
        self._mlflow.log_table(df, artifact_file=artifact_file)


class _NullLogger(RunLogger):
    """Used when MLflow is disabled: the same interface, every call does nothing."""

    def __init__(self):
        super().__init__(None, "")


for _name in ("log_params", "log_metrics", "log_curves", "set_tags", "log_artifact", "log_dict", "log_table"):
    setattr(_NullLogger, _name, lambda self, *args, **kwargs: None)


@contextlib.contextmanager
def stage_run(identity: RunIdentity | None, stage: str) -> Iterator[RunLogger]:
    """Open (or re-open) the run of ``identity`` and yield a logger for ``stage``; with no
    identity, or tracking disabled, a logger that does nothing."""
    if identity is None or not identity.enabled:
        yield _NullLogger()
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    root = repo_root()
    mlflow.set_tracking_uri(tracking_uri(root))
    exp_id = _experiment_id(mlflow, identity.experiment, root)
    found = mlflow.search_runs([exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{identity.run_key}'",
                               max_results=1, output_format="list")
    run_id = found[0].info.run_id if found else None
    with mlflow.start_run(run_id=run_id, experiment_id=exp_id,
                          run_name=None if run_id else identity.run_name) as run:
        logger = RunLogger(mlflow, run.info.run_id)
        logger.set_tags({RUN_KEY_TAG: identity.run_key, f"stage.{stage}": "done",
                         "dvc.exp_name": os.environ.get("DVC_EXP_NAME", ""),
                         "dvc.baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
                         **identity.tags})
        yield logger
