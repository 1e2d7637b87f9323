"""The one place stages talk to MLflow. DVC decides what runs; MLflow records what ran.

- Tracking URI: ``sqlite:///<repo root>/mlflow.db`` with the root from ``DVC_ROOT`` (set by
  DVC, also inside ``dvc exp run --temp/--queue`` copies), so every run lands in one database.
- Each benchmark protocol is an MLflow experiment; a pipeline *configuration* is identified by a
  deterministic ``skelrep.run_key`` tag. What a run is (experiment, run key, tags, name, the
  columns its runs table shows) is a :class:`RunIdentity`, built by ``skelrep.config.run_identity``,
  the one place that knows the domain; this package knows no method, dataset or protocol (it
  imports nothing from ``skelrep.data``, ``skelrep.methods`` or ``skelrep.config``).
- **One run per execution.** ``stage_run(identity, stage)`` opens the run that the current
  execution of the configuration (one ``dvc repro`` / ``dvc exp run``) logs into: the latest run
  of the run key (in the same DVC experiment, if any) unless that run already holds this stage,
  in which case the stage runs again and gets a new run, tagged ``skelrep.rerun_of`` with the
  previous run's id. So the stages of one execution share a run, a run's duration is that
  execution's, and ``dvc repro -f`` (or a code change) leaves the earlier run as it was. A stage
  records ``stage.<stage>: done`` when it finishes, so an interrupted stage resumes into its run.
  The report (``annotate=True``) adds to the latest run of the configuration, whatever it holds.
  The configuration's current facts are the union over its runs, later runs winning
  (:func:`configuration_metrics`; ``skelrep compare`` and ``.ci/check_mlflow.py`` read them so).
- **The runs table.** Experiments are created as ``custom_model_development`` (MLflow's
  ``mlflow.experimentKind``: the classic ML view, not GenAI) with a saved view of the runs table
  whose columns are the identity's key metrics and tags; :func:`runs_table_url` opens it
  (``viewStateShareKey``, ``workflowType=machine_learning``).
- **One writer per fact.** Each fact is logged by the stage that produces it, and by no other:

  ============  ==============================================================================
  stage         logs
  ============  ==============================================================================
  pretrain      identifying params (``method``, ``<method>.<key>``, ``data.<dataset>.source``),
                ``pretrain.*`` params, per-epoch curves ``pretrain/<stat>`` (step = epoch),
                ``reports/pretrain/<P>/metrics.json``, throughput/memory, the encoder artifact
                (``encoder/encoder.pt``, once)
  linear        ``linear.*`` params, curves ``linear[/random_init|/handcrafted]/<column>_curve``,
                ``reports/linear/<P>/metrics.json``, the ``test_scores.npz`` artifact
  knn           ``knn.*`` params, ``reports/knn/<P>/metrics.json``
  detect        ``detection.*`` params, ``reports/detect/pku1-xsub/metrics.json``
  report        only what no stage owns: the benchmark table artifacts (``tables/``), its
                figures (``figures/confusion_<P>.png``) and ``summary.json``
  ============  ==============================================================================

  So an execution whose stage was skipped (its outputs cached by DVC) has no run holding that
  stage's facts unless an earlier one does; after ``mlflow.db`` was deleted,
  ``dvc repro -f <stage>@<protocol>`` logs them again. ``.ci/check_mlflow.py`` names the stage.
- Nothing from MLflow (run ids, times) is ever written into a DVC output.
- **Logging in the background.** ``stage_run(..., background=True)`` (what the stages use)
  starts a writer process (:mod:`skelrep.tracking.writer`) that imports MLflow, opens the run
  and applies the stage's logging calls in order, while the stage goes on with its work: MLflow's
  import and its sqlite store cost ~2-2.5 s of one core per process, which a stage otherwise
  waits for before its first computation. The stage waits for the writer when it leaves the
  ``with`` block, so everything is recorded before the stage exits, and a writer that failed
  fails the stage. The same run, tags and facts as logging in process. After the first stage,
  the writers are forked by a warm parent that did MLflow's imports once
  (:mod:`skelrep.tracking.warm_writer`): a short stage no longer waits ~1 s for its writer.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SkelrepError
from ..params import load_params, repo_root
from ..schema import boolean

log = logging.getLogger(__name__)

RUN_KEY_TAG = "skelrep.run_key"
CONFIG_KEY_TAG = "skelrep.config_key"  # the configuration across protocols (one comparison row)
STREAM_KEY_TAG = "skelrep.stream_key"  # the same with the input modality left out (late fusion)
RERUN_OF_TAG = "skelrep.rerun_of"      # on a run of a configuration that had run before: that run's id
STAGE_DONE = "stage.{stage}"           # set to "done" when a stage finishes in a run
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow's classic ML view
VIEW_KEY = "skelrep"                   # the saved runs-table view: tag mlflow.sharedViewState.<key>
UI_URL = "http://127.0.0.1:5000"       # `mlflow ui`'s default address
UI_COMMAND = "mlflow ui --backend-store-uri sqlite:///mlflow.db  (from the repository root)"

MLFLOW_SCHEMA = {"enabled": boolean}  # the params.yaml `mlflow` section


def tracking_enabled(params: Mapping[str, Any]) -> bool:
    """Whether params.yaml's ``mlflow.enabled`` asks for tracking (on when the section is absent)."""
    return bool((params.get("mlflow") or {}).get("enabled", True))


@dataclass(frozen=True)
class RunIdentity:
    """Which MLflow run a stage logs into: ``experiment`` (the protocol), ``run_key`` (the
    ``skelrep.run_key`` tag that finds the configuration's runs), the ``tags`` every stage sets
    on it, the ``run_name`` given when a run is created, whether tracking is ``enabled`` at all,
    and the key ``metric_columns`` and ``tag_columns`` the experiment's runs table shows."""

    experiment: str
    run_key: str
    tags: Mapping[str, Any]
    run_name: str
    enabled: bool = True
    metric_columns: tuple[str, ...] = ()
    tag_columns: tuple[str, ...] = ()


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
    # artifact root under the repository, created once per experiment, in the classic ML view
    location = (root / "mlruns" / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:  # created concurrently by another process
        return mlflow.get_experiment_by_name(name).experiment_id


def column_key(kind: str, key: str) -> str:
    """A runs-table column as the MLflow UI names it: ``metrics.`linear/top1_last```."""
    return f"{kind}.`{key}`"


def runs_table_view(identity: RunIdentity) -> dict:
    """The saved view of the runs table (an experiment's ``mlflow.sharedViewState.<key>`` tag,
    read by the MLflow 3 UI): the run name, the identity's tag and metric columns, newest first."""
    columns = ([column_key("tags", t) for t in identity.tag_columns]
               + [column_key("metrics", m) for m in identity.metric_columns])
    return {"selectedColumns": columns, "orderByKey": "attributes.start_time", "orderByAsc": False}


def _set_view(client, exp_id: str, identity: RunIdentity) -> None:
    """The experiment's kind and runs-table view, set when they differ from the identity's."""
    tags = client.get_experiment(exp_id).tags
    wanted = {**EXPERIMENT_KIND, f"mlflow.sharedViewState.{VIEW_KEY}": json.dumps(runs_table_view(identity))}
    for key, value in wanted.items():
        if tags.get(key) != value:
            client.set_experiment_tag(exp_id, key, value)


def runs_table_url(experiment_id: str) -> str:
    """The experiment's runs table in ``mlflow ui``, in the ML view, with its saved columns."""
    return f"{UI_URL}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"


@dataclass(frozen=True)
class RunChoice:
    """Where a stage logs: into ``run_id`` (None: a new run), the new run tagged ``rerun_of``."""

    run_id: str | None
    rerun_of: str | None = None


def choose_run(runs: list[tuple[str, Mapping[str, str]]], stage: str, exp_name: str = "",
               annotate: bool = False) -> RunChoice:
    """The run of this execution among ``runs`` (``(run id, tags)`` of the run key, newest first).

    Candidates are the runs of the same DVC experiment (``dvc.exp_name``, "" in the workspace).
    The newest candidate is joined unless it already holds ``stage`` (``stage.<stage>: done``):
    then the stage runs again, in a new run that names the newest run of the key as its
    ``rerun_of``. ``annotate`` (the report) joins the newest candidate, else the newest run,
    whatever they hold.
    """
    candidates = [(run_id, tags) for run_id, tags in runs if tags.get("dvc.exp_name", "") == exp_name]
    if annotate:
        chosen = candidates[0] if candidates else (runs[0] if runs else None)
        return RunChoice(chosen[0] if chosen else None)
    if candidates and candidates[0][1].get(STAGE_DONE.format(stage=stage)) != "done":
        return RunChoice(candidates[0][0])
    return RunChoice(None, runs[0][0] if runs else None)


def _search(client, exp_id: str, key: str) -> list:
    return client.search_runs([exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'",
                               order_by=["attributes.start_time DESC"], max_results=1000)


def configuration_metrics(runs: Iterable) -> dict[str, float]:
    """The latest value of every metric over the MLflow ``runs`` of one configuration: each run's
    metrics in start-time order, a later run's value winning."""
    out: dict[str, float] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        out.update(run.data.metrics)
    return out


def _texts(values: Mapping[str, Any]) -> dict[str, str]:
    """Params and tags as MLflow records them: text."""
    return {k: str(v) for k, v in values.items()}


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as MLflow records them: floats; None (nothing measured) left out."""
    return {k: float(v) for k, v in values.items() if v is not None}


class RunLogger:
    """Thin wrapper over an active MLflow run; params are logged once, metrics any time."""

    def __init__(self, mlflow, run_id: str, client=None):
        self._mlflow = mlflow
        self.run_id = run_id
        self._client = client  # the stage's one MlflowClient (made on first use if not given)

    @property
    def client(self):
        if self._client is None:
            self._client = self._mlflow.MlflowClient()
        return self._client

    def log_params(self, params: Mapping[str, Any]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        new = {k: v[:6000] for k, v in _texts(params).items() if k not in existing}
        if new:
            self._mlflow.log_params(new)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k.replace("@", "_"): v for k, v in _numbers(metrics).items()}
        if clean:
            self._mlflow.log_metrics(clean, step=step)

    def log_curves(self, series: Mapping[str, Iterable[tuple[int, float]]]) -> None:
        """Log each ``(step, value)`` point of each series that the run does not hold yet, so
        logging a curve again (a resumed or repeated stage) adds no duplicate points. The new
        points go in one batch (one database transaction; a call per step cost ~25 ms each on
        sqlite, ~2 s for the linear stage's curves), all with the same timestamp."""
        client = self.client
        by_step: dict[int, dict[str, float]] = defaultdict(dict)
        for key, points in series.items():
            name = key.replace("@", "_")
            logged = {(m.step, m.value) for m in client.get_metric_history(self.run_id, name)}
            for step, value in points:
                if (int(step), float(value)) not in logged:
                    by_step[int(step)][name] = float(value)
        timestamp = int(time.time() * 1000)
        metric = self._mlflow.entities.Metric
        batch = [metric(name, value, timestamp, step)
                 for step in sorted(by_step) for name, value in by_step[step].items()]
        if batch:
            client.log_batch(self.run_id, metrics=batch)  # chunked by MLflow past 1,000 metrics

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._mlflow.set_tags(_texts(tags))

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


class TrackingError(SkelrepError):
    pass


class BackgroundRunLogger(RunLogger):
    """A :class:`RunLogger` whose calls are sent, in order, to the writer process that holds the
    real one (``stage_run(..., background=True)``): ``process`` is its ``subprocess.Popen``, or a
    :class:`~skelrep.tracking.warm_writer.WarmWriter` that behaves as one. It has no run id or
    client: a stage that reads from MLflow logs in process."""

    def __init__(self, process: subprocess.Popen):
        super().__init__(None, "")
        self._process = process
        self._stream = process.stdin
        self.broken = False

    def send(self, message: tuple) -> None:
        if message[0] == "call" and self._process.poll():  # stop the stage's work at the first sign
            raise TrackingError(f"the MLflow writer process exited with status {self._process.returncode} "
                                f"(its error is printed above)")
        if self.broken:
            return
        try:
            pickle.dump(message, self._stream, protocol=pickle.HIGHEST_PROTOCOL)
            self._stream.flush()
        except (BrokenPipeError, OSError):  # the writer died: its exit status says why
            self.broken = True

    # Params, metrics and tags go as the builtin str and float that MLflow records of them: the
    # writer must not have to import what a stage's values are made of to unpickle them (a tag of
    # torch.__version__, a str subclass, made it import torch: 1.5 s at the end of each pretraining).
    def log_params(self, params: Mapping[str, Any]) -> None:
        self.send(("call", "log_params", (_texts(params),), {}))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.send(("call", "log_metrics", (_numbers(metrics),), {"step": step}))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.send(("call", "set_tags", (_texts(tags),), {}))

    @property
    def client(self):
        raise TrackingError("a background MLflow logger has no client; use stage_run(..., background=False)")


for _name in ("log_curves", "log_artifact", "log_dict", "log_table"):
    setattr(BackgroundRunLogger, _name,
            lambda self, *args, _name=_name, **kwargs: self.send(("call", _name, args, kwargs)))


def _writer_env() -> dict[str, str]:
    """The stage's environment, with this ``skelrep`` importable in the writer however the stage
    found it."""
    src = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def _spawn_writer():
    """A writer forked by the warm parent (:mod:`skelrep.tracking.warm_writer`), or, when none
    runs (the first stage; one is then started for the next), a process of its own."""
    from . import warm_writer

    env = _writer_env()
    writer = warm_writer.connect(env)
    if writer is not None:
        return writer
    # its own session: a Ctrl-C (sent to the stage's process group) is the stage's to handle; the
    # writer closes the run as the stage tells it, or as failed when the stage's pipe ends
    return subprocess.Popen([sys.executable, "-m", "skelrep.tracking.writer"], stdin=subprocess.PIPE,
                            env=env, start_new_session=True)


_prestarted: subprocess.Popen | None = None


def prestart_writer(argv: list[str] | None = None) -> None:
    """Start this stage's writer process now, before the stage imports torch, so MLflow's imports
    and its store open on the other core while this process imports and validates; the next
    ``stage_run(..., background=True)`` uses it. Called first thing by the stage scripts that log
    (as ``__main__`` only). Not for ``--help``/``--version``, another rank than 0 of a distributed
    run, or when the params file (``--params``, default params.yaml) turns MLflow off or cannot be
    read (the stage then reports it); a writer that gets no run exits when the stage does."""
    global _prestarted
    argv = sys.argv[1:] if argv is None else argv
    if _prestarted is not None or os.environ.get("RANK", "0") != "0" or \
            any(a in ("-h", "--help", "--version") for a in argv):
        return
    option = argparse.ArgumentParser(add_help=False)  # only --params: the stage's parser comes later
    option.add_argument("--params", default="params.yaml")
    try:
        params = load_params(option.parse_known_args(argv)[0].params)
    except (SkelrepError, OSError):  # the stage's own validation says what is wrong
        return
    if tracking_enabled(params):
        _prestarted = _spawn_writer()


@contextlib.contextmanager
def _background_run(identity: RunIdentity, stage: str, annotate: bool) -> Iterator[RunLogger]:
    global _prestarted
    proc, _prestarted = (_prestarted or _spawn_writer()), None
    logger = BackgroundRunLogger(proc)
    logger.send(("open", identity, stage, annotate))
    finished = False
    try:
        yield logger
        finished = True
    finally:
        logger.send(("close", finished))
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()
        code = proc.wait()
    if code != 0:
        raise TrackingError(f"MLflow logging of stage {stage!r} ({identity.experiment}) failed in its writer "
                            f"process (exit status {code}; its error is printed above)")


@contextlib.contextmanager
def stage_run(identity: RunIdentity | None, stage: str, annotate: bool = False,
              background: bool = False) -> Iterator[RunLogger]:
    """Open the run of this execution of ``identity`` (:func:`choose_run`) and yield a logger for
    ``stage``; on success the run records ``stage.<stage>: done``. With no identity, or tracking
    disabled, a logger that does nothing. ``background``: log through a writer process (module
    docstring), a :class:`BackgroundRunLogger`."""
    if identity is None or not identity.enabled:
        yield _NullLogger()
        return
    if background:
        with _background_run(identity, stage, annotate) as logger:
            yield logger
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    root = repo_root()
    mlflow.set_tracking_uri(tracking_uri(root))
    exp_id = _experiment_id(mlflow, identity.experiment, root)
    client = mlflow.MlflowClient()  # one for the stage (RunLogger's too)
    _set_view(client, exp_id, identity)
    runs = [(r.info.run_id, r.data.tags) for r in _search(client, exp_id, identity.run_key)]
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    choice = choose_run(runs, stage, exp_name, annotate)
    with mlflow.start_run(run_id=choice.run_id, experiment_id=exp_id,
                          run_name=None if choice.run_id else identity.run_name) as run:
        logger = RunLogger(mlflow, run.info.run_id, client)
        logger.set_tags({RUN_KEY_TAG: identity.run_key, "dvc.exp_name": exp_name,
                         "dvc.baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
                         **({RERUN_OF_TAG: choice.rerun_of} if choice.rerun_of else {}), **identity.tags})
        yield logger
        logger.set_tags({STAGE_DONE.format(stage=stage): "done"})
