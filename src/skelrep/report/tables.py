"""Benchmark tables (measured vs published), the long-form results CSV and the summary metric.

Reporting convention: the primary number is linear top-1 after the last
epoch; best-on-test is secondary and always labelled "best-on-test (official convention)".
Published numbers are best-on-test, so they only ever fill that column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalog import DATASETS, PROTOCOLS
from ..config import configuration
from .collect import BASELINE, HANDCRAFTED, PRETRAINED, ProtocolReports

MISSING = "–"
MEASURED = "measured"


@dataclass(frozen=True)
class Benchmark:
    """One Markdown table: ``reports/benchmarks/<name>.md``."""

    name: str
    title: str
    protocols: tuple[str, ...]
    detection: bool = False


# one table per built-in dataset, one column group per protocol (skelrep.catalog)
BENCHMARKS = tuple(
    Benchmark(d.table, d.title, tuple(p for p, (dataset, _) in PROTOCOLS.items() if dataset == d.name), d.detection)
    for d in DATASETS.values())
CUSTOM = "custom"  # the table of the user's own protocols (params.yaml protocols, generic data)


def benchmarks_for(protocols: Iterable[str]) -> tuple[Benchmark, ...]:
    """The four benchmark tables, plus one table of the user's own protocols when there are any."""
    user = tuple(p for p in protocols if p not in PROTOCOLS)
    return BENCHMARKS + ((Benchmark(CUSTOM, "Your own data", user),) if user else ())

RECOGNITION_COLUMNS = (
    ("linear/top1_last", "linear top-1, last epoch (primary)"),
    ("linear/top1_best_on_test", "linear top-1, best-on-test (official convention)"),
    ("linear/top5_last", "linear top-5, last epoch"),
    ("knn/top1", "KNN-1"),
)
DETECTION_COLUMNS = (
    ("detect/mAP_a_tiou0.1", "VOC mAP@0.1"),
    ("detect/mAP_a_tiou0.3", "VOC mAP@0.3"),
    ("detect/mAP_a_tiou0.5", "VOC mAP@0.5"),
    ("detect/mAP_action_theta0.5", "mAP_action (θ=0.5)"),
    ("detect/mAP_video_theta0.5", "mAP_video (θ=0.5)"),
)


@dataclass
class Row:
    """One table row; ``cells[(protocol, metric key)] = (value, source)``."""

    label: str
    method: str
    variant: str
    cells: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)

    def value(self, protocol: str, key: str) -> float | None:
        cell = self.cells.get((protocol, key))
        return None if cell is None else cell[0]

    def source(self, protocols: tuple[str, ...]) -> str:
        """The distinct sources of this row's cells in ``protocols``, in first-seen order."""
        parts: list[str] = []
        for (protocol, _), (_, source) in self.cells.items():
            if protocol in protocols:
                parts += [p for p in source.split("; ") if p not in parts]
        return "; ".join(parts)


def columns(bench: Benchmark) -> list[tuple[str, str, str]]:
    """``(protocol, metric key, header)`` for every value column of ``bench``."""
    specs = RECOGNITION_COLUMNS + (DETECTION_COLUMNS if bench.detection else ())
    # built-in columns are named by their benchmark protocol (xsub, xview, xset), the user's by name
    return [(p, key, f"{PROTOCOLS[p][1] if p in PROTOCOLS else p}: {header}")
            for p in bench.protocols for key, header in specs]


HANDCRAFTED_LABEL = "Hand-crafted baseline (joint coordinates, logistic regression) — measured"
HANDCRAFTED_METHOD, HANDCRAFTED_VARIANT = "Hand-crafted baseline", "joint coordinates, logistic regression"


def handcrafted_row(qualifier: str = "") -> Row:
    """The (empty) row of the hand-crafted baseline: no learned features, whatever the method;
    ``qualifier`` (e.g. "[official data]") tells rows of ``skelrep compare`` apart."""
    if not qualifier:
        return Row(HANDCRAFTED_LABEL, HANDCRAFTED_METHOD, HANDCRAFTED_VARIANT)
    return Row(HANDCRAFTED_LABEL.replace(" — measured", f" {qualifier} — measured"), HANDCRAFTED_METHOD,
               f"{HANDCRAFTED_VARIANT} {qualifier}")


def measured_rows(params: Mapping[str, Any], reports: Mapping[str, ProtocolReports]) -> list[Row]:
    """The configured method, its random-init baseline and the hand-crafted baseline, over every
    protocol present."""
    method, variant = configuration(params)
    label = f"{method} ({variant})" if variant else method
    trained = Row(f"{label} — measured", method, variant)
    baseline = Row("Random-init baseline (same architecture) — measured", method,
                   f"random-init baseline ({variant})" if variant else "random-init baseline")
    handcrafted = handcrafted_row()
    for protocol, rep in reports.items():
        for row, of in ((trained, PRETRAINED), (baseline, BASELINE), (handcrafted, HANDCRAFTED)):
            row.cells.update({(protocol, k): (float(v), MEASURED)
                              for k, v in rep.evaluation(of).items() if v is not None})
    return [trained, baseline, handcrafted]


def published_rows(entries: pd.DataFrame) -> list[Row]:
    """One row per published (method, variant, modality), in ``entries`` order."""
    rows: dict[tuple[str, str, str], Row] = {}
    for e in entries.itertuples(index=False):
        key = (e.method, e.variant, e.modality)
        if key not in rows:
            # numbers printed by someone other than the method's authors are labelled as such
            third_party = "third-party" in f"{e.variant} {e.source}".lower()
            tag = "(published, third-party)" if third_party else "(paper)"
            rows[key] = Row(f"{e.method} {e.variant} [{e.modality}] {tag}", e.method, e.variant)
        rows[key].cells[(e.protocol, e.metric)] = (float(e.value), e.source)
    return list(rows.values())


def table_rows(bench: Benchmark, measured: list[Row], published: list[Row]) -> list[Row]:
    """Measured rows always; published rows only where they have a value in ``bench``."""
    shown = {(p, k) for p, k, _ in columns(bench)}
    return measured + [r for r in published if shown & set(r.cells)]


def table_frame(bench: Benchmark, rows: list[Row]) -> pd.DataFrame:
    """The numeric table (NaN where missing), as logged to MLflow."""
    cols = columns(bench)
    data = [[r.label, *(r.value(p, k) for p, k, _ in cols), r.source(bench.protocols)] for r in rows]
    frame = pd.DataFrame(data, columns=["Method", *(h for _, _, h in cols), "Source"])
    return frame.astype({h: float for _, _, h in cols})


def synthetic_datasets(params: Mapping[str, Any], protocols: tuple[str, ...]) -> list[str]:
    """Datasets of ``protocols`` configured with the built-in synthetic suite."""
    datasets: list[str] = []
    for protocol in protocols:
        if protocol not in PROTOCOLS:  # the user's own data is never synthetic
            continue
        dataset = PROTOCOLS[protocol][0]
        for d in DATASETS[dataset].raw_datasets:  # NTU-120: the NTU-60 archive plus the extension
            source = ((params.get("data") or {}).get(d) or {}).get("source")
            if source == "synthetic" and d not in datasets:
                datasets.append(d)
    return datasets


def _fmt(value: float | None) -> str:
    return MISSING if value is None or value != value else f"{value:.1f}"


def _cell(row: Row, protocol: str, key: str) -> str:
    text = _fmt(row.value(protocol, key))
    epoch = row.value(protocol, "linear/best_epoch")
    if key == "linear/top1_best_on_test" and text != MISSING and epoch is not None:
        text += f" (ep {int(epoch)})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def benchmark_heading(bench: Benchmark) -> str:
    tasks = "linear evaluation, KNN-1 retrieval and action detection" if bench.detection else \
        "linear evaluation and KNN-1 retrieval"
    return f"# {bench.title}: {tasks}"


def synthetic_notice(datasets: list[str]) -> list[str]:
    if not datasets:
        return []
    names = ", ".join(f"`data.{d}.source: synthetic`" for d in datasets)
    return [(f"**Synthetic data ({names}): the measured rows come from the built-in synthetic suite "
             "and are not comparable with the paper figures.**"), ""]


def table_markdown(bench: Benchmark, rows: list[Row]) -> list[str]:
    """The table itself and the notes that explain its columns and row labels."""
    cols = columns(bench)
    lines = ["| " + " | ".join(["Method", *(h for _, _, h in cols), "Source"]) + " |",
             "|" + "---|" + "---:|" * len(cols) + "---|"]
    for row in rows:
        cells = [row.label, *(_cell(row, p, k) for p, k, _ in cols), row.source(bench.protocols) or MEASURED]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    lines += [
        "",
        "- Accuracies are top-1 / top-5 in %; KNN-1 is 1-nearest-neighbour retrieval accuracy in %.",
        ("- **Primary metric:** linear top-1 after the last epoch of the fixed schedule. "
         "**Best-on-test (official convention)** is the best test accuracy over the periodic test "
         "evaluations (model selection on the test set); \"(ep N)\" is its epoch."),
        ("- **Published numbers are best-on-test**, so they are placed in the best-on-test column, "
         "never in the last-epoch column; compare them with that column only."),
        ("- Random-init baseline: the same architecture with a seeded random initialisation and no "
         "pretraining, evaluated with the same protocol."),
        ("- Hand-crafted baseline: no learned features. Each sample's valid frames of the normalised "
         "joint coordinates, resampled to `features.handcrafted_frames` frames as the encoders' "
         "whole-sequence input and flattened; the same linear probe (a logistic regression on the "
         "coordinates) and KNN-1. Self-supervised rows are judged against both baselines."),
        ("- \"(paper)\": printed by the cited source; \"(published, third-party)\": printed by a third "
         "party, not by the method's authors. Modalities: J joint, M motion, B bone; 3s = three-stream "
         "ensemble."),
        f"- \"{MISSING}\": not measured in this run, or not published / not in the available material.",
    ]
    if bench.detection:
        lines.append("- Detection: mAP in %; measured values after the last epoch. Published detection "
                     "figures come from the pipeline named in their row (a dense fine-tune), so they "
                     "are not a like-for-like comparison.")
    return lines


def render_markdown(bench: Benchmark, rows: list[Row], params: Mapping[str, Any],
                    present: tuple[str, ...]) -> str:
    """The Markdown file of one benchmark; ``present`` are the protocols with measured results."""
    lines = [benchmark_heading(bench), "", *synthetic_notice(synthetic_datasets(params, bench.protocols))]
    method, variant = configuration(params)
    lines += [f"Configured method: {method}" + (f" ({variant})." if variant else "."), ""]
    missing = [p for p in bench.protocols if p not in present]
    if missing:
        lines += [f"No measured results for: {', '.join(missing)}.", ""]
    lines += table_markdown(bench, rows)
    return "\n".join(lines) + "\n"


def build_tables(params: Mapping[str, Any], reports: Mapping[str, ProtocolReports],
                 entries: pd.DataFrame) -> list[tuple[Benchmark, list[Row]]]:
    """The rows of every benchmark table; ``entries`` from ``published.table_entries``."""
    measured, published = measured_rows(params, reports), published_rows(entries)
    return [(bench, table_rows(bench, measured, published)) for bench in benchmarks_for(reports)]


def results_long(tables: list[tuple[Benchmark, list[Row]]]) -> pd.DataFrame:
    """Every value of every row each table shows (measured rows: all their metrics), long form, sorted."""
    records = [(bench.name, protocol, row.method, row.variant, metric, value, source)
               for bench, rows in tables for row in rows
               for (protocol, metric), (value, source) in row.cells.items() if protocol in bench.protocols]
    frame = pd.DataFrame(records, columns=["benchmark", "protocol", "method", "variant", "metric", "value",
                                           "source"])
    return frame.sort_values(["benchmark", "protocol", "method", "variant", "metric", "source"],
                             kind="stable").reset_index(drop=True)


SUMMARY_KEYS = {
    # summary name suffix -> (what was evaluated, metric key)
    "linear_top1_last": (PRETRAINED, "linear/top1_last"),
    "linear_top1_best_on_test": (PRETRAINED, "linear/top1_best_on_test"),
    "knn_top1": (PRETRAINED, "knn/top1"),
    "baseline_linear_top1_last": (BASELINE, "linear/top1_last"),
    "baseline_knn_top1": (BASELINE, "knn/top1"),
    "handcrafted_linear_top1_last": (HANDCRAFTED, "linear/top1_last"),
    "handcrafted_knn_top1": (HANDCRAFTED, "knn/top1"),
    "detect_mAP_action_theta0.5": (PRETRAINED, "detect/mAP_action_theta0.5"),
    "baseline_detect_mAP_action_theta0.5": (BASELINE, "detect/mAP_action_theta0.5"),
}


def summary(reports: Mapping[str, ProtocolReports]) -> dict[str, float]:
    """reports/summary.json: the numbers of every benchmark row per protocol present (pretrained
    encoder and both baselines)."""
    out = {}
    for protocol, rep in reports.items():
        evaluated = {of: rep.evaluation(of) for of in (PRETRAINED, BASELINE, HANDCRAFTED)}
        for name, (of, key) in SUMMARY_KEYS.items():
            if evaluated[of].get(key) is not None:
                out[f"{protocol}/{name}"] = float(evaluated[of][key])
    return out


# reports/metrics.json name -> summary.json name: the pretrained encoder's primary numbers, linear
# top-1 at the last epoch, KNN-1 and PKU-MMD I detection mAP_action at theta 0.5. Short names:
# they are column headers of `dvc exp show` and `dvc metrics show`.
HEADLINE_KEYS = {"linear_top1": "linear_top1_last", "knn_top1": "knn_top1",
                 "detect_mAP": "detect_mAP_action_theta0.5"}


def headline(reports: Mapping[str, ProtocolReports]) -> dict[str, float]:
    """reports/metrics.json, the pipeline's one declared DVC metric: :data:`HEADLINE_KEYS` per
    protocol present (``<protocol>/<name>``), at most three numbers each. Every other number stays
    in summary.json and the stages' own metrics.json files."""
    full = summary(reports)
    return {f"{protocol}/{name}": full[f"{protocol}/{key}"] for protocol in reports
            for name, key in HEADLINE_KEYS.items() if f"{protocol}/{key}" in full}


# the terminal tables: the headline columns per protocol (the Markdown tables hold them all)
TERMINAL_COLUMNS = (("linear/top1_last", "top-1"), ("linear/top1_best_on_test", "best"), ("knn/top1", "KNN-1"))
TERMINAL_DETECTION = (("detect/mAP_action_theta0.5", "mAP_a"),)
TERMINAL_LABEL_WIDTH = 48


def _terminal_label(row: Row) -> str:
    label = row.label.removesuffix(" — measured")
    return label if len(label) <= TERMINAL_LABEL_WIDTH else label[:TERMINAL_LABEL_WIDTH - 1] + "…"


def render_terminal(bench: Benchmark, rows: list[Row], params: Mapping[str, Any]) -> str:
    """One benchmark table for the terminal: every row, per protocol linear top-1 (last epoch),
    best-on-test (the published numbers' column) and KNN-1 (and mAP_action for detection)."""
    specs = TERMINAL_COLUMNS + (TERMINAL_DETECTION if bench.detection else ())
    title = bench.title
    if synthetic_datasets(params, bench.protocols):
        title += " (synthetic data: not comparable with the paper figures)"
    names = [PROTOCOLS[p][1] if p in PROTOCOLS else p for p in bench.protocols]
    cell = max(len(h) for _, h in specs) + 1
    group = len(specs) * (cell + 1) - 1  # one protocol's columns

    def line(label: str, cells: list[list[str]]) -> str:
        return (f"{label:<{width}}" + "".join("  " + " ".join(f"{c:>{cell}}" for c in g) for g in cells)).rstrip()

    width = max([len("Method")] + [len(_terminal_label(r)) for r in rows])
    lines = [title, (" " * width + "".join(f"  {n[:group]:^{group}}" for n in names)).rstrip(),
             line("Method", [[h for _, h in specs] for _ in names])]
    lines += [line(_terminal_label(row), [[_fmt(row.value(p, k)) for k, _ in specs] for p in bench.protocols])
              for row in rows]
    return "\n".join(lines) + "\n"

TERMINAL_NOTE = ("top-1: linear top-1 after the last epoch (primary); best: best-on-test, the official "
                 "convention and the only column published numbers fill; KNN-1: 1-NN retrieval; mAP_a: "
                 "PKU-MMD mAP_action at θ=0.5. In %.")
