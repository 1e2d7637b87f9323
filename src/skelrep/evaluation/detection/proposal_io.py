"""Proposal files and frame-boundary conventions.

Internally a segment is 0-based half-open [u, v). Files use the ground-truth convention
(``pku.boundary_convention``):

- ``one_based_inclusive``: start = u + 1, end = v (frames u+1..v counted from 1);
- ``zero_based_half_open``: start = u, end = v.

One file per video, one line per proposal: ``label,start,end,confidence``. No ids, no
timestamps, fixed float format, so identical proposals give byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from skelrep.errors import DataError, ParamsError
from skelrep.evaluation.detection.proposals import Proposal
from skelrep.io import write_text_atomic

CONVENTIONS = ("one_based_inclusive", "zero_based_half_open")
CONFIDENCE_FORMAT = "%.6f"


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ParamsError("pku.boundary_convention", f"must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def to_file_rows(proposals: Iterable[Proposal], convention: str) -> list[tuple[int, int, int, float]]:
    """(label, start, end, score) rows in the file convention."""
    shift = 1 if check_convention(convention) == "one_based_inclusive" else 0
    return [(int(p.label), int(p.start) + shift, int(p.end), float(p.score)) for p in proposals]


def file_to_inclusive(start, end, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """File-convention boundaries → 0-based inclusive [s, e] (used by the VOC metric)."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    if check_convention(convention) == "one_based_inclusive":
        return start - 1, end - 1
    return start, end - 1


def format_proposals(proposals: Iterable[Proposal], convention: str) -> str:
    rows = to_file_rows(proposals, convention)
    return "".join(f"{label},{start},{end},{CONFIDENCE_FORMAT % score}\n" for label, start, end, score in rows)


def write_proposals(path: str | os.PathLike, proposals: Iterable[Proposal], convention: str) -> None:
    """Write one video's proposals atomically (an empty list gives an empty file)."""
    write_text_atomic(path, format_proposals(proposals, convention))


def read_proposals(path: str | os.PathLike) -> np.ndarray:
    """Rows (n, 4) float64 ``label, start, end, confidence`` exactly as written (file convention).

    Commas or whitespace separate fields, as in the official evaluator; blank lines are skipped.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.replace(",", " ").split()
            if not fields:
                continue
            if len(fields) != 4:
                raise DataError(path, f"expected 4 fields 'label,start,end,confidence', got {len(fields)}", line=lineno)
            try:
                rows.append([float(x) for x in fields])
            except ValueError:
                raise DataError(path, f"non-numeric field in {line.strip()!r}", line=lineno) from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
