"""Byte-for-byte deterministic PNG files from matplotlib figures.

Figures are drawn on a bare ``Figure`` (Agg, no pyplot state) with a fixed size and dpi and
saved without the PNG metadata (software version) that would make the bytes depend on the
installation. Used by the report figures and the preprocess stage's skeleton drawing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .io import atomic_path

if TYPE_CHECKING:  # matplotlib is loaded by whoever draws, not by importing this module
    from matplotlib.figure import Figure

DPI = 100
PNG_METADATA = {"Software": None}


def save_png(fig: Figure, path: Path) -> None:
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA)
