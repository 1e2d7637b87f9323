"""One skeleton frame drawn with its joint names, so a wrong joint order is seen at a glance.

The preprocess stage draws the first frame of the first sample it writes (person 0, after
normalisation) for every dataset, into ``reports/preprocess/<dataset>_skeleton.png``. A 3-D frame
is drawn facing the viewer: vertical is the layout's ``align_z`` vector (the trunk; the data's y
axis for a layout without one), horizontal its ``align_x`` vector made orthogonal to it (the
data's x axis without one). A 2-D frame is drawn as an image (y grows downward). The PNG bytes
are deterministic (:mod:`skelrep.png`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import portable
from ..png import DPI, save_png
from .layout import SkeletonLayout


def _view(frame: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, str, str]:
    """(V, 2) drawing coordinates and the axis labels."""
    names = layout.joint_names
    if layout.channels == 2:
        return frame * np.array([1.0, -1.0]), "image x", "image y (downward)"
    up, up_label = np.array([0.0, 1.0, 0.0]), "y"
    if layout.align_z_pair is not None:
        a, b = layout.align_z_pair
        v = frame[b] - frame[a]
        if portable.norm(v) > 0:
            up, up_label = v / portable.norm(v), f"{names[b]} - {names[a]}"
    right, right_label = np.array([1.0, 0.0, 0.0]), "x"
    if layout.align_x_pair is not None:
        a, b = layout.align_x_pair
        v = frame[a] - frame[b]
        v = v - portable.dot(v, up) * up
        if portable.norm(v) > 0:
            right, right_label = v / portable.norm(v), f"{names[a]} - {names[b]}"
    if abs(portable.dot(right, up)) > 0.99:  # degenerate fallback: any axis orthogonal to up
        right = portable.cross(up, [0.0, 0.0, 1.0] if abs(up[2]) < 0.9 else [1.0, 0.0, 0.0])
        right /= portable.norm(right)
    right = right - portable.dot(right, up) * up
    right /= portable.norm(right)
    return np.stack([portable.dot(frame, right), portable.dot(frame, up)], axis=1), f"→ {right_label}", f"↑ {up_label}"


def skeleton_figure(frame: np.ndarray | None, layout: SkeletonLayout, path: Path, *,
                    title: str) -> None:
    """Draw ``frame`` (V, C) with the layout's bones and joint names into the PNG ``path``;
    a placeholder when there is no frame (no sample was written)."""
    # matplotlib (~0.3 s of imports) only when a figure is drawn: importing this module stays cheap
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 7.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    if frame is None:
        ax.axis("off")
        ax.text(0.5, 0.5, "no sample", ha="center", va="center")
        save_png(fig, path)
        return
    xy, xlabel, ylabel = _view(np.asarray(frame, dtype=np.float64), layout)
    for child, parent in layout.edges:
        ax.plot(xy[[child, parent], 0], xy[[child, parent], 1], color="0.55", lw=1.5, zorder=1)
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="tab:red", zorder=2)
    for v, name in enumerate(layout.joint_names):
        ax.annotate(f"{v} {name}", xy[v], xytext=(3, 2), textcoords="offset points", fontsize=6.5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    save_png(fig, path)
