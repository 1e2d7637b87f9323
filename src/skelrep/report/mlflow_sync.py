"""Log what only the report knows into each protocol's MLflow run (the latest run of this configuration).

One writer per fact (see ``skelrep.tracking.mlflow_run``): the stages log their own params,
curves, metrics and artifacts; the report logs only what no stage owns: the benchmark table of
the protocol (``tables/<benchmark>.json`` and ``.md``), the protocol's confusion-matrix figure
(``figures/``) and ``summary.json``, into the configuration's latest run (``stage_run(...,
annotate=True)``: the run of this execution, or the last one when DVC ran no stage of it).
Re-running adds no run and no duplicate table rows.

A configuration none of whose runs holds a stage's facts (that stage skipped by DVC while MLflow
was empty, e.g. after ``mlflow.db`` was deleted) gets a warning naming the stage to force.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import run_identity
from ..tracking.mlflow_run import RUN_KEY_TAG, RunLogger, configuration_metrics, runs_table_url, stage_run
from .collect import STAGES, ProtocolReports
from .tables import Benchmark, Row, table_frame

log = logging.getLogger(__name__)


def _log_table(run: RunLogger, client, frame: pd.DataFrame, artifact_file: str) -> None:
    """``log_table`` appends to an existing artifact, so a re-run overwrites it instead (same
    JSON "split" layout that ``log_table`` writes)."""
    folder = artifact_file.rsplit("/", 1)[0]
    if any(a.path == artifact_file for a in client.list_artifacts(run.run_id, folder)):
        split = frame.astype(object).where(frame.notna(), None).to_dict(orient="split", index=False)
        run.log_dict(split, artifact_file)
    else:
        run.log_table(frame, artifact_file)


def missing_stages(logged: Mapping[str, float], rep: ProtocolReports) -> list[str]:
    """The stages whose metrics.json keys are not all in the run's ``logged`` metrics."""
    return [stage for stage in STAGES
            if any(k.replace("@", "_") not in logged for k, v in rep.metrics.get(stage, {}).items() if v is not None)]


def stage_to_force(stage: str, protocol: str, params: Mapping[str, Any]) -> str:
    """The dvc.yaml stage(s) that log ``stage``'s metrics into ``protocol``'s run (transfers: those
    from it, params.yaml ``transfer``)."""
    if stage == "detect":
        return "detect"
    if stage == "transfer":
        return " ".join(f"transfer@{name}" for name, entry in (params.get("transfer") or {}).items()
                        if isinstance(entry, Mapping) and entry.get("source") == protocol)
    return f"{stage}@{protocol}"


def sync(params: Mapping[str, Any], reports: Mapping[str, ProtocolReports],
         tables: list[tuple[Benchmark, list[Row]]], reports_dir: Path, enabled: bool | None = None,
         baseline: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Log the report's own artifacts of every protocol in ``reports`` into its run (from
    ``reports_dir``: ``benchmarks/``, ``figures/``, ``summary.json``); ``enabled`` defaults to
    ``mlflow.enabled``; ``baseline`` is the committed params.yaml (``run_identity``). Returns each
    protocol's runs-table address in ``mlflow ui``."""
    if not (params["mlflow"]["enabled"] if enabled is None else enabled):
        return {}
    table_of = {protocol: (bench, rows) for bench, rows in tables if not bench.transfer
                for protocol in bench.protocols}
    transfer = next(((bench, rows) for bench, rows in tables if bench.transfer), None)
    urls = {}
    for protocol, rep in reports.items():
        bench, rows = table_of[protocol]
        identity = replace(run_identity(params, protocol, baseline), enabled=True)  # `enabled` decided above
        with stage_run(identity, "report", annotate=True) as run:
            client = run.client  # the run's MlflowClient, made by stage_run
            _log_table(run, client, table_frame(bench, rows), f"tables/{bench.name}.json")
            run.log_artifact(reports_dir / "benchmarks" / f"{bench.name}.md", "tables")
            if transfer is not None and rep.metrics.get("transfer"):  # the transfers of this run's encoder
                _log_table(run, client, table_frame(*transfer), f"tables/{transfer[0].name}.json")
                run.log_artifact(reports_dir / "benchmarks" / f"{transfer[0].name}.md", "tables")
            confusion = reports_dir / "figures" / f"confusion_{protocol}.png"
            if confusion.exists():
                run.log_artifact(confusion, "figures")
            summary = reports_dir / "summary.json"
            if summary.exists():
                run.log_artifact(summary)
            experiment = client.get_run(run.run_id).info.experiment_id
            urls[protocol] = runs_table_url(experiment)
            runs = client.search_runs([experiment], filter_string=f"tags.`{RUN_KEY_TAG}` = '{identity.run_key}'")
            for stage in missing_stages(configuration_metrics(runs), rep):
                target = stage_to_force(stage, protocol, params)
                log.warning("no MLflow run of configuration %s on %s holds the %s stage's metrics (its outputs "
                            "came from the DVC cache): `dvc repro -f %s` logs them", identity.run_key, protocol,
                            stage, target)
    return urls
