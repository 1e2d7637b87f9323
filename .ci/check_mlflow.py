"""CI gate: MLflow holds exactly what the DVC metric files say.

For every protocol P with reports/linear/P/metrics.json, experiment P must hold runs tagged
skelrep.run_key = run_identity(params, P).run_key (one per execution of that configuration,
skelrep.tracking), and for each stage S with reports/S/P/metrics.json (pretrain, linear, knn,
finetune, detect) or reports/finetune/transfer/<name>/metrics.json of a transfer from P, the latest
of them in which S finished (tag stage.S = done) must hold every value of that file within 1e-9.
Each of those files is logged by its own stage only (one writer per fact), so a missing metric names
the stage to force: `dvc repro -f <stage>@P` (`detect` for detection, `transfer@<name>` for a
transfer). Prints a short table (runs: the configuration's runs); exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from skelrep.catalog import PROTOCOLS
from skelrep.config import run_identity
from skelrep.params import load_params, repo_root
from skelrep.report.collect import STAGES, read_json, transfer_metrics_path
from skelrep.tracking.mlflow_run import RUN_KEY_TAG, STAGE_DONE, tracking_uri

TOLERANCE = 1e-9


def expected_metrics(reports, protocol: str, transfers: dict[str, str] | None = None) -> dict[str, tuple[str, float]]:
    """The metrics JSON values of ``protocol`` under their MLflow keys (no '@'), each with the
    stage that writes (and logs) it; ``transfers`` (name -> source): those from ``protocol`` too."""
    out = {}
    files = [(stage, reports / stage / protocol / "metrics.json") for stage in STAGES if stage != "transfer"]
    files += [(f"transfer@{name}", transfer_metrics_path(reports, name))
              for name, source in (transfers or {}).items() if source == protocol]
    for stage, path in files:
        if path.exists():
            out.update({k.replace("@", "_"): (stage, float(v)) for k, v in read_json(path).items() if v is not None})
    return out


def dvc_stage(stage: str, protocol: str) -> str:
    """The dvc.yaml stage that logs ``stage``'s metrics of ``protocol``."""
    return stage if stage == "detect" or "@" in stage else f"{stage}@{protocol}"


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def check_protocol(client, params, reports, protocol: str) -> tuple[int, int, list[str]]:
    """``(runs found, metrics checked, failure messages)`` for one protocol."""
    experiment = client.get_experiment_by_name(protocol)
    key = run_identity(params, protocol).run_key
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time DESC"])
    transfers = {name: entry.get("source") for name, entry in (params.get("transfer") or {}).items()}
    expected = expected_metrics(reports, protocol, transfers)
    if not runs:
        return 0, len(expected), [f"{protocol}: expected runs with {RUN_KEY_TAG}={key}, found 0"]

    def latest(stage: str) -> dict[str, float]:
        """The metrics of the latest run in which ``stage`` finished ({} if none did)."""
        tag = STAGE_DONE.format(stage=stage.split("@")[0])  # transfer@<name>: the transfer stage's tag
        done = [r for r in runs if r.data.tags.get(tag) == "done"]
        return done[0].data.metrics if done else {}

    logged = {stage: latest(stage) for stage in {stage for stage, _ in expected.values()}}
    failures = []
    missing: dict[str, int] = {}  # stage -> how many of its metrics MLflow lacks
    for name, (stage, value) in sorted(expected.items()):
        if name not in logged[stage]:
            failures.append(f"{protocol}: {name} = {value!r} in the reports, missing in MLflow")
            missing[stage] = missing.get(stage, 0) + 1
        elif not same(value, logged[stage][name]):
            failures.append(f"{protocol}: {name} = {value!r} in the reports, {logged[stage][name]!r} in MLflow")
    for stage, count in missing.items():
        failures.append(f"{protocol}: {count} {stage} metric(s) missing in MLflow; only the {stage} stage logs "
                        f"them: `dvc repro -f {dvc_stage(stage, protocol)}`")
    return len(runs), len(expected), failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="parameters file (relative to the repo root)")
    parser.add_argument("--reports", default="reports", help="reports folder (relative to the repo root)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root = repo_root()
    params = load_params(root / args.params)
    if not params.get("mlflow", {}).get("enabled"):
        print("mlflow.enabled is false: nothing to check")
        return 0
    reports = root / args.reports
    protocols = [p for p in PROTOCOLS if (reports / "linear" / p / "metrics.json").exists()]
    if not protocols:
        print(f"FAIL: no {args.reports}/linear/<protocol>/metrics.json found")
        return 1

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(root))
    print(f"{'protocol':<14} {'runs':>4} {'metrics':>7} {'mismatches':>10}")
    failures: list[str] = []
    for protocol in protocols:
        runs, checked, bad = check_protocol(client, params, reports, protocol)
        print(f"{protocol:<14} {runs:>4} {checked:>7} {len(bad):>10}")
        failures += bad
    for message in failures:
        print(f"FAIL: {message}")
    print("MLflow matches the reports" if not failures else f"{len(failures)} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
