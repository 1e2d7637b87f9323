"""The one place stages talk to MLflow. DVC decides what runs; MLflow records what ran.

- Tracking URI: ``sqlite:///<repo root>/mlflow.db`` with the root from ``DVC_ROOT`` (set by
  DVC, also inside ``dvc exp run --temp/--queue`` copies), so every run lands in one database.
- Each benchmark protocol is an MLflow experiment; each pipeline *configuration* is one run in
  it, found by a deterministic ``skelrep.run_key`` tag (a hash of the parameters that define
  the configuration). Every stage logs into that run, so its columns (method, key params,
  pretrain loss, linear/KNN accuracy, detection mAPs) are comparable side by side, and a
  forced re-run logs into the same run instead of creating a duplicate.
- Nothing from MLflow (run ids, times) is ever written into a DVC output.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..params import repo_root
from ..schema import boolean

log = logging.getLogger(__name__)

RUN_KEY_TAG = "skelrep.run_key"
CONFIG_KEY_TAG = "skelrep.config_key"  # the configuration across protocols (one comparison row)
STREAM_KEY_TAG = "skelrep.stream_key"  # the same with the input modality left out (late fusion)

MLFLOW_SCHEMA = {"enabled": boolean}  # the params.yaml `mlflow` section


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


for _name in ("log_params", "log_metrics", "set_tags", "log_artifact", "log_dict", "log_table"):
    setattr(_NullLogger, _name, lambda self, *args, **kwargs: None)


@contextlib.contextmanager
def stage_run(*, enabled: bool, experiment: str, config: Mapping[str, Any], stage: str,
              tags: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
    """Open (or re-open) the run of ``config`` in ``experiment`` and yield a logger."""
    if not enabled:
        yield _NullLogger()
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    root = repo_root()
    mlflow.set_tracking_uri(tracking_uri(root))
    exp_id = _experiment_id(mlflow, experiment, root)
    key = run_key(config)
    found = mlflow.search_runs([exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'",
                               max_results=1, output_format="list")
    run_id = found[0].info.run_id if found else None
    name = tags.get("run_name") if tags else None
    with mlflow.start_run(run_id=run_id, experiment_id=exp_id, run_name=None if run_id else name) as run:
        logger = RunLogger(mlflow, run.info.run_id)
        logger.set_tags({RUN_KEY_TAG: key, f"stage.{stage}": "done",
                         "dvc.exp_name": os.environ.get("DVC_EXP_NAME", ""),
                         "dvc.baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
                         **{k: v for k, v in (tags or {}).items() if k != "run_name"}})
        yield logger


def protocol_config(params: Mapping[str, Any], protocol: str) -> dict:
    """The parameters that define one pipeline configuration of ``protocol`` (the run key)."""
    from ..data.protocols import resolve_protocol

    spec = resolve_protocol(params, protocol)
    method = params.get("method")
    config = {"protocol": protocol, "method": method, method: params.get(method),
              "data": {d: params.get("data", {}).get(d) for d in spec.raw_datasets},
              **{k: params.get(k) for k in ("preprocess", "pku", "features", "linear", "knn", "detection")}}
    if spec.split is not None:  # a user protocol's own split (built-in run keys stay as they were)
        config["split"] = spec.split
    return config


def input_modality(params: Mapping[str, Any]) -> str | None:
    """The configured method's input stream (joint, bone, motion), if the method has one
    (``MethodInfo.input_modality``)."""
    from ..methods import METHODS

    method = params.get("method")
    info = METHODS.get(method) if isinstance(method, str) else None
    return info.input_modality(params.get(method) or {}) if info is not None else None


def comparison_keys(params: Mapping[str, Any], protocol: str) -> dict[str, str]:
    """Keys that group runs across protocols for ``skelrep compare``.

    ``config_key``: the run key without the protocol and its data, so the runs of one pipeline
    configuration on every benchmark form one table row. ``stream_key``: the same with the
    input modality left out, so runs that differ only in their stream (joint, bone, motion)
    share it: the streams that late fusion combines.
    """
    from ..methods import METHODS

    config = {k: v for k, v in protocol_config(params, protocol).items() if k not in ("protocol", "data")}
    streamless = copy.deepcopy(config)
    method = params.get("method")
    if isinstance(method, str) and method in METHODS:  # the section without its input stream
        streamless[method] = METHODS[method].without_input_modality(streamless.get(method))
    return {CONFIG_KEY_TAG: run_key(config), STREAM_KEY_TAG: run_key(streamless)}


def run_tags(params: Mapping[str, Any], protocol: str) -> dict:
    from ..configuration import configuration
    from ..data.protocols import resolve_protocol

    spec = resolve_protocol(params, protocol)
    dataset, benchmark = spec.dataset, spec.benchmark
    modality = input_modality(params)
    return {"method": params.get("method"), "variant": configuration(params)[1], "protocol": protocol,
            "dataset": dataset,
            "benchmark": benchmark, "data_source": params.get("data", {}).get(dataset, {}).get("source"),
            **({"modality": modality} if modality else {}), **comparison_keys(params, protocol),
            "run_name": f"{params.get('method')}-{protocol}" + (f"-{modality}" if modality else "")}
