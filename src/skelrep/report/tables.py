"""Benchmark tables (measured vs published), the long-form results CSV and the summary metric.

Reporting convention: the primary number is top-1 after the last epoch (linear probe,
semi-supervised and full fine-tuning, transfer); best-on-test is secondary and always labelled
"best-on-test (official convention)". Published numbers are best-on-test, so they only ever fill
that column. Each benchmark table has, per protocol, the linear probe, KNN-1 (PKU-MMD I: the
detection mAPs), the semi-supervised columns of every label fraction present (1 % and 10 %
always) and the full fine-tune; and, for the protocols that are a transfer's target, that
transfer's columns. The ``transfer`` table holds every transfer (source -> target).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalog import DATASETS, PROTOCOLS
from ..config import configuration, configuration_label
from ..evaluation.sections import DETECTION_LABELS, DETECTION_PROTOCOLS, detection_protocol_of
from .collect import BASELINE, HANDCRAFTED, PRETRAINED, ProtocolReports
from .published import published_detection_protocol

MISSING = "–"
MEASURED = "measured"


@dataclass(frozen=True)
class Benchmark:
    """One Markdown table: ``reports/benchmarks/<name>.md``. A ``transfer`` table's protocols are
    the transfers' sources, and its columns the transfers only."""

    name: str
    title: str
    protocols: tuple[str, ...]
    detection: bool = False
    transfer: bool = False


# one table per built-in dataset, one column group per protocol (skelrep.catalog)
BENCHMARKS = tuple(
    Benchmark(d.table, d.title, tuple(p for p, (dataset, _) in PROTOCOLS.items() if dataset == d.name), d.detection)
    for d in DATASETS.values())
CUSTOM = "custom"  # the table of the user's own protocols (params.yaml protocols, generic data)


TRANSFER = "transfer"  # the table of every transfer: reports/benchmarks/transfer.md


def benchmarks_for(protocols: Iterable[str]) -> tuple[Benchmark, ...]:
    """The four benchmark tables, one table of the user's own protocols when there are any, and
    the transfer table (sources: every protocol)."""
    protocols = tuple(protocols)
    user = tuple(p for p in protocols if p not in PROTOCOLS)
    custom = (Benchmark(CUSTOM, "Your own data", user),) if user else ()
    sources = tuple(dict.fromkeys((*PROTOCOLS, *protocols)))
    return BENCHMARKS + custom + (Benchmark(TRANSFER, "Transfer between datasets", sources, transfer=True),)

RECOGNITION_COLUMNS = (
    ("linear/top1_last", "linear top-1, last epoch (primary)"),
    ("linear/top1_best_on_test", "linear top-1, best-on-test (official convention)"),
    ("linear/top5_last", "linear top-5, last epoch"),
    ("knn/top1", "KNN-1"),
)
SEMI_ALWAYS = ("1pct", "10pct")  # semi-supervised label fractions every table shows (others when present)
FINETUNE_COLUMNS = (
    ("finetune/top1_last", "fine-tune (100 % labels) top-1, last epoch"),
    ("finetune/top1_best_on_test", "fine-tune (100 % labels) top-1, best-on-test (official convention)"),
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

    @property
    def measured(self) -> bool:
        """A row of this run's results (its label ends with :data:`MEASURED_SUFFIX`), not a published one."""
        return self.label.endswith(MEASURED_SUFFIX)

    def value(self, protocol: str, key: str) -> float | None:
        cell = self.cells.get((protocol, key))
        return None if cell is None else cell[0]

    def source(self, shown: Iterable[tuple[str, str]]) -> str:
        """The distinct sources of this row's ``shown`` cells (``(protocol, metric)``), in first-seen order."""
        shown = set(shown)
        parts: list[str] = []
        for cell, (_, source) in self.cells.items():
            if cell in shown:
                parts += [p for p in source.split("; ") if p not in parts]
        return "; ".join(parts)


def _pct(name: str) -> float:
    return float(name.removesuffix("pct"))


def semi_fractions(rows: Iterable[Row], protocols: Iterable[str]) -> list[str]:
    """The label fractions (``1pct``, ...) of the semi-supervised columns: :data:`SEMI_ALWAYS` and
    any other a row has a value of on ``protocols``, in increasing order."""
    protocols = set(protocols)
    found = {key.split("/")[1] for row in rows for (p, key) in row.cells if p in protocols and key.startswith("semi/")}
    return sorted(set(SEMI_ALWAYS) | found, key=_pct)


def semi_columns(fraction: str) -> tuple[tuple[str, str], ...]:
    label = f"semi-supervised ({_pct(fraction):g} % labels) top-1"
    return ((f"semi/{fraction}/top1_last_mean", f"{label}, last epoch"),
            (f"semi/{fraction}/top1_best_on_test_mean", f"{label}, best-on-test (official convention)"))


def transfer_columns(target: str) -> tuple[tuple[str, str], ...]:
    base = f"transfer/{target}"
    return ((f"{base}/linear/top1_last", "linear top-1, last epoch"),
            (f"{base}/linear/top1_best_on_test", "linear top-1, best-on-test (official convention)"),
            (f"{base}/finetune/top1_last", "fine-tune top-1, last epoch"),
            (f"{base}/finetune/top1_best_on_test", "fine-tune top-1, best-on-test (official convention)"))


def transfer_pairs(rows: Iterable[Row]) -> list[tuple[str, str]]:
    """Every (source protocol, target protocol) a row has a transfer value of, sources in table order."""
    pairs = {(p, key.split("/")[1]) for row in rows for (p, key) in row.cells
             if key.startswith("transfer/") and key.count("/") >= 3}
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    return sorted(pairs, key=lambda st: (order.get(st[0], len(order)), st[0], order.get(st[1], len(order)), st[1]))


def _name(protocol: str) -> str:
    return PROTOCOLS[protocol][1] if protocol in PROTOCOLS else protocol


def columns(bench: Benchmark, rows: Iterable[Row] = ()) -> list[tuple[str, str, str]]:
    """``(protocol, metric key, header)`` for every value column of ``bench``; ``rows`` decide the
    semi-supervised fractions beyond 1 % and 10 % and the transfer columns (the pairs they hold)."""
    rows = list(rows)
    if bench.transfer:  # the transfer table: every transfer from one of its protocols
        return [(source, key, f"{source} → {target}: {header}") for source, target in transfer_pairs(rows)
                if source in bench.protocols for key, header in transfer_columns(target)]
    specs = RECOGNITION_COLUMNS + (DETECTION_COLUMNS if bench.detection else ())
    specs += tuple(c for f in semi_fractions(rows, bench.protocols) for c in semi_columns(f)) + FINETUNE_COLUMNS
    # built-in columns are named by their benchmark protocol (xsub, xview, xset), the user's by name
    out = [(p, key, f"{_name(p)}: {header}") for p in bench.protocols for key, header in specs]
    # a transfer into one of the table's protocols: its columns, under the source protocol's cells
    out += [(source, key, f"{_name(target)}, transfer from {source}: {header}") for source, target in
            transfer_pairs(rows) if target in bench.protocols for key, header in transfer_columns(target)]
    return out


MEASURED_SUFFIX = " — measured"  # ends the label of every row measured in this run
HANDCRAFTED_LABEL = "Hand-crafted baseline (joint coordinates, logistic regression)" + MEASURED_SUFFIX
HANDCRAFTED_METHOD, HANDCRAFTED_VARIANT = "Hand-crafted baseline", "joint coordinates, logistic regression"


def handcrafted_row(qualifier: str = "") -> Row:
    """The (empty) row of the hand-crafted baseline: no learned features, whatever the method;
    ``qualifier`` (e.g. "[official data]") tells rows of ``skelrep compare`` apart."""
    if not qualifier:
        return Row(HANDCRAFTED_LABEL, HANDCRAFTED_METHOD, HANDCRAFTED_VARIANT)
    return Row(HANDCRAFTED_LABEL.replace(MEASURED_SUFFIX, f" {qualifier}{MEASURED_SUFFIX}"), HANDCRAFTED_METHOD,
               f"{HANDCRAFTED_VARIANT} {qualifier}")


def measured_rows(params: Mapping[str, Any], reports: Mapping[str, ProtocolReports]) -> list[Row]:
    """The configured method, its random-init baseline and the hand-crafted baseline, over every
    protocol present."""
    method, variant = configuration(params)
    trained = Row(configuration_label(params) + MEASURED_SUFFIX, method, variant)
    baseline = Row("Random-init baseline (same architecture)" + MEASURED_SUFFIX, method,
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


def detection_label(protocol: str) -> str:
    """What a detection row adds to its method's label: ``detection: window (W)``."""
    return f"detection: {DETECTION_LABELS[protocol]}"


def split_detection(row: Row, published_protocol: str | None = None) -> tuple[Row, dict[str, Row]]:
    """``row`` without its detection cells, and one row per detection protocol it has cells of:
    labelled with the protocol, its cells under the dense protocol's keys (``detect/window/...``
    -> ``detect/...``: the table's detection columns). A measured row's keys name the protocol
    (:func:`skelrep.evaluation.sections.detection_protocol_of`); a published row's
    ``published_protocol`` (its detection cells stay in the row when None: unknown)."""
    rest = Row(row.label, row.method, row.variant)
    per: dict[str, Row] = {}
    measured = row.measured
    stem = row.label.removesuffix(MEASURED_SUFFIX)
    for (protocol, key), cell in row.cells.items():
        found = detection_protocol_of(key)
        if found is not None and not measured:
            found = (published_protocol, key) if published_protocol is not None else None
        if found is None:
            rest.cells[(protocol, key)] = cell
            continue
        which, dense_key = found
        if which not in per:
            tag = detection_label(which)
            variant = row.variant if not measured else f"{row.variant}; {tag}" if row.variant else tag
            per[which] = Row(f"{stem} — {tag}" + (MEASURED_SUFFIX if measured else ""), row.method, variant)
        per[which].cells[(protocol, dense_key)] = cell
    return rest, per


def table_rows(bench: Benchmark, measured: list[Row], published: list[Row]) -> list[Row]:
    """Measured rows always (but the hand-crafted baseline in the transfer table: it has no
    encoder to transfer); published rows only where they have a value in ``bench``. In a table
    with detection columns, every detection value sits in a row of its detection protocol (after
    the measured rows, in ``DETECTION_PROTOCOLS`` order: each protocol's measured rows, then the
    published ones that ran it)."""
    shown = {(p, k) for p, k, _ in columns(bench, measured + published)}
    measured = [r for r in measured if not (bench.transfer and r.method == HANDCRAFTED_METHOD)]
    if not bench.detection:
        return measured + [r for r in published if shown & set(r.cells)]
    mains, others = [], []
    groups: dict[str, list[Row]] = {p: [] for p in DETECTION_PROTOCOLS}
    for row in measured:
        rest, per = split_detection(row)
        mains.append(rest)
        for protocol, detection in per.items():
            groups[protocol].append(detection)
    for row in published:
        rest, per = split_detection(row, published_detection_protocol(row.variant))
        for protocol, detection in per.items():
            if shown & set(detection.cells):
                groups[protocol].append(detection)
        if shown & set(rest.cells):
            others.append(rest)
    measured_first = [sorted(g, key=lambda r: not r.measured) for g in groups.values()]
    return mains + [r for group in measured_first for r in group] + others


def table_frame(bench: Benchmark, rows: list[Row]) -> pd.DataFrame:
    """The numeric table (NaN where missing), as logged to MLflow."""
    cols = columns(bench, rows)
    shown = [(p, k) for p, k, _ in cols]
    data = [[r.label, *(r.value(p, k) for p, k, _ in cols), r.source(shown)] for r in rows]
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


def cell_text(row: Row, protocol: str, key: str) -> str:
    """One table cell as every rendering shows it (Markdown, HTML): the value; a mean over several
    runs as "mean ± std"; a measured best-on-test with its epoch."""
    text = _fmt(row.value(protocol, key))
    if text == MISSING:
        return text
    if key.endswith("_mean"):
        runs, std = (row.value(protocol, key.rsplit("/", 1)[0] + f"/{name}")
                     for name in ("runs", key.rsplit("/", 1)[1].replace("_mean", "_std")))
        if runs is not None and runs > 1 and std is not None:
            text += f" ± {std:.1f}"
    if key.endswith("/top1_best_on_test"):
        epoch = row.value(protocol, key.rsplit("/", 1)[0] + "/best_epoch")
        if epoch is not None:
            text += f" (ep {int(epoch)})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def benchmark_heading(bench: Benchmark) -> str:
    if bench.transfer:
        return f"# {bench.title}: linear evaluation and fine-tuning of an encoder pretrained on another dataset"
    tasks = ("linear evaluation, KNN-1 retrieval, semi-supervised and full fine-tuning"
             + (" and action detection" if bench.detection else ""))
    return f"# {bench.title}: {tasks}"


def synthetic_notice(datasets: list[str]) -> list[str]:
    if not datasets:
        return []
    names = ", ".join(f"`data.{d}.source: synthetic`" for d in datasets)
    return [(f"**Synthetic data ({names}): the measured rows come from the built-in synthetic suite "
             "and are not comparable with the paper figures.**"), ""]


def table_markdown(bench: Benchmark, rows: list[Row]) -> list[str]:
    """The table itself and the notes that explain its columns and row labels."""
    cols = columns(bench, rows)
    shown = [(p, k) for p, k, _ in cols]
    lines = ["| " + " | ".join(["Method", *(h for _, _, h in cols), "Source"]) + " |",
             "|" + "---|" + "---:|" * len(cols) + "---|"]
    for row in rows:
        cells = [row.label, *(cell_text(row, p, k) for p, k, _ in cols), row.source(shown) or MEASURED]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    if bench.transfer and not cols:
        lines.append("")
        lines.append(NO_TRANSFER)
    return lines + [""] + [f"- {note}" for note in table_notes(bench)]


NO_TRANSFER = "No transfer measured or published (params.yaml `transfer`)."


def table_notes(bench: Benchmark) -> list[str]:
    """The notes that explain a table's columns and row labels (Markdown inline markup: ``**``,
    backquotes), one per item: the Markdown and HTML renderings share them."""
    handcrafted = ("Hand-crafted baseline: no learned features. Each sample's valid frames of the normalised "
                   "joint coordinates, resampled to `features.handcrafted_frames` frames as the encoders' "
                   "whole-sequence input and flattened; the same linear probe (a logistic regression on the "
                   "coordinates) and KNN-1. Self-supervised rows are judged against both baselines.")
    semi = ("Semi-supervised: encoder and a linear head fine-tuned end to end on a labelled subset of the "
            "training split (per class, at least one sample each, seeded, the same for every method: "
            "`reports/finetune/<protocol>/subsets.json`), tested on the whole test split; \"m ± s\": mean and "
            "standard deviation over the `finetune.subset_seeds` subsets. Fine-tune: the same on every label. "
            "Their random-init rows train the same architecture from scratch (supervised only).")
    notes = [
        ("Accuracies are top-1 in %." if bench.transfer else
         "Accuracies are top-1 / top-5 in %; KNN-1 is 1-nearest-neighbour retrieval accuracy in %."),
        ("**Primary metric:** top-1 after the last epoch of the fixed schedule. "
         "**Best-on-test (official convention)** is the best test accuracy over the periodic test "
         "evaluations (model selection on the test set); \"(ep N)\" is its epoch."),
        ("**Published numbers are best-on-test**, so they are placed in the best-on-test column, "
         "never in the last-epoch column; compare them with that column only."),
        ("Random-init baseline: the same architecture with a seeded random initialisation and no "
         "pretraining, evaluated with the same protocol."),
        *(() if bench.transfer else (handcrafted,)),
        ("\"(paper)\": printed by the cited source; \"(published, third-party)\": printed by a third "
         "party, not by the method's authors. Modalities: J joint, M motion, B bone; 3s = three-stream "
         "ensemble."),
        f"\"{MISSING}\": not measured in this run, or not published / not in the available material.",
        *(() if bench.transfer else (semi,)),
        ("Transfer: the encoder pretrained on the source protocol, evaluated on the target's data by the "
         "linear probe (the target's `features` / `linear` settings) and by fine-tuning on every target "
         "label (the `finetune` recipe; from the random-init encoder: the target trained from scratch); "
         "published transfer numbers are fine-tunes."),
    ]
    if bench.detection:
        notes.append(
            "Detection (PKU-MMD I, cross-subject; evaluation.md §6): mAP in %, measured values after the last "
            "epoch; one row per detection protocol (`detection.protocols`), named in its label. "
            f"**{DETECTION_LABELS['dense']}**: skelrep's own, a per-frame linear head on the frozen encoder's "
            "dense features. "
            f"**{DETECTION_LABELS['window']}**: the frozen encoder and a linear head classifying the window "
            "centred on each frame (training windows of 16·d frames, d in {3, 4, 5}, labelled by their centre "
            "frame), smoothed activity proposals (P-SSD): the protocol of Simple-Skeleton-Detection, as HiCLR, "
            "PCM³ and HiCo ran it. "
            f"**{DETECTION_LABELS['dense_finetune']}**: the whole network fine-tuned from another protocol's "
            "encoder (`detection.dense_finetune.init_from`; TPAMI: NTU-60 xsub) with per-frame cross-entropy, "
            "per-class threshold proposals (P-THR), no NMS: the USDRL TPAMI pipeline. "
            "Published detection figures sit under the protocol they ran; the default (CPU) profile runs "
            "each protocol on a small budget, `skelrep profile paper` the papers' settings.")
    return notes


def table_protocols(bench: Benchmark, rows: list[Row]) -> tuple[str, ...]:
    """The protocols a table is about: its own; a transfer table's, those of its transfers
    (measured or published)."""
    if bench.transfer:
        return tuple(dict.fromkeys(p for pair in transfer_pairs(rows) for p in pair))
    return bench.protocols


def render_markdown(bench: Benchmark, rows: list[Row], params: Mapping[str, Any],
                    present: tuple[str, ...]) -> str:
    """The Markdown file of one benchmark; ``present`` are the protocols with measured results."""
    protocols = table_protocols(bench, rows)
    lines = [benchmark_heading(bench), "", *synthetic_notice(synthetic_datasets(params, protocols))]
    lines += [f"Configured method: {configuration_label(params)}.", ""]
    missing = [p for p in protocols if p not in present and not bench.transfer]
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
    """Every value of every row each table shows (measured rows: all their metrics), long form, sorted;
    a transfer's values once, under the transfer table."""
    records = [(bench.name, protocol, row.method, row.variant, metric, value, source)
               for bench, rows in tables for row in rows
               for (protocol, metric), (value, source) in row.cells.items()
               if protocol in bench.protocols and metric.startswith("transfer/") == bench.transfer]
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
    # the other detection protocols (detection.protocols): window classification, the dense fine-tune
    "detect_window_mAP_action_theta0.5": (PRETRAINED, "detect/window/mAP_action_theta0.5"),
    "detect_dense_finetune_mAP_action_theta0.5": (PRETRAINED, "detect/dense_finetune/mAP_action_theta0.5"),
}


def _fine_tuning_summary(evaluated: Mapping[str, float]) -> dict[str, float]:
    """The primary numbers of the fine-tuning protocols present: semi_<f>_top1_last_mean,
    finetune_top1_last, transfer_<target>_{linear,finetune}_top1_last."""
    out = {}
    for key, value in evaluated.items():
        parts = key.split("/")
        if (parts[0] == "semi" and parts[-1] == "top1_last_mean") or key == "finetune/top1_last" or (
                parts[0] == "transfer" and parts[-1] == "top1_last"):
            out["_".join(parts)] = float(value)
    return out


def summary(reports: Mapping[str, ProtocolReports]) -> dict[str, float]:
    """reports/summary.json: the numbers of every benchmark row per protocol present (pretrained
    encoder and both baselines; the fine-tuning protocols' primary numbers, ``baseline_`` for the
    random-init encoder's)."""
    out = {}
    for protocol, rep in reports.items():
        evaluated = {of: rep.evaluation(of) for of in (PRETRAINED, BASELINE, HANDCRAFTED)}
        for name, (of, key) in SUMMARY_KEYS.items():
            if evaluated[of].get(key) is not None:
                out[f"{protocol}/{name}"] = float(evaluated[of][key])
        for of, tag in ((PRETRAINED, ""), (BASELINE, "baseline_")):
            out.update({f"{protocol}/{tag}{name}": v for name, v in _fine_tuning_summary(evaluated[of]).items()})
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


# a detection row's protocol in the terminal, where labels are cut: kept whole at the label's end
TERMINAL_DETECTION_TAGS = {"dense": "[det: dense head]", "window": "[det: W]", "dense_finetune": "[det: D]"}


def _terminal_label(row: Row) -> str:
    label = row.label.removesuffix(MEASURED_SUFFIX)
    tag = ""
    for protocol in DETECTION_PROTOCOLS:
        suffix = f" — {detection_label(protocol)}"
        if label.endswith(suffix):
            label, tag = label.removesuffix(suffix), " " + TERMINAL_DETECTION_TAGS[protocol]
            break
    room = TERMINAL_LABEL_WIDTH - len(tag)
    return (label if len(label) <= room else label[:room - 1] + "…") + tag


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
                 "PKU-MMD mAP_action at θ=0.5, one row per detection protocol ([det: dense head] the frozen "
                 "dense head, [det: W] window classification, [det: D] the TPAMI dense fine-tune). In %.")
