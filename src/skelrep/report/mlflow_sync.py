"""Sync the report into each protocol's MLflow run (the run of this configuration).

Logs the metrics of every stage under their JSON keys, the per-epoch curves with
``step=epoch``, a few identifying params, the benchmark table and the encoder file. Re-running
adds no run (``stage_run`` finds it by its run-key tag), no duplicate curve points and no
duplicate table rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.protocols import resolve_protocol
from ..methods import METHODS
from ..tracking.mlflow_run import RunLogger, protocol_config, run_tags, stage_run
from .collect import ProtocolReports
from .tables import Benchmark, Row, table_frame

LINEAR_CURVES = ("lr", "train_loss", "train_top1", "test_top1", "test_top5")


def identifying_params(params: Mapping[str, Any], protocol: str) -> dict[str, Any]:
    """Method, the method's own identifying params (``MethodInfo.identifying_params``, e.g. the
    USDRL architecture and input stream) and the data source, under the keys the pretrain stage
    uses."""
    method = params.get("method")
    info = METHODS.get(method) if isinstance(method, str) else None
    own = info.identifying_params(params.get(method) or {}) if info is not None else {}
    out = {"method": method, **{f"{method}.{k}": v for k, v in own.items()}}
    dataset = resolve_protocol(params, protocol).dataset
    out[f"data.{dataset}.source"] = ((params.get("data") or {}).get(dataset) or {}).get("source")
    return {k: v for k, v in out.items() if v is not None}


def curves(rep: ProtocolReports) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series: ``pretrain/<stat>`` and ``linear[/random_init]/<column>_curve`` (the
    linear stage's own name for its test curve, so those points are not logged twice)."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rep.pretrain_stats:
        for key, value in row.items():
            if key != "epoch" and value is not None:
                series[f"pretrain/{key}"].append((int(row["epoch"]), float(value)))
    for prefix, history in (("linear", rep.linear_history), ("linear/random_init", rep.linear_history_random)):
        for row in history:
            for key in LINEAR_CURVES:
                if row.get(key) is not None:
                    series[f"{prefix}/{key}_curve"].append((int(row["epoch"]), float(row[key])))
    return dict(series)


def _log_curves(run: RunLogger, client, series: Mapping[str, list[tuple[int, float]]]) -> None:
    """Log each series unless the run already holds exactly these points."""
    by_step: dict[int, dict[str, float]] = defaultdict(dict)
    for key, points in series.items():
        logged = {(m.step, m.value) for m in client.get_metric_history(run.run_id, key)}
        if logged != set(points):
            for step, value in points:
                by_step[step][key] = value
    for step in sorted(by_step):
        run.log_metrics(by_step[step], step=step)


def _log_table(run: RunLogger, client, frame: pd.DataFrame, artifact_file: str) -> None:
    """``log_table`` appends to an existing artifact, so a re-run overwrites it instead (same
    JSON "split" layout that ``log_table`` writes)."""
    folder = artifact_file.rsplit("/", 1)[0]
    if any(a.path == artifact_file for a in client.list_artifacts(run.run_id, folder)):
        split = frame.astype(object).where(frame.notna(), None).to_dict(orient="split", index=False)
        run.log_dict(split, artifact_file)
    else:
        run.log_table(frame, artifact_file)


def sync(params: Mapping[str, Any], reports: Mapping[str, ProtocolReports],
         tables: list[tuple[Benchmark, list[Row]]], benchmarks_dir: Path, figures_dir: Path, models_dir: Path,
         enabled: bool | None = None) -> None:
    """Log every protocol in ``reports`` into its run; ``enabled`` defaults to ``mlflow.enabled``."""
    if not (params["mlflow"]["enabled"] if enabled is None else enabled):
        return
    table_of = {protocol: (bench, rows) for bench, rows in tables for protocol in bench.protocols}
    for protocol, rep in reports.items():
        bench, rows = table_of[protocol]
        with stage_run(enabled=True, experiment=protocol, config=protocol_config(params, protocol),
                       stage="report", tags=run_tags(params, protocol)) as run:
            from mlflow import MlflowClient  # imported after stage_run has configured MLflow

            client = MlflowClient()
            run.log_params(identifying_params(params, protocol))
            run.log_metrics(rep.all_metrics())
            _log_curves(run, client, curves(rep))
            _log_table(run, client, table_frame(bench, rows), f"tables/{bench.name}.json")
            run.log_artifact(benchmarks_dir / f"{bench.name}.md", "tables")
            confusion = figures_dir / f"confusion_{protocol}.png"
            if confusion.exists():
                run.log_artifact(confusion, "figures")
            encoder = models_dir / protocol / "encoder.pt"
            if encoder.exists():
                run.log_artifact(encoder, "model")
