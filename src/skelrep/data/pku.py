"""PKU-MMD I/II: skeleton, label and split files, video names, and clip/frame labelling.

Formats as distributed (PKU-MMD's README and the common loaders). A skeleton file has one line per
frame with 150 floats (body 1's 25 joints × xyz, then body 2's); a label file has one
`label,start,end,confidence` line per action instance.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from skelrep.data import textnum
from skelrep.data.ntu import InvalidNameError, decode_text
from skelrep.errors import DataError, SkelrepError

logger = logging.getLogger(__name__)

NUM_BODIES = 2
NUM_JOINTS = 25
VALUES_PER_FRAME = NUM_BODIES * NUM_JOINTS * 3
NUM_CLASSES = 51  # file labels are 1..51; 0 is background in frame labels
BOUNDARY_CONVENTIONS = ("one_based_inclusive", "zero_based_half_open")
LONG_CLIP_POLICIES = ("head", "centre")
VIEWS = ("L", "M", "R")


def _lines(data: bytes | str, source: str) -> list[str]:
    lines = decode_text(data, source).split("\n")
    if lines[-1] == "":  # the final newline does not start another line
        lines.pop()
    return lines


def parse_pku_skeleton(data: bytes | str, source: str) -> np.ndarray:
    """Parse a skeleton file into (T, 2, 25, 3) float32; trailing blank lines are allowed.

    A file of plain decimals is read in one vectorised pass (:mod:`skelrep.data.textnum`);
    any other goes through the line-by-line reader, which names the line of a bad value.
    """
    tokens = textnum.tokenize(data)
    if tokens is not None:
        per_line = tokens.per_line
        filled = np.flatnonzero(per_line)
        frames = int(filled[-1]) + 1 if filled.size else 0
        if frames and (per_line[:frames] == VALUES_PER_FRAME).all():
            with np.errstate(over="ignore"):  # beyond float32: inf, rejected by the line reader
                values = tokens.floats(np.arange(frames * VALUES_PER_FRAME)).astype(np.float32)
            if np.isfinite(values).all():
                return values.reshape(frames, NUM_BODIES, NUM_JOINTS, 3)
    return _parse_lines(data, source)


def _parse_lines(data: bytes | str, source: str) -> np.ndarray:
    """The line-by-line reader: names the line of the first bad value."""
    lines = _lines(data, source)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(source, "empty skeleton file", line=1)
    rows = [line.split() for line in lines]
    for i, fields in enumerate(rows):
        if len(fields) != VALUES_PER_FRAME:
            raise DataError(source, f"frame line has {len(fields)} values, expected "
                            f"{VALUES_PER_FRAME}", line=i + 1)
    try:
        values = np.array([v for fields in rows for v in fields], dtype=np.float64)
    except ValueError:
        for i, fields in enumerate(rows):  # slow path: name the offending line
            for field in fields:
                try:
                    float(field)
                except ValueError:
                    raise DataError(source, f"{field!r} is not a number", line=i + 1) from None
        raise
    values = values.astype(np.float32).reshape(len(rows), VALUES_PER_FRAME)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataError(source, "NaN or infinite value", line=int(np.flatnonzero(bad)[0]) + 1)
    return values.reshape(len(rows), NUM_BODIES, NUM_JOINTS, 3)


def parse_pku_labels(data: bytes | str, source: str, swapped: list[int] | None = None) -> np.ndarray:
    """Parse a label file into (n, 4) int64 rows `label, start, end, confidence`.

    Blank lines are ignored. A row with start > end is swapped, as every third-party loader
    does: its 1-based line number is appended to ``swapped`` when given (the caller reports
    the count once), else logged as a warning. Labels must lie in 1..51.
    """
    rows: list[list[int]] = []
    for i, line in enumerate(_lines(data, source)):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise DataError(source, f"expected 4 comma-separated integers "
                            f"(label,start,end,confidence), found {len(parts)} fields", line=i + 1)
        try:
            label, start, end, confidence = (int(p) for p in parts)
        except ValueError:
            raise DataError(source, f"non-integer value in {line.strip()!r}", line=i + 1) from None
        if not 1 <= label <= NUM_CLASSES:
            raise DataError(source, f"label {label} is outside 1..{NUM_CLASSES}", line=i + 1)
        if start < 0 or end < 0 or confidence < 0:
            raise DataError(source, f"negative value in {line.strip()!r}", line=i + 1)
        if start > end:
            if swapped is None:
                logger.warning("%s:%d: start %d > end %d, swapped", source, i + 1, start, end)
            else:
                swapped.append(i + 1)
            start, end = end, start
        rows.append([label, start, end, confidence])
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


_SPLIT_HEADERS = (("training videos:",), ("validataion videos:", "validation videos:"))


def parse_pku_split(data: bytes | str, source: str) -> tuple[list[str], list[str]]:
    """Parse an official split file into (train ids, test ids).

    Format: `Training videos:`, a line of comma-separated ids (trailing comma), then
    `Validataion videos:` (official misspelling; the correct spelling is accepted too)
    and the test ids. Blank lines are ignored.
    """
    lines = [(i, line.strip()) for i, line in enumerate(_lines(data, source)) if line.strip()]
    if len(lines) != 4:
        raise DataError(source, f"expected 4 non-blank lines (header, ids, header, ids), "
                        f"found {len(lines)}", line=lines[4][0] + 1 if len(lines) > 4 else None)
    parts: list[list[str]] = []
    for (head_no, header), (ids_no, ids_line), allowed in zip(lines[::2], lines[1::2],
                                                              _SPLIT_HEADERS, strict=True):
        if header.lower() not in allowed:
            raise DataError(source, f"expected header {allowed[0]!r}, found {header!r}",
                            line=head_no + 1)
        ids = [v.strip() for v in ids_line.split(",") if v.strip()]
        for video in ids:
            try:
                parse_pku_video_name(video)
            except InvalidNameError as exc:
                raise DataError(source, str(exc), line=ids_no + 1) from None
        if len(set(ids)) != len(ids):
            raise DataError(source, "duplicate video ids", line=ids_no + 1)
        parts.append(ids)
    train, test = parts
    both = sorted(set(train) & set(test))
    if both:
        raise DataError(source, f"{len(both)} ids are in both lists, e.g. {both[0]}")
    return train, test


def clip_range(start: int, end: int, convention: str) -> tuple[int, int]:
    """Map a label row's (start, end) to a 0-based half-open frame range [u, v)."""
    if convention == "one_based_inclusive":
        return start - 1, end
    if convention == "zero_based_half_open":
        return start, end
    raise SkelrepError(f"unknown boundary convention {convention!r}; allowed: "
                       f"{', '.join(BOUNDARY_CONVENTIONS)}")


def cut_clip(video: np.ndarray, u: int, v: int, max_frames: int = 300,
             long_policy: str = "head") -> np.ndarray:
    """Frames [u, v) of ``video`` (T, 2, 25, 3), clipped to the video, at most ``max_frames``.

    A longer clip keeps its first ``max_frames`` frames ('head', CMD lineage) or its
    central ones ('centre', AimCLR). The result may be empty when [u, v) misses the video;
    callers drop such clips.
    """
    if long_policy not in LONG_CLIP_POLICIES:
        raise SkelrepError(f"unknown long clip policy {long_policy!r}; allowed: "
                           f"{', '.join(LONG_CLIP_POLICIES)}")
    u, v = max(u, 0), min(v, len(video))
    length = max(v - u, 0)
    if length > max_frames:
        if long_policy == "centre":
            u += (length - max_frames) // 2
        v = u + max_frames
    return video[u:max(u, v)].copy()


def frame_labels(num_frames: int, label_rows: np.ndarray, convention: str,
                 source: str = "") -> np.ndarray:
    """Per-frame labels (T,) int16: 0 = background, else the file label (1..51).

    Later rows overwrite earlier ones where they overlap; the overwritten frame count is
    logged. Ranges are clipped to the video.
    """
    labels = np.zeros(num_frames, dtype=np.int16)
    overwritten = 0
    for label, start, end, _ in np.asarray(label_rows, dtype=np.int64).reshape(-1, 4):
        u, v = clip_range(int(start), int(end), convention)
        u, v = max(u, 0), min(v, num_frames)
        if u >= v:
            continue
        overwritten += int(np.count_nonzero(labels[u:v]))
        labels[u:v] = label
    if overwritten:
        logger.warning("%s: %d frames lie in more than one labelled segment; the later "
                       "segment's label was kept", source or "frame_labels", overwritten)
    return labels


_PHASE1_RE = re.compile(r"(\d{4})-([LMR])")
_PHASE2_RE = re.compile(r"A(\d{2})N(\d{2})-([LMR])")


def parse_pku_video_name(stem: str) -> dict[str, int | str]:
    """Parse a video id: Phase I `XXXX-V` or Phase II `AxxNyy-V` (an optional `.txt` is ignored)."""
    base = stem[: -len(".txt")] if stem.endswith(".txt") else stem
    if match := _PHASE1_RE.fullmatch(base):
        return {"phase": 1, "video": int(match[1]), "view": match[2]}
    if match := _PHASE2_RE.fullmatch(base):
        return {"phase": 2, "sequence": int(match[1]), "subject": int(match[2]),
                "view": match[3]}
    raise InvalidNameError(f"{stem!r} is not a PKU-MMD video id (XXXX-V or AxxNyy-V, "
                           "V in L/M/R)")
