"""Method comparison across runs: the four benchmark tables over everything MLflow recorded.

One `dvc repro` evaluates one configuration, and the `report` stage tables show that one (so
its outputs depend only on declared inputs). Every other run — `dvc exp run -S method=umurl`,
a queued sweep over methods or input streams, an ablation — logs into its own run of the same
``mlflow.db``. ``skelrep compare`` reads them back and writes, per benchmark:

- one measured row per configuration (runs grouped across protocols by the
  ``skelrep.config_key`` tag), plus its random-init baseline row; a row is labelled with the
  method, its variant and the parameters the configuration changes against the committed
  profile (the ``changes`` tag, ``skelrep.config``), e.g. ``USDRL (DSTE, joint) · w_xcorr=0``;
- one hand-crafted baseline row (joint coordinates, logistic regression) per data source: it
  depends on no method, so every configuration measures the same thing; each protocol's cells
  come from the latest run that has them (runs that changed ``linear``, ``knn`` or
  ``features.handcrafted_frames`` are not told apart);
- a late-fusion row ``3s-<METHOD>`` wherever the joint, bone and motion streams of otherwise
  identical configurations (same ``skelrep.stream_key``) have been trained and evaluated: the
  sum of the three linear classifiers' test-set class probabilities (softmax) of the last
  epoch, as the papers' three-stream ensembles; its top-1/top-5 are computed here from the
  ``linear/test_scores.npz`` artifacts, never taken from anywhere else;
- the published rows.

A configuration has one run per execution (``skelrep.tracking``): its metrics on a protocol are
the union over the runs of its run key, a later run's value winning (a re-run of ``linear``
alone updates the linear cells). Configurations without a protocol's linear metrics
(interrupted, or from before a stage existed) are left out of that protocol's cells. When
several run keys share a configuration and protocol (another data source), the latest wins.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import PROTOCOLS
from ..config import method_label
from ..evaluation.metrics import topk_accuracy
from ..io import write_text_atomic
from ..tracking.mlflow_run import CONFIG_KEY_TAG, RUN_KEY_TAG, STREAM_KEY_TAG
from .collect import BASELINE, HANDCRAFTED, PRETRAINED, evaluation_metrics
from .tables import (
    MEASURED,
    MEASURED_SUFFIX,
    Benchmark,
    Row,
    benchmark_heading,
    benchmarks_for,
    handcrafted_row,
    published_rows,
    results_long,
    table_markdown,
    table_rows,
)

log = logging.getLogger(__name__)

STREAMS = ("joint", "bone", "motion")
SCORES_ARTIFACT = "linear/test_scores.npz"


@dataclass
class RunRecord:
    """What ``compare`` needs of one MLflow run (one configuration on one protocol)."""

    run_id: str
    protocol: str
    method: str
    variant: str
    modality: str | None
    config_key: str
    stream_key: str
    data_source: str
    exp_name: str
    start_time: int
    metrics: dict[str, float] = field(default_factory=dict)
    run_key: str = ""
    changes: str = ""  # what the configuration changes against the committed profile ("" if nothing/unknown)

    def evaluation(self, variant: str = PRETRAINED) -> dict[str, float]:
        return evaluation_metrics(self.metrics, variant)


def record_from_run(run) -> RunRecord | None:
    """A :class:`RunRecord` of an MLflow run logged by the pipeline, None for anything else."""
    tags = run.data.tags
    protocol = tags.get("protocol")
    if not protocol or RUN_KEY_TAG not in tags or "method" not in tags:
        return None
    return RunRecord(
        run_id=run.info.run_id, protocol=protocol, method=tags["method"], variant=tags.get("variant", ""),
        modality=tags.get("modality"),
        # runs logged before these tags existed stay separate rows
        config_key=tags.get(CONFIG_KEY_TAG, tags[RUN_KEY_TAG]),
        stream_key=tags.get(STREAM_KEY_TAG, tags[RUN_KEY_TAG]),
        data_source=tags.get("data_source", ""), exp_name=tags.get("dvc.exp_name", ""),
        start_time=int(run.info.start_time or 0), metrics=dict(run.data.metrics), run_key=tags[RUN_KEY_TAG],
        changes=tags.get("changes", ""))


def load_records(client, protocols: Iterable[str] = tuple(PROTOCOLS)) -> list[RunRecord]:
    """Every pipeline run in the experiments named after ``protocols`` (the built-in ones and
    any of the user's own)."""
    records = []
    for protocol in protocols:
        experiment = client.get_experiment_by_name(protocol)
        if experiment is None:
            continue
        runs = client.search_runs([experiment.experiment_id], max_results=50000)
        records += [r for r in map(record_from_run, runs) if r is not None]
    return records


def merge_executions(records: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per run key (a configuration with its data, on one protocol): the metrics of
    its runs (one per execution) merged in start-time order, a later run's value winning; the
    run id is that of the latest run with linear metrics (its ``test_scores.npz``), the tags and
    start time those of the latest run. Oldest first."""
    merged: dict[tuple[str, str], RunRecord] = {}
    for rec in sorted(records, key=lambda r: r.start_time):
        key = (rec.run_key or rec.run_id, rec.protocol)
        before = merged.pop(key, None)  # re-inserted: keeps start-time order
        if before is not None:
            run_id = rec.run_id if "linear/top1_last" in rec.metrics else before.run_id
            rec = replace(rec, run_id=run_id, metrics={**before.metrics, **rec.metrics})
        merged[key] = rec
    return list(merged.values())


def latest_runs(records: Iterable[RunRecord]) -> list[RunRecord]:
    """Per (config_key, protocol), the latest configuration with linear metrics (runs of one
    run key merged first: :func:`merge_executions`), oldest first."""
    latest: dict[tuple[str, str], RunRecord] = {}
    for rec in merge_executions(records):
        if "linear/top1_last" in rec.metrics:
            latest.pop((rec.config_key, rec.protocol), None)  # re-inserted: keeps start-time order
            latest[(rec.config_key, rec.protocol)] = rec
    return list(latest.values())


def _label(rec: RunRecord, duplicates: set[str]) -> str:
    base = method_label(rec.method)
    label = f"{base} ({rec.variant})" if rec.variant else base
    if rec.changes:  # what the configuration changes against the committed profile
        label += f" · {rec.changes}"
    if rec.data_source and rec.data_source != "synthetic":
        label += f" [{rec.data_source} data]"
    if label in duplicates:  # two configurations with the same name (changes unknown, or another baseline)
        label += f" [{rec.exp_name or 'config ' + rec.config_key[:7]}]"
    return label


def measured_rows(latest: list[RunRecord]) -> list[Row]:
    """A measured row and a random-init baseline row per configuration, in first-run order."""
    by_config: dict[str, list[RunRecord]] = defaultdict(list)
    for rec in latest:
        by_config[rec.config_key].append(rec)
    names = [_label(recs[-1], set()) for recs in by_config.values()]
    duplicates = {n for n in names if names.count(n) > 1}
    rows = []
    for recs in by_config.values():
        label = _label(recs[-1], duplicates)  # the latest run's tags name it
        trained = Row(label + MEASURED_SUFFIX, method_label(recs[0].method), recs[0].variant)
        baseline = Row(f"Random-init baseline, {label} architecture{MEASURED_SUFFIX}", trained.method,
                       f"random-init baseline ({recs[0].variant})" if recs[0].variant else "random-init baseline")
        for rec in recs:
            trained.cells.update({(rec.protocol, k): (v, MEASURED) for k, v in rec.evaluation().items()})
            baseline.cells.update({(rec.protocol, k): (v, MEASURED) for k, v in rec.evaluation(BASELINE).items()})
        rows += [trained, baseline]
    return rows


def handcrafted_rows(latest: list[RunRecord]) -> list[Row]:
    """The hand-crafted baseline, one row per data source, each protocol's cells from the latest
    run that has them (``latest`` is in start-time order)."""
    rows: dict[str, Row] = {}
    for rec in latest:
        cells = rec.evaluation(HANDCRAFTED)
        if not cells:  # logged before the baseline existed
            continue
        source = rec.data_source
        if source not in rows:
            rows[source] = handcrafted_row(f"[{source} data]" if source and source != "synthetic" else "")
        rows[source].cells.update({(rec.protocol, k): (v, MEASURED) for k, v in cells.items()})
    return list(rows.values())


def fuse_scores(scores: list[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Top-1/top-5 (%) of the summed class probabilities of several streams' linear classifiers.

    Each entry holds ``probs`` (N, K), ``label`` (N,) and ``sample`` (N,) of one stream; the
    streams must score the same test samples in the same order with the same labels.
    """
    if not scores:
        raise ValueError("late fusion needs at least one stream")
    first = scores[0]
    for other in scores[1:]:
        if other["probs"].shape != first["probs"].shape or not (
                np.array_equal(other["label"], first["label"]) and np.array_equal(other["sample"], first["sample"])):
            raise ValueError("the streams were evaluated on different test samples; cannot fuse them")
    fused = np.sum([s["probs"].astype(np.float64) for s in scores], axis=0)
    labels = first["label"]
    return {"linear/top1_last": topk_accuracy(fused, labels, 1),
            "linear/top5_last": topk_accuracy(fused, labels, min(5, fused.shape[1]))}


def download_scores(client, run_id: str) -> dict[str, np.ndarray] | None:
    """A run's ``linear/test_scores.npz`` artifact, None if it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, SCORES_ARTIFACT, tmp)
        except Exception:  # MLflow raises various errors for a missing artifact
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}


def fusion_rows(latest: list[RunRecord], load_scores) -> list[Row]:
    """``3s-<METHOD>`` rows wherever all three streams of a configuration have test scores."""
    groups: dict[str, dict[str, dict[str, RunRecord]]] = defaultdict(lambda: defaultdict(dict))
    for rec in latest:
        if rec.modality in STREAMS:
            groups[rec.stream_key][rec.protocol][rec.modality] = rec
    rows = []
    for protocols in groups.values():
        row = None
        for protocol, streams in protocols.items():
            if set(streams) != set(STREAMS):
                continue
            scores = [load_scores(streams[s].run_id) for s in STREAMS]
            if any(s is None for s in scores):
                log.warning("%s: a stream has no %s artifact; no late fusion", protocol, SCORES_ARTIFACT)
                continue
            if row is None:
                first = streams["joint"]
                name = method_label(first.method)
                rest = ", ".join(p for p in first.variant.split(", ") if p not in STREAMS)
                variant = f"{rest + ', ' if rest else ''}3s late fusion (J+B+M)"
                row = Row(f"3s-{name} ({variant}){MEASURED_SUFFIX}", name, variant)
            row.cells.update({(protocol, k): (v, MEASURED) for k, v in fuse_scores(scores).items()})
        if row is not None:
            rows.append(row)
    return rows


def render_comparison(bench: Benchmark, rows: list[Row], records: list[RunRecord]) -> str:
    sources = sorted({r.data_source for r in records if r.protocol in bench.protocols and r.data_source})
    lines = [benchmark_heading(bench) + " — comparison of runs", "",
             ("Every configuration recorded in MLflow (`mlflow.db`), one row each; written by "
              "`skelrep compare`, not by `dvc repro`."), ""]
    if "synthetic" in sources:
        lines += [("**Rows on synthetic data come from the built-in synthetic suite and are not comparable "
                   "with the paper figures.**"), ""]
    lines += table_markdown(bench, rows)
    lines.append("- 3s rows: late fusion of the joint, bone and motion streams of the same configuration "
                 "(sum of their linear classifiers' softmax scores, last epoch); only top-1 and top-5 apply.")
    return "\n".join(lines) + "\n"


def compare(out_dir: Path, entries: pd.DataFrame, client=None, protocols: Iterable[str] = tuple(PROTOCOLS)
            ) -> list[tuple[Benchmark, list[Row]]]:
    """Write ``<out_dir>/<benchmark>.md`` and ``<out_dir>/results.csv``; return the tables."""
    if client is None:
        client = _client()
    records = load_records(client, protocols)
    latest = latest_runs(records)
    log.info("%d configuration x protocol results in MLflow", len(latest))
    measured = (measured_rows(latest) + handcrafted_rows(latest)
                + fusion_rows(latest, lambda run_id: download_scores(client, run_id)))
    published = published_rows(entries)
    tables = [(bench, table_rows(bench, [r for r in measured if any(p in bench.protocols for p, _ in r.cells)],
                                 published)) for bench in benchmarks_for(sorted({r.protocol for r in records}))]
    for bench, rows in tables:
        write_text_atomic(out_dir / f"{bench.name}.md", render_comparison(bench, rows, records))
    write_text_atomic(out_dir / "results.csv", results_long(tables).to_csv(index=False, lineterminator="\n"))
    return tables


def _client():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    from ..tracking.mlflow_run import tracking_uri

    return MlflowClient(tracking_uri=tracking_uri())
