"""NTU RGB+D 60/120: the `.skeleton` text reader, sample names, splits and missing lists.

The format is NTU's official one (``read_skeleton_file.m``): a frame count, then per frame a
body count (0 occurs) and per body a 10-field info line, the joint count (25) and 25 joint lines
of 12 fields; LF or CRLF. The reader parses every field into 4 body slots, where a slot is the
body's index within its frame (not its bodyID), because that is what the Family-B pipeline
(2s-AGCN ``ntu_gendata``) selects bodies from.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import re
from dataclasses import dataclass

import numpy as np

from skelrep.data import textnum
from skelrep.errors import DataError, SkelrepError

MAX_BODIES = 4
NUM_JOINTS = 25
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientationW/X/Y/Z trackingState
BODY_FIELDS = 10  # bodyID + the 9 fields kept in NTUSkeleton.body_info
BODY_INFO_NAMES = (
    "clipedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
    "handRightState", "isResticted", "leanX", "leanY", "trackingState",
)
# lines per body: the body-info line, the jointCount line and the joint lines
_BODY_LINES = 2 + NUM_JOINTS
# token offsets of x y z in a body's 25 joint lines (300 consecutive tokens)
_XYZ = (np.arange(NUM_JOINTS)[:, None] * JOINT_FIELDS + np.arange(3)).ravel()


class InvalidNameError(SkelrepError, ValueError):
    """A sample or video name that does not follow its dataset's naming scheme."""


@dataclass(eq=False)  # array fields: element-wise == would be ambiguous
class NTUSkeleton:
    """Every field of one `.skeleton` file, in 4 body slots per frame (zeros when empty)."""

    num_frames: int
    body_count: np.ndarray  # (T,) int64: bodies in each frame (0 for an empty frame)
    body_id: np.ndarray  # (T, 4) object: bodyID as a decimal string, "" for an empty slot
    body_info: np.ndarray  # (T, 4, 9) float64: BODY_INFO_NAMES
    joints: np.ndarray  # (T, 4, 25, 12) float32: all joint fields; (T, 4, 25, 3) x y z when
    # parsed with xyz_only


def decode_text(data: bytes | str, source: str) -> str:
    """Return ``data`` as text; undecodable bytes raise DataError naming the line."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(source, "not UTF-8 text", line=line) from None


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


def parse_skeleton(data: bytes | str, source: str, *, xyz_only: bool = False) -> NTUSkeleton:
    """Parse one NTU `.skeleton` file (LF or CRLF) with every field, validating it.

    ``source`` names the file in error messages. Raises DataError (with the 1-based line)
    for truncation, bad counts, bad field counts, non-numeric or non-finite values, more
    than 4 bodies in a frame, non-whitespace after the last frame, and samples with no body.
    ``xyz_only`` keeps only the first three joint fields (x y z, what preprocessing uses) in
    ``joints``; every field is validated either way, and the same files raise the same errors.

    A well-formed file is read in one vectorised pass (:func:`skelrep.data.textnum.tokenize`,
    then the structure checked from the counts with index arithmetic). Anything that pass does
    not accept goes through the line-by-line reader, which gives the same result for every file
    it accepts and names the line of the first problem otherwise.
    """
    tokens = textnum.tokenize(data)
    skel = _from_tokens(tokens, xyz_only) if tokens is not None else None
    if skel is None:
        skel = _parse_lines(data, source)
        if xyz_only:
            skel.joints = skel.joints[..., :3].copy()
    return skel


def _from_tokens(tokens: textnum.Tokens, xyz_only: bool) -> NTUSkeleton | None:
    """The skeleton of a file whose tokens are all plain decimals, or None when anything is
    off (the line-by-line reader then finds and names the problem)."""
    per_line = tokens.per_line
    first = np.cumsum(per_line) - per_line  # index of the first token of each line
    # The lines holding one token: frameCount (line 1), then bodyCount, and jointCount right
    # after each body line (10 tokens). A few hundred: read with int(), as the old reader did.
    ones = np.flatnonzero(per_line == 1)
    if ones.size < 2 or ones[0] != 0:
        return None
    counts = [int(t) if t.isdigit() and len(t) < 18 else -1 for t in tokens.raw(first[ones])]
    num_frames = counts[0]
    joint_count = per_line[ones[1:] - 1] == BODY_FIELDS
    counts = np.array(counts[1:])
    frame_lines = ones[1:][~joint_count]
    body_count = counts[~joint_count]
    if (num_frames <= 0 or num_frames != frame_lines.size or (body_count < 0).any()
            or (body_count > MAX_BODIES).any()
            or (counts[joint_count] != NUM_JOINTS).any()):
        return None
    # Every line is then checked against what the counts imply.
    span = 1 + _BODY_LINES * body_count  # lines of each frame
    if not np.array_equal(frame_lines, np.cumsum(span) - span + 1):
        return None
    end = int(frame_lines[-1] + span[-1])
    num_bodies = int(body_count.sum())
    if num_bodies == 0 or end > per_line.size or per_line[end:].any():
        return None
    frame_of_body = np.repeat(np.arange(num_frames), body_count)
    slot = np.arange(num_bodies) - np.repeat(np.cumsum(body_count) - body_count, body_count)
    body_lines = frame_lines[frame_of_body] + 1 + _BODY_LINES * slot
    expected = np.full(end, JOINT_FIELDS)
    expected[0] = 1
    expected[frame_lines] = 1
    expected[body_lines] = BODY_FIELDS
    expected[body_lines + 1] = 1
    if not np.array_equal(per_line[:end], expected):
        return None
    body_tokens = first[body_lines]
    ids = tokens.text(body_tokens)
    if not all(map(str.isdigit, ids)):
        return None

    # the 25 joint lines of a body are 300 consecutive tokens
    fields = _XYZ if xyz_only else np.arange(NUM_JOINTS * JOINT_FIELDS)
    info_tokens = body_tokens[:, None] + np.arange(1, BODY_FIELDS)
    joint_tokens = first[body_lines + 2][:, None] + fields
    values = tokens.floats(np.concatenate((info_tokens.ravel(), joint_tokens.ravel())))
    info = values[: info_tokens.size].reshape(num_bodies, -1)
    with np.errstate(over="ignore"):  # beyond float32: inf, rejected below by the line reader
        joint_values = values[info_tokens.size:].astype(np.float32)
        if not (np.isfinite(info).all() and np.isfinite(joint_values).all()):
            return None
        risky = tokens.unbounded() if xyz_only else ()  # the only tokens that may not be finite
        if len(risky):  # the joint fields left unread must be finite float32s too
            line = np.searchsorted(first, risky, side="right") - 1
            risky = risky[(per_line[line] == JOINT_FIELDS) & (risky - first[line] >= 3)]
            if not np.isfinite(tokens.floats(risky).astype(np.float32)).all():
                return None

    slots = frame_of_body * MAX_BODIES + slot
    body_id = np.full(num_frames * MAX_BODIES, "", dtype=object)
    body_id[slots] = ids
    body_info = np.zeros((num_frames * MAX_BODIES, len(BODY_INFO_NAMES)), dtype=np.float64)
    body_info[slots] = info
    joints = np.zeros((num_frames * MAX_BODIES, fields.size), dtype=np.float32)
    joints[slots] = joint_values.reshape(num_bodies, -1)
    return NTUSkeleton(
        num_frames=num_frames,
        body_count=body_count.astype(np.int64),
        body_id=body_id.reshape(num_frames, MAX_BODIES),
        body_info=body_info.reshape(num_frames, MAX_BODIES, -1),
        joints=joints.reshape(num_frames, MAX_BODIES, NUM_JOINTS, -1),
    )


def _parse_lines(data: bytes | str, source: str) -> NTUSkeleton:
    """The line-by-line reader: validates as it goes and names the line of the first problem."""
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


def slot_xyz(skel: NTUSkeleton, slots: int = MAX_BODIES) -> np.ndarray:
    """Camera-space xyz of the first ``slots`` body slots, shape (slots, T, 25, 3) float32 (zeros
    for empty slots)."""
    return np.ascontiguousarray(skel.joints[:, :slots, :, :3].transpose(1, 0, 2, 3))


# ---------------------------------------------------------------------------------- names

_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
# Largest id of each field of ``SsssCcccPpppRrrrAaaa`` per dataset; every id starts at 1.
_NAME_LIMITS = {
    "ntu60": {"setup": 17, "camera": 3, "performer": 40, "replication": 2, "action": 60},
    "ntu120": {"setup": 32, "camera": 3, "performer": 106, "replication": 2, "action": 120},
}


@dataclass(frozen=True)
class NTUName:
    """The five ids encoded in a sample stem `SsssCcccPpppRrrrAaaa`."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class label (action - 1)."""
        return self.action - 1

    @property
    def stem(self) -> str:
        return (f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
                f"R{self.replication:03d}A{self.action:03d}")


def parse_ntu_name(stem: str) -> NTUName:
    """Parse `SsssCcccPpppRrrrAaaa` (optionally ending in `.skeleton`) by its fixed offsets."""
    base = stem[: -len(".skeleton")] if stem.endswith(".skeleton") else stem
    match = _NAME_RE.fullmatch(base)
    if match is None:
        raise InvalidNameError(f"{stem!r} is not an NTU sample name (SsssCcccPpppRrrrAaaa)")
    name = NTUName(*(int(g) for g in match.groups()))
    limits = _NAME_LIMITS["ntu120"]
    for field, top in limits.items():
        if not 1 <= getattr(name, field) <= top:
            raise InvalidNameError(f"{stem!r}: {field} {getattr(name, field)} is outside "
                                   f"1..{top}")
    return name


def in_dataset(name: NTUName, dataset: str) -> bool:
    """Whether the sample belongs to ``dataset`` ('ntu60' is the S001–S017 subset of 'ntu120')."""
    limits = _NAME_LIMITS[_check_dataset(dataset)]
    return all(getattr(name, field) <= top for field, top in limits.items())


# --------------------------------------------------------------------------------- splits

_XSUB_NTU60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
_XSUB_NTU120_EXTRA = (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81,
                      82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
# One list per dataset, never one overwritten by the other (several code bases define the NTU-60
# list and then overwrite it with NTU-120's: harmless for NTU-60, whose subjects are all <= 40).
XSUB_TRAIN_SUBJECTS: dict[str, frozenset[int]] = {
    "ntu60": frozenset(_XSUB_NTU60),
    "ntu120": frozenset(_XSUB_NTU60 + _XSUB_NTU120_EXTRA),
}
XVIEW_TRAIN_CAMERAS = frozenset({2, 3})
BENCHMARKS: dict[str, tuple[str, ...]] = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
# (train, test) after removing the missing samples; assert these on full data.
PUBLISHED_SPLIT_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("ntu60", "xsub"): (40091, 16487),
    ("ntu60", "xview"): (37646, 18932),
    ("ntu120", "xsub"): (63026, 50919),
    ("ntu120", "xset"): (54468, 59477),
}
MISSING_COUNTS = {"ntu60": 302, "ntu120": 535}


def _check_dataset(dataset: str) -> str:
    if dataset not in BENCHMARKS:
        raise SkelrepError(f"unknown NTU dataset {dataset!r}; allowed: {', '.join(BENCHMARKS)}")
    return dataset


def ntu_split(name: NTUName, dataset: str, benchmark: str) -> str:
    """'train' or 'test' for ``name`` under ``benchmark`` of ``dataset``: xsub by performer,
    xview cameras 2 and 3 train, xset even setup ids train."""
    if benchmark not in BENCHMARKS.get(_check_dataset(dataset), ()):
        allowed = "; ".join(f"{d}: {', '.join(b)}" for d, b in BENCHMARKS.items())
        raise SkelrepError(f"unknown benchmark {benchmark!r} for {dataset}; allowed: {allowed}")
    if not in_dataset(name, dataset):
        raise SkelrepError(f"{name.stem} is not a {dataset} sample")
    if benchmark == "xsub":
        is_train = name.performer in XSUB_TRAIN_SUBJECTS[dataset]
    elif benchmark == "xview":
        is_train = name.camera in XVIEW_TRAIN_CAMERAS
    else:  # xset: even setup ids train
        is_train = name.setup % 2 == 0
    return "train" if is_train else "test"


@functools.cache
def load_missing(dataset: str) -> frozenset[str]:
    """The official missing/incomplete skeleton names of ``dataset`` (package data)."""
    _check_dataset(dataset)
    resource = importlib.resources.files("skelrep.data").joinpath(
        f"missing/{dataset}_missing_skeletons.txt")
    lines = resource.read_text(encoding="utf-8").splitlines()
    # Official format: two header sentences, a blank line, then one name per line.
    names = [line.strip() for line in lines[3:] if line.strip()]
    for name in names:
        parse_ntu_name(name)
    if len(set(names)) != MISSING_COUNTS[dataset]:
        raise SkelrepError(f"{resource}: {len(set(names))} names, expected "
                           f"{MISSING_COUNTS[dataset]} (damaged package data?)")
    return frozenset(names)
