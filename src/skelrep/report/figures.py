"""Report figures, byte-for-byte deterministic.

Figures are drawn on a bare ``Figure`` (Agg, no pyplot state) under matplotlib's default style,
with a fixed size and dpi, and saved without the PNG metadata (software version) that would make
the bytes depend on the installation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import style
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..png import DPI, PNG_METADATA, save_png  # noqa: F401 (re-exported)
from .collect import ProtocolReports

MAX_TICK_LABELS = 120  # confusion axes label every class up to this many (NTU-120), every k-th beyond
MAX_LABEL_CHARS = 28  # longer class names are shortened on the axes


def _grid(n: int, ncols: int = 3) -> tuple[int, int]:
    ncols = max(1, min(n, ncols))
    return math.ceil(n / ncols), ncols


def _epoch_axis(ax) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _placeholder(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")


def loss_terms(reports: Mapping[str, ProtocolReports]) -> list[str]:
    """Total loss first, then every ``loss/*`` term any protocol reported, sorted."""
    terms = sorted({k for rep in reports.values() for row in rep.pretrain_stats for k in row
                    if k.startswith("loss/")})
    has_total = any("loss" in row for rep in reports.values() for row in rep.pretrain_stats)
    return (["loss"] if has_total else []) + terms


def pretrain_loss_figure(reports: Mapping[str, ProtocolReports], path: Path) -> None:
    """One subplot per loss term, one line per protocol."""
    terms = loss_terms(reports)
    with style.context("default"):
        rows, cols = _grid(len(terms) or 1)
        fig = Figure(figsize=(4.5 * cols, 3.2 * rows), dpi=DPI, layout="constrained")
        if not terms:
            _placeholder(fig, "no pretraining statistics")
        for i, term in enumerate(terms):
            ax = fig.add_subplot(rows, cols, i + 1)
            for protocol, rep in reports.items():
                points = [(r["epoch"], r[term]) for r in rep.pretrain_stats if term in r]
                if points:
                    ax.plot(*zip(*points, strict=True), marker=".", label=protocol)
            ax.set_title(term)
            _epoch_axis(ax)
            ax.legend(fontsize="small")
        fig.suptitle("Pretraining loss")
        save_png(fig, path)


def _test_curve(history: list[dict]) -> tuple[list[int], list[float]]:
    points = [(r["epoch"], r["test_top1"]) for r in history if r.get("test_top1") is not None]
    return ([e for e, _ in points], [v for _, v in points])


def linear_accuracy_figure(reports: Mapping[str, ProtocolReports], path: Path) -> None:
    """Linear test top-1 vs epoch, pretrained vs random init vs hand-crafted, one subplot per protocol."""
    protocols = [p for p, rep in reports.items()
                 if rep.linear_history or rep.linear_history_random or rep.linear_history_handcrafted]
    with style.context("default"):
        rows, cols = _grid(len(protocols) or 1)
        fig = Figure(figsize=(4.5 * cols, 3.2 * rows), dpi=DPI, layout="constrained")
        if not protocols:
            _placeholder(fig, "no linear evaluation history")
        for i, protocol in enumerate(protocols):
            rep = reports[protocol]
            ax = fig.add_subplot(rows, cols, i + 1)
            for history, label in ((rep.linear_history, "pretrained"), (rep.linear_history_random, "random init"),
                                   (rep.linear_history_handcrafted, "hand-crafted")):
                epochs, top1 = _test_curve(history)
                if epochs:
                    ax.plot(epochs, top1, marker=".", label=label)
            ax.set_title(protocol)
            _epoch_axis(ax)
            ax.set_ylabel("test top-1 (%)")
            ax.legend(fontsize="small")
        fig.suptitle("Linear evaluation: test top-1")
        save_png(fig, path)


def confusion_matrix(predictions: pd.DataFrame) -> tuple[np.ndarray, list]:
    """Row-normalised confusion matrix over the sorted union of actual and predicted classes."""
    classes = sorted(set(predictions["actual"]) | set(predictions["predicted"]))
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)))
    np.add.at(counts, (predictions["actual"].map(index).to_numpy(), predictions["predicted"].map(index).to_numpy()), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0), classes


def class_labels(predictions: pd.DataFrame, classes: list) -> list[str]:
    """Axis labels of ``classes``: their names from the ``actual_name`` / ``predicted_name``
    columns the linear stage writes when the dataset names its classes (shortened to
    :data:`MAX_LABEL_CHARS`), else the class ids."""
    names: dict = {}
    for ids, labels in (("actual", "actual_name"), ("predicted", "predicted_name")):
        if labels in predictions:
            names.update(zip(predictions[ids], predictions[labels].astype(str), strict=True))
    out = []
    for c in classes:
        name = names.get(c, str(c))
        out.append(name if len(name) <= MAX_LABEL_CHARS else name[:MAX_LABEL_CHARS - 1] + "…")
    return out


def confusion_layout(n: int) -> tuple[float, float, int]:
    """``(figure side in inches, tick font size in points, label every k-th class)`` for ``n``
    classes: the figure grows with the class count so that up to :data:`MAX_TICK_LABELS` classes
    (NTU-120) each get a readable label."""
    side = min(16.0, max(6.4, 4.0 + 0.1 * n))
    font = 8.0 if n <= 20 else (6.0 if n <= 60 else 5.0)
    return side, font, max(1, math.ceil(n / MAX_TICK_LABELS))


def draw_confusion(protocol: str, predictions: pd.DataFrame) -> Figure:
    """The row-normalised confusion matrix of the linear probe's test predictions, its axes
    labelled with the class names (:func:`class_labels`)."""
    matrix, classes = confusion_matrix(predictions)
    labels = class_labels(predictions, classes)
    side, font, every = confusion_layout(len(classes))
    with style.context("default"):
        fig = Figure(figsize=(side + 0.8, side), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="fraction of the actual class (rows sum to 1)", shrink=0.8)
        ticks = list(range(0, len(classes), every))
        ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=font)
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=font)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("actual class")
        ax.set_title(f"{protocol}: linear probe, test split, last epoch")
    return fig


def confusion_figure(protocol: str, predictions: pd.DataFrame, path: Path) -> None:
    with style.context("default"):
        save_png(draw_confusion(protocol, predictions), path)


def write_figures(reports: Mapping[str, ProtocolReports], out: Path) -> list[Path]:
    """All figures into ``out``; stale confusion matrices of absent protocols are removed."""
    written = [out / "pretrain_loss.png", out / "linear_accuracy.png"]
    pretrain_loss_figure(reports, written[0])
    linear_accuracy_figure(reports, written[1])
    for protocol, rep in reports.items():
        if rep.predictions is not None:
            written.append(out / f"confusion_{protocol}.png")
            confusion_figure(protocol, rep.predictions, written[-1])
    for stale in sorted(set(out.glob("confusion_*.png")) - set(written)):
        stale.unlink()
    return written
