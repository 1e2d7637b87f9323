"""reports/index.html: the run on one static page (the benchmark tables, the figures, the configuration).

The page is self-contained and byte-deterministic: inline CSS, no script, no external URL (it
opens from a file, offline, and a second run writes the same bytes); images are linked by paths
relative to ``reports/`` and listed in sorted order; no timestamp, run id or absolute path. The
table cells come from :func:`skelrep.report.tables.build_tables` through the same helpers as the
Markdown tables (:func:`~skelrep.report.tables.cell_text`, ``columns``, ``table_notes``), so the
two renderings cannot disagree on a number. Every text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import yaml

from ..catalog import DATASETS, PROTOCOLS
from ..config import configuration_label
from ..data.protocols import resolve_protocol
from ..evaluation.sections import DETECTION_LABELS, DETECTION_PROTOCOLS, detection_subfolder
from .tables import (
    MEASURED,
    NO_TRANSFER,
    Benchmark,
    Row,
    benchmark_heading,
    cell_text,
    columns,
    synthetic_datasets,
    synthetic_notice,
    table_notes,
    table_protocols,
)

INDEX = "index.html"  # the page, in the reports folder

# params.yaml sections shown beside the method's own: how the encoders were evaluated
EVALUATION_SECTIONS = ("preprocess", "pku", "features", "linear", "knn", "finetune", "detection", "transfer")

TRAINING_FIGURES = {  # reports/figures/<name>: caption (the confusion matrices get their own group)
    "pretrain_loss.png": "Pretraining loss: every loss term per epoch, one line per protocol",
    "linear_accuracy.png": "Linear evaluation: test top-1 per epoch, pretrained vs random init vs hand-crafted",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0 auto;
max-width:1400px;padding:0 1.5rem 3rem;color:#1b1f24;background:#fff;line-height:1.45}
h1{margin:1.2rem 0 .3rem}h2{margin-top:2.2rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem}
h3{margin:1.4rem 0 .5rem}
nav ul{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;padding:0;list-style:none}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.8rem;overflow-x:auto;max-height:40rem}
.notice{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem}
.scroll{overflow-x:auto;margin:.6rem 0;border:1px solid #d0d7de}
table{border-collapse:collapse;font-size:.82rem}
caption{caption-side:top;text-align:left;font-weight:600;padding:.4rem .5rem}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;vertical-align:top}
thead th{background:#f6f8fa;font-weight:600;text-align:center;min-width:5.5rem}
thead th[scope=colgroup]{text-align:left}/* a protocol spans ~10 columns: its name where they start */
tbody th{text-align:left;font-weight:normal;min-width:16rem;max-width:26rem}
/* the method column stays in view while a wide table scrolls sideways */
tbody th,thead tr:first-child th:first-child{position:sticky;left:0;z-index:1;background:#fff}
thead tr:first-child th:first-child{background:#f6f8fa}
td{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.source{text-align:left;white-space:normal;min-width:22rem;color:#57606a}
tr.measured,tr.measured th{background:#ddf4ff}tr.measured th{font-weight:600}
tr.baseline,tr.baseline th{background:#f3f0ff}
details{margin:.4rem 0}summary{cursor:pointer;color:#0969da}
.notes li{margin:.2rem 0;font-size:.9rem}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem}
.figures.wide{grid-template-columns:repeat(auto-fill,minmax(560px,1fr))}.figures.full{grid-template-columns:1fr}
figure{margin:0;border:1px solid #d0d7de;padding:.5rem;background:#fff}
figure img{display:block;width:100%;height:auto}
figcaption{font-size:.85rem;color:#57606a;margin-top:.3rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{font-weight:600}dd{margin:0}
"""


@dataclass(frozen=True)
class Figure:
    """One image of the page: ``src`` relative to the reports folder (POSIX separators)."""

    src: str
    alt: str


# how a group's images are laid out: a CSS class of the grid (see CSS)
GRID, WIDE, FULL = "grid", "wide", "full"  # ~3 per row, 2 per row (wide images), one per row


@dataclass(frozen=True)
class FigureGroup:
    """Images shown together under one heading, laid out as ``layout`` says."""

    title: str
    figures: tuple[Figure, ...]
    layout: str = GRID


def _pngs(folder: Path) -> list[Path]:
    # sorted by name: the same order on every filesystem
    return sorted((p for p in folder.glob("*.png") if p.is_file()), key=lambda p: p.name)


def _catalog_order(names: Sequence[str], name: str) -> tuple[int, str]:
    """Built-in protocols / datasets in the catalog's order (the tables' order), others after, by name."""
    order = list(names)
    return (order.index(name) if name in order else len(order), name)


def find_figures(reports_dir: Path) -> list[FigureGroup]:
    """The figures under ``reports_dir`` that exist, grouped: the report's training curves and
    confusion matrices (``figures/``), each detection protocol's timelines
    (``detect/<protocol>/timelines/[<detection protocol>/]``) and the preprocessing skeletons
    (``preprocess/<dataset>_skeleton.png``). Empty groups are left out."""
    reports_dir = Path(reports_dir)

    def rel(path: Path) -> str:
        return path.relative_to(reports_dir).as_posix()

    figures = _pngs(reports_dir / "figures")
    confusion = sorted((p for p in figures if p.name.startswith("confusion_")),
                       key=lambda p: _catalog_order(PROTOCOLS, p.stem.removeprefix("confusion_")))
    # the known curves first, in their order, then any other figure by name
    curves = sorted((p for p in figures if p not in confusion),
                    key=lambda p: (list(TRAINING_FIGURES).index(p.name) if p.name in TRAINING_FIGURES
                                   else len(TRAINING_FIGURES), p.name))
    groups = [
        FigureGroup("Training curves", tuple(Figure(rel(p), TRAINING_FIGURES.get(p.name, p.stem.replace("_", " ")))
                                             for p in curves), FULL),
        FigureGroup("Confusion matrices (linear probe, test split, last epoch)", tuple(
            Figure(rel(p), f"Confusion matrix of the linear probe on {p.stem.removeprefix('confusion_')}")
            for p in confusion)),
    ]
    for timelines in sorted((reports_dir / "detect").glob("*/timelines"), key=lambda p: p.as_posix()):
        protocol = timelines.parent.name
        for detection in DETECTION_PROTOCOLS:
            folder = timelines / detection_subfolder(detection)
            label = DETECTION_LABELS[detection]
            groups.append(FigureGroup(
                f"Detection timelines, {protocol}: {label}",
                tuple(Figure(rel(p), f"Video {p.stem}: ground truth vs predicted frames ({label})")
                      for p in _pngs(folder)), WIDE))
    skeletons = sorted((reports_dir / "preprocess").glob("*_skeleton.png"),
                       key=lambda p: _catalog_order(DATASETS, p.stem.removesuffix("_skeleton")))
    groups.append(FigureGroup("Preprocessed skeletons (first frame of the first sample, joints named)", tuple(
        Figure(rel(p), f"Preprocessed skeleton of {p.stem.removesuffix('_skeleton')}") for p in skeletons)))
    return [g for g in groups if g.figures]


# --- rendering ------------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def inline(text: str) -> str:
    """The Markdown inline markup of the table notes (``**bold**``, backquoted code) as HTML,
    everything else escaped (escaping first: the markup characters survive it)."""
    return _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<strong>\1</strong>", escape(text)))


def _anchor(name: str) -> str:
    return "table-" + re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


def _row_class(row: Row) -> str:
    """published, baseline (random-init, hand-crafted: measured) or measured (the method's rows)."""
    if not row.measured:
        return "published"
    return "baseline" if "baseline" in row.label.split(" — ")[0].lower() else "measured"


def _header_groups(cols: list[tuple[str, str, str]]) -> list[tuple[str, int]]:
    """The upper header row: consecutive columns of one protocol (the text before the header's
    first ": ") as one cell spanning them."""
    groups: list[tuple[str, int]] = []
    for _, _, header in cols:
        group = header.partition(": ")[0]
        if groups and groups[-1][0] == group:
            groups[-1] = (group, groups[-1][1] + 1)
        else:
            groups.append((group, 1))
    return groups


def table_html(bench: Benchmark, rows: list[Row]) -> list[str]:
    """One benchmark table: a caption, a two-row header (protocol, then metric), one row per
    table row with the label as its header cell; the cells as in the Markdown table."""
    cols = columns(bench, rows)
    shown = [(p, k) for p, k, _ in cols]
    out = ['<div class="scroll"><table>', f"<caption>{escape(benchmark_heading(bench).removeprefix('# '))}</caption>",
           "<thead>"]
    if cols:
        out.append('<tr><th rowspan="2" scope="col">Method</th>'
                   + "".join(f'<th colspan="{n}" scope="colgroup">{escape(g)}</th>' for g, n in _header_groups(cols))
                   + '<th rowspan="2" scope="col">Source</th></tr>')
        out.append("<tr>" + "".join(f'<th scope="col">{escape(h.partition(": ")[2])}</th>' for _, _, h in cols)
                   + "</tr>")
    else:
        out.append('<tr><th scope="col">Method</th><th scope="col">Source</th></tr>')
    out.append("</thead>")
    out.append("<tbody>")
    for row in rows:
        cells = "".join(f"<td>{escape(cell_text(row, p, k))}</td>" for p, k, _ in cols)
        out.append(f'<tr class="{_row_class(row)}"><th scope="row">{escape(row.label)}</th>{cells}'
                   f'<td class="source">{escape(row.source(shown) or MEASURED)}</td></tr>')
    out += ["</tbody>", "</table></div>"]
    return out


def benchmark_section(bench: Benchmark, rows: list[Row], params: Mapping[str, Any],
                      present: tuple[str, ...]) -> list[str]:
    """What the Markdown file of ``bench`` says, as a page section."""
    protocols = table_protocols(bench, rows)
    out = [f'<section id="{_anchor(bench.name)}">', f"<h2>{escape(bench.title)}</h2>"]
    out += [f'<p class="notice">{inline(line)}</p>'
            for line in synthetic_notice(synthetic_datasets(params, protocols)) if line]
    missing = [p for p in protocols if p not in present and not bench.transfer]
    if missing:
        out.append(f"<p>No measured results for: {escape(', '.join(missing))}.</p>")
    out += table_html(bench, rows)
    if bench.transfer and not columns(bench, rows):
        out.append(f"<p>{inline(NO_TRANSFER)}</p>")
    out.append(f'<p>Markdown: <a href="benchmarks/{escape(bench.name)}.md">benchmarks/{escape(bench.name)}.md</a></p>')
    out += ['<details class="notes"><summary>How to read this table</summary><ul>',
            *(f"<li>{inline(note)}</li>" for note in table_notes(bench)), "</ul></details>", "</section>"]
    return out


def figures_section(groups: Sequence[FigureGroup]) -> list[str]:
    out = ['<section id="figures">', "<h2>Figures</h2>"]
    if not groups:
        out.append("<p>No figure in this reports folder.</p>")
    for group in groups:
        out += [f"<h3>{escape(group.title)}</h3>", f'<div class="figures {group.layout}">']
        for fig in group.figures:
            src = escape(fig.src)
            # the link opens the image at full size (confusion matrices of 120 classes)
            out.append(f'<figure><a href="{src}"><img src="{src}" alt="{escape(fig.alt)}"></a>'
                       f"<figcaption>{escape(fig.alt)}</figcaption></figure>")
        out.append("</div>")
    out.append("</section>")
    return out


def _yaml(obj: Any) -> str:
    # the file's own key order (params.yaml as written), block style like the file
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def run_datasets(params: Mapping[str, Any], present: Iterable[str]) -> list[str]:
    """The datasets (``data`` keys) the protocols of this run read, in ``data`` order."""
    used = {d for p in present for d in resolve_protocol(params, p).raw_datasets}
    return [d for d in (params.get("data") or {}) if d in used]


def configuration_section(params: Mapping[str, Any], present: tuple[str, ...]) -> list[str]:
    """The method, its params.yaml section, the data sources and the protocols run: a summary,
    then the sections themselves as YAML."""
    method_key = params.get("method", "")
    data = params.get("data") or {}
    datasets = run_datasets(params, present)
    transfers = params.get("transfer") or {}
    items = [
        ("Method", configuration_label(params)),
        ("Data", "; ".join(f"{d}: {(data.get(d) or {}).get('source', '?')}" for d in datasets) or "none"),
        ("Protocols run", ", ".join(present) or "none"),
        ("Transfers", "; ".join(f"{n}: {(e or {}).get('source')} → {(e or {}).get('target')}"
                                for n, e in transfers.items()) or "none"),
    ]
    shown = {"method": method_key, method_key: params.get(method_key),
             "data": {d: data[d] for d in datasets},
             "protocols": {p: (params.get("protocols") or {}).get(p) for p in present}}
    evaluation = {k: params[k] for k in EVALUATION_SECTIONS if k in params}
    out = ['<section id="configuration">', "<h2>Configuration</h2>", "<dl>"]
    out += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items]
    out += ["</dl>",
            (f"<h3>params.yaml: <code>method</code>, <code>{escape(method_key)}</code>, the data and "
             "protocols of this run</h3>"),
            f"<pre>{escape(_yaml(shown))}</pre>",
            "<details><summary>params.yaml: preprocessing and evaluation sections</summary>",
            f"<pre>{escape(_yaml(evaluation))}</pre>", "</details>", "</section>"]
    return out


def render_html(params: Mapping[str, Any], tables: Sequence[tuple[Benchmark, list[Row]]],
                present: tuple[str, ...], figures: Sequence[FigureGroup]) -> str:
    """The page: ``tables`` from ``build_tables``, ``present`` the protocols with measured
    results, ``figures`` from :func:`find_figures`."""
    configured = configuration_label(params)
    toc = [(_anchor(b.name), b.title) for b, _ in tables] + [("figures", "Figures"), ("configuration", "Configuration")]
    lines = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>skelrep report: {escape(configured)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        "<header>", f"<h1>skelrep report: {escape(configured)}</h1>",
        ("<p>Self-supervised skeleton action representation learning: this run's measured results beside "
         "the published numbers, on every benchmark, with the random-init and hand-crafted baselines; "
         "then the figures and the configuration. Written by the DVC <code>report</code> stage from the "
         'files of this folder; every number is also in <a href="results.csv">results.csv</a>.</p>'),
        "<nav><ul>", *(f'<li><a href="#{a}">{escape(t)}</a></li>' for a, t in toc), "</ul></nav>", "</header>",
        "<main>",
    ]
    for bench, rows in tables:
        lines += benchmark_section(bench, rows, params, present)
    lines += figures_section(figures)
    lines += configuration_section(params, present)
    lines += ["</main>", "</body>", "</html>"]
    return "\n".join(lines) + "\n"
