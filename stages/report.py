"""DVC stage `report`: measured vs published benchmark tables, results CSV, summary, headline metric, figures.

Reads whatever the earlier stages wrote under --reports (any subset of the protocols) and
writes reports/benchmarks/{ntu60,ntu120,pkummd1,pkummd2}.md (and custom.md for the user's own
protocols of params.yaml) with the linear, KNN, semi-supervised and fine-tune columns (and
detection, and the transfers into a protocol), reports/benchmarks/transfer.md (every transfer),
reports/results.csv, reports/summary.json (every benchmark row's numbers), reports/metrics.json
(the headline numbers per protocol: the pipeline's one DVC metric), reports/figures/*.png and
reports/index.html (one static page: the tables, every figure of the folder, the configuration);
then logs into each protocol's MLflow run what no other stage logs: the benchmark table (and the
transfer table, into the runs of the transfers' sources), the confusion figure and the summary
(unless mlflow.enabled is false or --no-mlflow is given). Ends by printing the tables' headline
columns.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from skelrep.data.protocols import protocol_names
from skelrep.io import write_json_atomic, write_text_atomic
from skelrep.params import committed_params, load_params
from skelrep.report.collect import load_reports
from skelrep.report.figures import write_figures
from skelrep.report.html import INDEX, find_figures, render_html
from skelrep.report.mlflow_sync import sync
from skelrep.report.published import load_published, table_entries
from skelrep.report.tables import (
    TERMINAL_NOTE,
    build_tables,
    headline,
    render_markdown,
    render_terminal,
    results_long,
    summary,
)
from skelrep.runtime import run_stage, setup_logging, stage_parser
from skelrep.tracking.mlflow_run import UI_COMMAND
from skelrep.validation import validate_all

log = logging.getLogger("stages.report")


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(__doc__)
    parser.add_argument("--reports", required=True, help="reports folder (inputs and outputs): reports")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow sync")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    validate_all(params)  # every section, before any work
    reports_dir = Path(args.reports)

    transfers = {name: entry["source"] for name, entry in params["transfer"].items()}  # validated above
    reports = load_reports(reports_dir, protocol_names(params), transfers)
    log.info("measured results for: %s", ", ".join(reports) or "no protocol")
    tables = build_tables(params, reports, table_entries(load_published()))
    for bench, rows in tables:
        write_text_atomic(reports_dir / "benchmarks" / f"{bench.name}.md",
                          render_markdown(bench, rows, params, present=tuple(reports)))
    write_text_atomic(reports_dir / "results.csv", results_long(tables).to_csv(index=False, lineterminator="\n"))
    write_json_atomic(reports_dir / "summary.json", summary(reports))
    write_json_atomic(reports_dir / "metrics.json", headline(reports))
    write_figures(reports, reports_dir / "figures")
    # last of the files: the page shows the figures just written and those of the earlier stages
    write_text_atomic(reports_dir / INDEX, render_html(params, tables, tuple(reports), find_figures(reports_dir)))
    urls = sync(params, reports, tables, reports_dir, enabled=False if args.no_mlflow else None,
                baseline=committed_params(args.params))
    # the results, where `make run` ends: the headline columns of every table
    print("\n".join(render_terminal(bench, rows, params) for bench, rows in tables), flush=True)
    print(f"{TERMINAL_NOTE}\nAll columns: {reports_dir / 'benchmarks'}/*.md", flush=True)
    if urls:
        print(f"MLflow: {UI_COMMAND}, then each protocol's runs and key columns:", flush=True)
        print("".join(f"  {protocol}: {url}\n" for protocol, url in urls.items()), end="", flush=True)


if __name__ == "__main__":
    run_stage(main)
