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

MAX_TICK_LABELS = 20  # beyond this many classes the confusion axes carry no per-class labels


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


def confusion_figure(protocol: str, predictions: pd.DataFrame, path: Path) -> None:
    matrix, classes = confusion_matrix(predictions)
    with style.context("default"):
        fig = Figure(figsize=(6.4, 5.6), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="fraction of the actual class")
        if len(classes) <= MAX_TICK_LABELS:
            ticks = range(len(classes))
            ax.set_xticks(ticks, [str(c) for c in classes], rotation=90, fontsize="small")
            ax.set_yticks(ticks, [str(c) for c in classes], fontsize="small")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("actual class")
        ax.set_title(f"{protocol}: linear probe, test split, last epoch")
        save_png(fig, path)


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
