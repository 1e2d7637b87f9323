"""The line-by-line NTU and PKU-MMD skeleton readers as they were before the vectorised parse.

A frozen copy (of skelrep's own code, commit 79a630c), kept only as the reference the vectorised
readers are tested against: same arrays for every file they accept, same DataError (message and
line) for every file they reject.
"""

from __future__ import annotations

import itertools

import numpy as np

from skelrep.data.ntu import (
    BODY_FIELDS,
    BODY_INFO_NAMES,
    JOINT_FIELDS,
    MAX_BODIES,
    NUM_JOINTS,
    NTUSkeleton,
    decode_text,
)
from skelrep.data.pku import NUM_BODIES, VALUES_PER_FRAME
from skelrep.errors import DataError

_BODY_LINES = 2 + NUM_JOINTS


def _split_lines(text: str) -> list[list[str]]:
    """Whitespace-split every line; '\\r' of CRLF endings is whitespace, so it vanishes."""
    pieces = text.split("\n")
    if pieces[-1] == "":  # the newline that ends the last line does not start another
        pieces.pop()
    return [piece.split() for piece in pieces]


def _truncated(source: str, rows: list[list[str]], what: str) -> DataError:
    return DataError(source, f"unexpected end of file: expected {what} (file truncated?)",
                     line=len(rows) + 1)


def _read_count(rows: list[list[str]], i: int, what: str, source: str) -> int:
    """Read the single non-negative integer on line ``i`` (0-based)."""
    if i >= len(rows):
        raise _truncated(source, rows, what)
    fields = rows[i]
    if len(fields) != 1:
        raise DataError(source, f"expected one integer ({what}), found {len(fields)} fields",
                        line=i + 1)
    try:
        value = int(fields[0])
    except ValueError:
        raise DataError(source, f"{what} {fields[0]!r} is not an integer", line=i + 1) from None
    if value < 0:
        raise DataError(source, f"{what} is negative ({value})", line=i + 1)
    return value


def _to_float(rows: list[list[str]], line_idx: list[int], source: str,
              what: str) -> np.ndarray:
    """Convert the fields of the given lines to float64, naming the line of a bad value."""
    flat = list(itertools.chain.from_iterable(map(rows.__getitem__, line_idx)))
    try:
        values = np.array(flat, dtype=np.float64)
    except ValueError:
        # Slow path, only taken for a broken file: find the first offending field.
        for i in line_idx:
            for field in rows[i]:
                try:
                    float(field)
                except ValueError:
                    raise DataError(source, f"{what}: {field!r} is not a number",
                                    line=i + 1) from None
        raise  # unreachable: numpy and float() accept the same spellings
    return values


def _check_finite(values: np.ndarray, line_idx: np.ndarray, source: str, what: str) -> None:
    """``values`` is (lines, fields); raise on the first line holding NaN or inf."""
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(source, f"{what}: NaN or infinite value", line=int(line_idx[i]) + 1)


def parse_skeleton_reference(data: bytes | str, source: str) -> NTUSkeleton:
    """Parse one NTU `.skeleton` file (LF or CRLF) with every field, validating as it goes.

    ``source`` names the file in error messages. Raises DataError (with the 1-based line)
    for truncation, bad counts, bad field counts, non-numeric or non-finite values, more
    than 4 bodies in a frame, non-whitespace after the last frame, and samples with no body.
    """
    rows = _split_lines(decode_text(data, source))
    if not rows:
        raise DataError(source, "empty file", line=1)
    num_frames = _read_count(rows, 0, "frameCount", source)
    if num_frames == 0:
        raise DataError(source, "frameCount is 0: no frames", line=1)

    # Walk the structure first; the numeric blocks are converted in one go afterwards.
    body_count = np.zeros(num_frames, dtype=np.int64)
    body_id = np.full((num_frames, MAX_BODIES), "", dtype=object)
    body_lines: list[int] = []  # 0-based line index of every body-info line
    body_slots: list[int] = []  # flat (frame * 4 + slot) index of every body
    pos = 1
    for t in range(num_frames):
        count = _read_count(rows, pos, f"bodyCount of frame {t + 1}/{num_frames}", source)
        if count > MAX_BODIES:
            raise DataError(source, f"frame {t + 1} has {count} bodies, at most {MAX_BODIES} "
                            "are supported", line=pos + 1)
        body_count[t] = count
        pos += 1
        for b in range(count):
            if pos >= len(rows):
                raise _truncated(source, rows, f"body {b + 1} of frame {t + 1}")
            fields = rows[pos]
            if len(fields) != BODY_FIELDS:
                raise DataError(source, f"body line has {len(fields)} fields, expected "
                                f"{BODY_FIELDS}", line=pos + 1)
            if not fields[0].isdigit():
                raise DataError(source, f"bodyID {fields[0]!r} is not a non-negative integer",
                                line=pos + 1)
            body_id[t, b] = fields[0]
            joint_count = _read_count(rows, pos + 1, "jointCount", source)
            if joint_count != NUM_JOINTS:
                raise DataError(source, f"jointCount is {joint_count}, expected {NUM_JOINTS}",
                                line=pos + 2)
            body_lines.append(pos)
            body_slots.append(t * MAX_BODIES + b)
            pos += _BODY_LINES
    if pos > len(rows):
        # Report a bad field count on a present joint line before calling it truncation.
        for i in range(body_lines[-1] + 2, len(rows)):
            if len(rows[i]) != JOINT_FIELDS:
                break
        else:
            raise _truncated(source, rows, "more joint lines")
    for i in range(pos, len(rows)):
        if rows[i]:
            raise DataError(source, "unexpected content after the last frame", line=i + 1)
    if not body_lines:
        raise DataError(source, f"none of the {num_frames} frames has a body", line=1)

    body_idx = np.asarray(body_lines)
    joint_idx = (body_idx[:, None] + 2 + np.arange(NUM_JOINTS)).ravel()
    joint_idx = joint_idx[joint_idx < len(rows)]
    field_counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))[joint_idx]
    bad = np.flatnonzero(field_counts != JOINT_FIELDS)
    if bad.size:
        i = int(joint_idx[bad[0]])
        raise DataError(source, f"joint line has {field_counts[bad[0]]} fields, expected "
                        f"{JOINT_FIELDS}", line=i + 1)

    info = _to_float(rows, body_lines, source, "body line").reshape(-1, BODY_FIELDS)[:, 1:]
    _check_finite(info, body_idx, source, "body line")
    joint_values = _to_float(rows, joint_idx.tolist(), source, "joint line")
    # Check after the float32 cast: a finite float64 beyond float32 range becomes inf.
    joint_values = joint_values.astype(np.float32).reshape(-1, JOINT_FIELDS)
    _check_finite(joint_values, joint_idx, source, "joint line")

    body_info = np.zeros((num_frames * MAX_BODIES, len(BODY_INFO_NAMES)), dtype=np.float64)
    body_info[body_slots] = info
    joints = np.zeros((num_frames * MAX_BODIES, NUM_JOINTS, JOINT_FIELDS), dtype=np.float32)
    joints[body_slots] = joint_values.reshape(-1, NUM_JOINTS, JOINT_FIELDS)
    return NTUSkeleton(
        num_frames=num_frames,
        body_count=body_count,
        body_id=body_id,
        body_info=body_info.reshape(num_frames, MAX_BODIES, -1),
        joints=joints.reshape(num_frames, MAX_BODIES, NUM_JOINTS, JOINT_FIELDS),
    )


def _lines(data: bytes | str, source: str) -> list[str]:
    lines = decode_text(data, source).split("\n")
    if lines[-1] == "":  # the final newline does not start another line
        lines.pop()
    return lines


def parse_pku_skeleton_reference(data: bytes | str, source: str) -> np.ndarray:
    """Parse a skeleton file into (T, 2, 25, 3) float32; trailing blank lines are allowed."""
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
