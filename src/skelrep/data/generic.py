"""The generic skeleton data source: bring your own sequences in one simple on-disk format.

Format (a folder, or a ``.zip`` of it; the files may also sit in one top-level folder of the
zip, as when you zip the folder itself)::

    labels.csv                  sample_id,label[,any other columns]
    sequences/<sample_id>.npy   one array per sample: (T, V, C) or (T, M, V, C), numeric
    split.csv                   optional: sample_id,split  (split is train or test)

- ``sample_id``: letters, digits and ``_ . + -`` (it names the file and the HDF5 sample).
- ``label``: either every label an integer 0..K-1 (K = largest + 1), or every label a class
  name; names are mapped to 0..K-1 in sorted order and the mapping is kept in
  :attr:`GenericIndex.class_names`. A mix of both is an error.
- other columns (``subject``, ``camera``, ``setup``, ...) are free; any of them can define the
  split, and every one is kept as per-sample metadata.
- arrays: T frames, M persons (the 3-D form means one person), V joints and C channels as
  declared by the skeleton layout (:mod:`skelrep.data.layout`); M may be below the layout's
  ``persons`` (zero-padded). A person absent in a frame, or a frame nobody was tracked in, is
  all zeros. NaN and inf are errors: write untracked values as 0.

Every ``sample_id`` needs its array and every array its row; errors name ``labels.csv`` and the
line. Splits come from a column rule or ``split.csv`` (:func:`assign_splits`). Each sample is
read by :func:`load_sequence`, which checks it against the layout, handles untracked frames
(``zero_frames``: drop | interpolate | keep) and lengthens short sequences to ``min_frames``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import weakref
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import portable
from ..errors import DataError, ParamsError
from ..schema import choice, integer, string, validate
from .archive import Archive, DirectoryArchive, open_archive
from .layout import SkeletonLayout, layout_roles, layout_spec, load_layout
from .normalize import select_bodies_by_energy

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
SEQUENCES_DIR = "sequences"
SPLITS = ("train", "test")
ZERO_FRAMES = ("drop", "interpolate", "keep")
EXTRA_PERSONS = ("fail", "energy")
_SAMPLE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_META_MIN, _META_MAX = 0, int(np.iinfo(np.int16).max)  # HDF5 meta dtype; -1 marks an empty cell


# --------------------------------------------------------------------- params


def split_rule(value: Any, key: str) -> dict:
    """params validator for a split rule.

    ``{column: subject, train: [1, 2, 3]}`` (listed values; optional ``test: [...]`` to use only
    the listed test values, other samples are left out), ``{column: subject, train: odd}``
    (or ``even``; the column must hold integers), or ``{file: split.csv}`` (a file in the
    dataset with columns ``sample_id,split``).
    """
    if not isinstance(value, Mapping):
        raise ParamsError(key, f"got {value!r}; expected {{column: <name>, train: [values] | odd | "
                          "even}} or {file: split.csv}")
    if "file" in value:
        rule = validate(value, {"file": string}, key)
        path = rule["file"]
        if path.startswith("/") or ".." in Path(path).parts:
            raise ParamsError(f"{key}.file", f"got {path!r}; expected a path inside the dataset root")
        return rule
    if "column" not in value:
        raise ParamsError(key, "expected a key 'column' (with 'train') or 'file'")
    schema = {"column": string, "train": _train_values}
    if "test" in value:
        schema["test"] = _listed_values
    rule = validate(value, schema, key)
    if "test" in rule:
        if isinstance(rule["train"], str):
            raise ParamsError(f"{key}.test", "only allowed when train lists values (odd/even split "
                              "every sample)")
        both = set(rule["train"]) & set(rule["test"])
        if both:
            raise ParamsError(f"{key}.test", f"values {sorted(both, key=str)} are listed for both "
                              "train and test")
    return rule


def _norm_value(value: Any) -> int | str:
    """A split / meta value: integer-like strings compare as integers ('007' == 7)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    return int(text) if _INT.fullmatch(text) else text


def _listed_values(value: Any, key: str) -> list:
    if not isinstance(value, (list, tuple)) or not value:
        raise ParamsError(key, f"got {value!r}; expected a non-empty list of column values")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, str)) or v == "":
            raise ParamsError(f"{key}[{i}]", f"got {v!r}; expected an integer or a string")
        out.append(_norm_value(v))
    return out


def _train_values(value: Any, key: str) -> list | str:
    if isinstance(value, str):
        if value not in ("odd", "even"):
            raise ParamsError(key, f"got {value!r}; expected a list of values, 'odd' or 'even'")
        return value
    return _listed_values(value, key)


# Split names become HDF5 group names and, with the dataset, protocol names: no '.', '@', '/'.
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def split_rules(value: Any, key: str) -> dict[str, dict]:
    """params validator for ``generic.splits``: ``{<name>: <split rule>}``, at least one. Each
    named split is an index set of the processed file; a protocol selects one by name."""
    if not isinstance(value, Mapping) or not value:
        raise ParamsError(key, f"got {value!r}; expected named split rules, e.g. {{xsub: {{column: subject, "
                          "train: [1, 2, 3]}}}")
    for name in value:
        if not isinstance(name, str) or not SPLIT_NAME.fullmatch(name):
            raise ParamsError(f"{key}.{name}", "a split name uses letters, digits, '_' and '-' (starting "
                              "with a letter or digit)")
    return {name: split_rule(rule, f"{key}.{name}") for name, rule in value.items()}


GENERIC_SCHEMA = {
    "root": string,                           # folder or .zip in the generic format
    "layout": layout_spec,                    # built-in name, .yaml path or mapping
    "splits": split_rules,                    # name -> column rule or {file: split.csv}
    "zero_frames": choice(*ZERO_FRAMES),      # untracked (all-zero) frames
    "min_frames": integer(1, 10_000),         # shorter sequences are resampled to this
    "max_frames": integer(1, 10_000),         # longer ones are cut (HDF5 T_max)
    "extra_persons": choice(*EXTRA_PERSONS),  # more persons than layout.persons: fail | energy
}


@dataclass(frozen=True)
class GenericConfig:
    root: str
    layout: SkeletonLayout
    splits: dict  # name -> split rule
    zero_frames: str = "interpolate"
    min_frames: int = 1
    max_frames: int = 300
    extra_persons: str = "fail"

    @classmethod
    def from_params(cls, section: Any, prefix: str = "generic") -> GenericConfig:
        p = validate(section, GENERIC_SCHEMA, prefix)
        if p["min_frames"] > p["max_frames"]:
            raise ParamsError(f"{prefix}.min_frames", f"got {p['min_frames']}, above max_frames "
                              f"({p['max_frames']})")
        return cls(**p)

    def load(self, archive: Archive, sample_id: str, prefix: str | None = None) -> np.ndarray:
        return load_sequence(archive, sample_id, self.layout, prefix=prefix,
                             zero_frames=self.zero_frames, min_frames=self.min_frames,
                             extra_persons=self.extra_persons)


# --------------------------------------------------------------------- the index


@dataclass(frozen=True)
class GenericIndex:
    """The validated contents of ``labels.csv``, one entry per sample, sorted by sample_id."""

    source: str                         # the dataset root as given (folder or archive)
    prefix: str                         # member prefix of the dataset inside it: "" or "dir/"
    sample_ids: tuple[str, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...] | None  # None when labels.csv holds integer labels
    num_classes: int
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other columns, raw text
    lines: tuple[int, ...] = ()         # labels.csv line of each sample

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def labels_source(self) -> str:
        return _where(self.source, self.prefix + LABELS_FILE)

    def member(self, sample_id: str) -> str:
        return f"{self.prefix}{SEQUENCES_DIR}/{sample_id}.npy"

    def position(self, sample_id: str) -> int:
        return self._positions()[sample_id]

    def label_of(self, sample_id: str) -> int:
        return self.labels[self.position(sample_id)]

    def _positions(self) -> dict[str, int]:
        cache = self.__dict__.get("_pos")
        if cache is None:
            cache = {s: i for i, s in enumerate(self.sample_ids)}
            object.__setattr__(self, "_pos", cache)
        return cache

    def meta_codes(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]]]:
        """Every extra column as integers for the HDF5 ``meta/<column>`` datasets (int16).

        A column of integers within int16 is kept as is; any other column is coded 0.. in
        sorted order of its values (numeric order for integers; the second result holds those
        mappings). Empty cells are -1.
        """
        codes: dict[str, np.ndarray] = {}
        mappings: dict[str, dict[str, int]] = {}
        for name, cells in self.columns.items():
            values = [c.strip() for c in cells]
            present = [v for v in values if v]
            integers = all(_INT.fullmatch(v) for v in present)
            if integers and all(_META_MIN <= int(v) <= _META_MAX for v in present):
                codes[name] = np.array([int(v) if v else -1 for v in values], dtype=np.int64)
            else:
                order = sorted(set(present), key=int if integers else None)
                mapping = {v: i for i, v in enumerate(order)}
                codes[name] = np.array([mapping[v] if v else -1 for v in values], dtype=np.int64)
                mappings[name] = mapping
        return codes, mappings


def _where(source: str, member: str) -> str:
    """How errors name a file: ``root/member`` for folders, ``archive.zip:member`` otherwise."""
    return f"{Path(source) / member}" if Path(source).is_dir() else f"{source}:{member}"


def find_prefix(archive: Archive) -> str:
    """'' when labels.csv is at the top, 'dir/' when the dataset is one top-level folder."""
    names = archive.members()
    if LABELS_FILE in names:
        return ""
    nested = [n for n in names if n.endswith("/" + LABELS_FILE) and n.count("/") == 1
              and not n.startswith("__MACOSX/")]
    if len(nested) == 1:
        return nested[0][: -len(LABELS_FILE)]
    raise DataError(archive.path, f"no {LABELS_FILE} at the top level (or in a single top-level "
                    "folder); expected labels.csv and sequences/<sample_id>.npy, see "
                    "docs/custom_data.md")


def _read_csv(archive: Archive, member: str, source: str, required: Sequence[str]):
    """(header, [(line, cells)]) of a small CSV member; blank lines skipped."""
    try:
        text = archive.read(member).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(source, f"is not UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(reader, None)
        if header is None:
            raise DataError(source, f"is empty; expected a header line {','.join(required)}", line=1)
        header = [h.strip() for h in header]
        header_line = reader.line_num
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(source, f"missing column(s) {', '.join(missing)}; the header is "
                            f"{','.join(header)!r} and must name {','.join(required)}", line=header_line)
        for i, name in enumerate(header):
            if not name:
                raise DataError(source, f"column {i + 1} of the header has no name", line=header_line)
            if name in header[:i]:
                raise DataError(source, f"column {name!r} appears twice in the header", line=header_line)
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(source, f"has {len(cells)} fields, the header has {len(header)}",
                                line=reader.line_num)
            rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise DataError(source, f"is not valid CSV ({exc})", line=reader.line_num) from None
    return header, rows


def read_generic_index(root: str | Path | Archive) -> GenericIndex:
    """Read and check ``labels.csv`` against ``sequences/`` (a folder, a zip or an Archive)."""
    if isinstance(root, Archive):
        return _read_index(root)
    with open_archive(root) as archive:
        return _read_index(archive)


def _read_index(archive: Archive) -> GenericIndex:
    source = str(archive.path)
    prefix = find_prefix(archive)
    labels_src = _where(source, prefix + LABELS_FILE)
    header, rows = _read_csv(archive, prefix + LABELS_FILE, labels_src, ("sample_id", "label"))
    if not rows:
        raise DataError(labels_src, "has no samples (only a header)")
    id_col, label_col = header.index("sample_id"), header.index("label")
    extra = [c for c in header if c not in ("sample_id", "label")]
    first_line: dict[str, int] = {}
    for line, cells in rows:
        sid = cells[id_col]
        if not _SAMPLE_ID.fullmatch(sid):
            raise DataError(labels_src, f"sample_id {sid!r} is empty or has characters other than "
                            "letters, digits and _ . + -", line=line)
        if sid in first_line:
            raise DataError(labels_src, f"duplicate sample_id {sid!r} (first on line "
                            f"{first_line[sid]})", line=line)
        first_line[sid] = line
        if not cells[label_col]:
            raise DataError(labels_src, f"sample {sid!r} has an empty label", line=line)

    raw_labels = [cells[label_col] for _, cells in rows]
    numeric = [bool(_INT.fullmatch(v)) for v in raw_labels]
    class_names: tuple[str, ...] | None
    if all(numeric):
        labels = [int(v) for v in raw_labels]
        for (line, _), lab in zip(rows, labels, strict=True):
            if lab < 0:
                raise DataError(labels_src, f"label {lab} is negative; integer labels are 0..K-1",
                                line=line)
        class_names, num_classes = None, max(labels) + 1
        unused = sorted(set(range(num_classes)) - set(labels))
        if unused:
            log.warning("%s: integer labels 0..%d but no sample of class(es) %s (1-based labels? "
                        "they are taken as is)", labels_src, num_classes - 1, unused[:10])
    elif any(numeric):
        i_num, i_name = numeric.index(True), numeric.index(False)
        raise DataError(labels_src, f"label {raw_labels[i_num]!r} is an integer but line "
                        f"{rows[i_name][0]} has the class name {raw_labels[i_name]!r}; use integer "
                        "labels 0..K-1 or class names throughout", line=rows[i_num][0])
    else:
        class_names = tuple(sorted(set(raw_labels)))
        index = {name: i for i, name in enumerate(class_names)}
        labels = [index[v] for v in raw_labels]
        num_classes = len(class_names)

    seq_prefix = f"{prefix}{SEQUENCES_DIR}/"
    arrays = {m[len(seq_prefix): -len(".npy")] for m in archive.members(".npy")
              if m.startswith(seq_prefix)}
    without_array = [(line, cells[id_col]) for line, cells in rows if cells[id_col] not in arrays]
    if without_array:
        line, sid = without_array[0]
        more = f" ({len(without_array) - 1} more samples have none)" if len(without_array) > 1 else ""
        raise DataError(labels_src, f"sample {sid!r} has no array {SEQUENCES_DIR}/{sid}.npy{more}",
                        line=line)
    orphans = sorted(arrays - set(first_line))
    if orphans:
        more = f" ({len(orphans) - 1} more arrays have none)" if len(orphans) > 1 else ""
        raise DataError(labels_src, f"{SEQUENCES_DIR}/{orphans[0]}.npy has no row in {LABELS_FILE}"
                        f"{more}; add a row per array or remove the array")

    order = sorted(range(len(rows)), key=lambda i: rows[i][1][id_col])
    return GenericIndex(
        source=source, prefix=prefix,
        sample_ids=tuple(rows[i][1][id_col] for i in order),
        labels=tuple(labels[i] for i in order),
        class_names=class_names, num_classes=num_classes,
        columns={c: tuple(rows[i][1][header.index(c)] for i in order) for c in extra},
        lines=tuple(rows[i][0] for i in order),
    )


# --------------------------------------------------------------------- the download stage

# data/raw/<dataset>/ of a generic dataset: the user's files as given, and the resolved layout.
DATASET_DIR = "dataset"
LAYOUT_FILE = "layout.yaml"


def copy_dataset(archive: Archive, dest: Path) -> None:
    """Copy every file of the dataset in ``archive`` (a folder, zip or 7z) into the folder ``dest``.

    The dataset root is where ``labels.csv`` is (a zip's single top-level folder is stripped);
    files outside it and macOS ``__MACOSX/`` entries are skipped. Member paths that would
    leave ``dest`` are a :class:`DataError`.
    """
    prefix = find_prefix(archive)
    dest = Path(dest)
    for member in archive.members():
        if not member.startswith(prefix) or member.startswith("__MACOSX/"):
            continue
        relative = Path(member[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts:
            raise DataError(archive.path, f"member {member!r} points outside the dataset folder")
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(member))


# --------------------------------------------------------------------- splits


def assign_splits(index: GenericIndex, rule: Mapping, archive: Archive | None = None,
                  key: str = "generic.split") -> dict[str, tuple[str, ...]]:
    """``{'train': ids, 'test': ids}`` (sorted) from a split rule (see :func:`split_rule`).

    Samples the rule leaves out (not in ``split.csv``, or in neither listed ``train`` nor
    ``test``) are in neither split. An empty split is an error naming the rule.
    """
    rule = split_rule(rule, key)
    if "file" in rule:
        if archive is None:
            with open_archive(index.source) as opened:
                split_of = _split_from_file(index, rule["file"], opened)
        else:
            split_of = _split_from_file(index, rule["file"], archive)
    else:
        split_of = _split_from_column(index, rule, key)
    out = {s: tuple(sid for sid in index.sample_ids if split_of.get(sid) == s) for s in SPLITS}
    left_out = len(index) - len(out["train"]) - len(out["test"])
    if left_out:
        log.info("%s: %d samples are in neither split", index.source, left_out)
    return out


def _split_from_column(index: GenericIndex, rule: dict, key: str) -> dict[str, str]:
    column = rule["column"]
    if column not in index.columns:
        raise ParamsError(f"{key}.column", f"{LABELS_FILE} has no column {column!r}; its extra "
                          f"columns: {', '.join(index.columns) or '(none)'}")
    cells = [_norm_value(c) for c in index.columns[column]]
    train = rule["train"]
    split_of: dict[str, str] = {}
    if isinstance(train, str):  # odd | even
        for sid, cell, line in zip(index.sample_ids, cells, index.lines, strict=True):
            if not isinstance(cell, int):
                raise DataError(index.labels_source, f"column {column!r} holds {cell!r}, not an "
                                f"integer (needed for train: {train})", line=line)
            split_of[sid] = "train" if (cell % 2 == 1) == (train == "odd") else "test"
    else:
        train_set, test_set = set(train), set(rule.get("test", ()))
        present = set(cells)
        for name, values in (("train", train_set), ("test", test_set)):
            absent = sorted(values - present, key=str)
            if absent:
                log.warning("%s.%s: value(s) %s do not occur in column %r", key, name, absent, column)
        for sid, cell in zip(index.sample_ids, cells, strict=True):
            if cell in train_set:
                split_of[sid] = "train"
            elif "test" not in rule or cell in test_set:
                split_of[sid] = "test"
    values = ", ".join(map(str, sorted(set(cells), key=lambda v: (isinstance(v, str), v))))
    for split in SPLITS:
        if split not in split_of.values():
            which = f"{key}.train" if split == "train" or "test" not in rule else f"{key}.test"
            raise ParamsError(which, f"the rule gives an empty {split} split; column {column!r} "
                              f"has the values: {values}")
    return split_of


def _split_from_file(index: GenericIndex, name: str, archive: Archive) -> dict[str, str]:
    member = index.prefix + name
    source = _where(index.source, member)
    if member not in archive.members():
        raise DataError(source, "split file not found in the dataset")
    header, rows = _read_csv(archive, member, source, ("sample_id", "split"))
    id_col, split_col = header.index("sample_id"), header.index("split")
    known = set(index.sample_ids)
    split_of: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line, cells in rows:
        sid, split = cells[id_col], cells[split_col].lower()
        if sid not in known:
            raise DataError(source, f"sample_id {sid!r} is not in {LABELS_FILE}", line=line)
        if sid in lines:
            raise DataError(source, f"duplicate sample_id {sid!r} (first on line {lines[sid]})", line=line)
        if split not in SPLITS:
            raise DataError(source, f"split {cells[split_col]!r}; allowed: train, test", line=line)
        split_of[sid], lines[sid] = split, line
    unlisted = len(known) - len(split_of)
    if unlisted:
        log.warning("%s: %d samples of %s are not listed; they are left out", source, unlisted,
                    LABELS_FILE)
    for split in SPLITS:
        if split not in split_of.values():
            raise DataError(source, f"lists no {split!r} sample; both splits must be non-empty")
    return split_of


# --------------------------------------------------------------------- sequences


def load_sequence(archive: Archive, sample_id: str, layout: SkeletonLayout, *,
                  prefix: str | None = None, zero_frames: str = "keep", min_frames: int = 1,
                  extra_persons: str = "fail") -> np.ndarray:
    """Read ``sequences/<sample_id>.npy`` -> (C, T, V, layout.persons) float32.

    ``prefix`` is :attr:`GenericIndex.prefix` (found from the archive, once, when None).
    See :func:`sequence_from_array` for the checks and the frame handling. For a ``.7z``
    dataset read many members with ``archive.iter_members`` + :func:`decode_npy` +
    :func:`sequence_from_array` instead (one decompression pass).
    """
    if prefix is None:
        prefix = _PREFIXES.get(archive)
        if prefix is None:
            prefix = _PREFIXES[archive] = find_prefix(archive)
    member = f"{prefix}{SEQUENCES_DIR}/{sample_id}.npy"
    source = _where(str(archive.path), member)
    array = decode_npy(archive.read(member), source)  # a missing member: DataError from read()
    return sequence_from_array(array, source, layout, zero_frames=zero_frames,
                               min_frames=min_frames, extra_persons=extra_persons)


def npy_frames(archive: Archive, sample_id: str, prefix: str = "") -> int | None:
    """The frame count T of ``sequences/<sample_id>.npy`` (the first axis of (T, V, C) or
    (T, M, V, C)), or None when the file is not a 3-D or 4-D array (:func:`load_sequence` then
    reports it). A folder's file is memory-mapped: only its header is read; an archive member
    is read whole."""
    member = f"{prefix}{SEQUENCES_DIR}/{sample_id}.npy"
    try:
        if isinstance(archive, DirectoryArchive):
            shape = np.load(archive.path / member, mmap_mode="r", allow_pickle=False).shape
        else:
            shape = np.load(io.BytesIO(archive.read(member)), allow_pickle=False).shape
    except (OSError, ValueError, EOFError, DataError):
        return None
    return int(shape[0]) if len(shape) in (3, 4) else None


def stored_frames(archive: Archive, sample_ids: Sequence[str], *, min_frames: int, max_frames: int,
                  prefix: str = "") -> int:
    """T_max of a generic dataset's processed file: ``min(max_frames, longest sequence)``, the
    longest read from the ``.npy`` headers (before ``zero_frames``; at least ``min_frames``,
    the length a short sequence is stretched to). Short sequences are then not stored padded
    to ``max_frames``."""
    longest = max((t for sid in sample_ids if (t := npy_frames(archive, sid, prefix)) is not None), default=0)
    return min(max_frames, max(longest, min_frames))


# find_prefix lists every member: remember it per open archive for load_sequence(prefix=None)
_PREFIXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def decode_npy(data: bytes, source: str) -> np.ndarray:
    """The array in the bytes of a ``.npy`` file (no pickles); DataError naming ``source``."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(source, f"is not a valid .npy array ({exc}); save it with numpy.save") from None


def sequence_from_array(array: np.ndarray, source: str, layout: SkeletonLayout, *,
                        zero_frames: str = "keep", min_frames: int = 1,
                        extra_persons: str = "fail") -> np.ndarray:
    """Check one sample against the layout and shape it (C, T, V, layout.persons) float32.

    - (T, V, C) is one person; (T, M, V, C) needs M <= layout.persons (zero-padded), or with
      ``extra_persons='energy'`` the layout.persons most active persons are kept;
    - NaN / inf, a wrong V or C, or no tracked frame at all: :class:`DataError` naming ``source``;
    - untracked frames (every person all zero) per ``zero_frames``: ``keep``; ``drop``; or
      ``interpolate`` linearly between the nearest tracked frames (frames before the first /
      after the last tracked one copy it). A person present in only one of the two frames
      interpolated between is copied from the nearer one;
    - sequences shorter than ``min_frames`` are resampled to ``min_frames`` by the same
      linear interpolation.
    """
    if zero_frames not in ZERO_FRAMES:
        raise ValueError(f"zero_frames={zero_frames!r}; allowed: {ZERO_FRAMES}")
    if extra_persons not in EXTRA_PERSONS:
        raise ValueError(f"extra_persons={extra_persons!r}; allowed: {EXTRA_PERSONS}")
    array = np.asarray(array)
    expected = (f"expected (T, V, C) or (T, M, V, C) with V={layout.num_joints} and "
                f"C={layout.channels} (layout {layout.name!r})")
    if array.dtype.kind not in "iuf":
        raise DataError(source, f"has dtype {array.dtype}; expected numbers")
    shape = array.shape
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim != 4:
        raise DataError(source, f"has shape {shape}; {expected}")
    frames, persons, joints, channels = array.shape
    if joints != layout.num_joints or channels != layout.channels:
        raise DataError(source, f"has shape {shape}: {joints} joints and {channels} channels; "
                        f"{expected}")
    if frames == 0 or persons == 0:
        raise DataError(source, f"has shape {shape}: no frames or no persons")
    x = array.astype(np.float64)
    bad = ~np.isfinite(x) | (np.abs(x) > _FLOAT32_MAX)
    if bad.any():
        t, m, v, _ = np.argwhere(bad)[0]
        raise DataError(source, f"has NaN or infinite values (first at frame {t}, person {m}, joint "
                        f"{v} {layout.joint_names[v]!r}); write untracked joints as 0")
    if persons > layout.persons:
        if extra_persons == "fail":
            raise DataError(source, f"has {persons} persons, but layout {layout.name!r} allows at "
                            f"most {layout.persons}; raise the layout's persons, or set "
                            "extra_persons: energy to keep the most active ones")
        x = select_bodies_by_energy(x.transpose(1, 0, 2, 3), keep=layout.persons)
        x = x.transpose(1, 3, 2, 0).astype(np.float64)  # (C, T, V, M) -> (T, M, V, C)

    tracked = np.any(x != 0, axis=(1, 2, 3))
    if not tracked.any():
        raise DataError(source, f"has no tracked frame (all {frames} frames are all zeros)")
    if zero_frames == "drop":
        x = x[tracked]
    elif zero_frames == "interpolate" and not tracked.all():
        valid = np.flatnonzero(tracked)
        positions = portable.interp(np.arange(len(x)), valid, np.arange(len(valid), dtype=np.float64))
        x = _blend(x[valid], positions)
    if len(x) < min_frames:
        x = _blend(x, np.linspace(0.0, len(x) - 1, min_frames))

    out = np.zeros((layout.channels, len(x), layout.num_joints, layout.persons), dtype=np.float32)
    out[..., : x.shape[1]] = x.transpose(3, 0, 2, 1)
    return out


def _blend(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(T, M, V, C) sampled at fractional frame ``positions`` -> (N, M, V, C), linearly.

    Per person: if the person is all zero in one of the two frames, the nearer frame is
    copied instead (no half-scaled body appearing from the origin).
    """
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (positions - lo)[:, None, None, None]
    a, b = x[lo], x[hi]
    linear = a * (1.0 - w) + b * w
    present = np.any(x != 0, axis=(2, 3))  # (T, M)
    both = (present[lo] & present[hi])[:, :, None, None]
    nearest = np.where(w > 0.5, b, a)
    return np.where(both, linear, nearest)


# --------------------------------------------------------------------- example data


def write_example_dataset(root: str | Path, layout: Any = "ntu25", n_per_class: int = 4,
                          classes: int | Sequence[str] = 3, persons: int = 1, seed: int = 0, *,
                          frames: tuple[int, int] = (24, 48), subjects: int = 4,
                          zero_frame_prob: float = 0.0, overwrite: bool = False) -> Path:
    """Write a small valid generic dataset (a folder, or a zip when ``root`` ends in .zip).

    Each class swings a different set of joints at its own frequency about its own axis, so
    a classifier separates the classes easily. The skeleton is plausible, so the preprocess
    layout check (:mod:`skelrep.data.plausibility`) passes: the joints from the root to the
    ``head`` point up (+y), every other bone points down, and a joint swings rigidly with
    everything below it about its parent (bone lengths stay fixed). ``classes`` is a count (integer labels) or
    class names (name labels). Columns: ``subject`` (1..subjects, every class has every
    subject when n_per_class >= subjects) and ``camera`` (1, 2); ``split.csv`` puts odd
    subjects in train. ``zero_frame_prob`` blanks that fraction of interior frames.
    """
    layout = load_layout(layout)
    if not 1 <= persons <= layout.persons:
        raise ValueError(f"persons={persons}; layout {layout.name!r} allows 1..{layout.persons}")
    names = [str(c) for c in classes] if not isinstance(classes, int) else None
    num_classes = len(names) if names is not None else int(classes)
    if num_classes < 1 or n_per_class < 1:
        raise ValueError("need at least one class and one sample per class")
    root = Path(root)
    as_zip = root.suffix.lower() == ".zip"
    if root.exists() and not overwrite and (as_zip or any(root.iterdir())):
        raise FileExistsError(f"{root} exists; pass overwrite=True to replace it")

    rng = portable.Generator(seed)
    rest = _rest_pose(layout, rng)
    files: dict[str, bytes] = {}
    label_rows, split_rows = [], []
    for c in range(num_classes):
        moving = np.arange(layout.num_joints) % num_classes == c
        axis, freq = c % layout.channels, 1.0 + c
        for i in range(n_per_class):
            subject, camera = 1 + i % subjects, 1 + (i // subjects) % 2
            sid = f"c{c:02d}_s{subject:02d}_{i:03d}"
            length = int(rng.integers(frames[0], frames[1] + 1))
            t = np.arange(length) / length
            seq = np.empty((length, persons, layout.num_joints, layout.channels))
            for m in range(persons):
                pose = rest * rng.uniform(0.9, 1.1)
                pose[..., 0] += 0.8 * m
                angle = 0.5 * portable.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))  # (T,)
                seq[:, m] = _swing(pose, layout, moving, axis, angle)
                seq[:, m] += 0.05 * rng.normal(size=layout.channels)  # where the person stands
            seq += 0.003 * rng.normal(size=seq.shape)
            if zero_frame_prob > 0 and length > 2:
                blank = rng.random(length) < zero_frame_prob
                blank[[0, -1]] = False
                seq[blank] = 0
            seq = seq[:, 0] if persons == 1 else seq
            buffer = io.BytesIO()
            np.save(buffer, seq.astype(np.float32))
            files[f"{SEQUENCES_DIR}/{sid}.npy"] = buffer.getvalue()
            label_rows.append((sid, names[c] if names is not None else c, subject, camera))
            split_rows.append((sid, "train" if subject % 2 else "test"))
    files[LABELS_FILE] = _csv_bytes(("sample_id", "label", "subject", "camera"), label_rows)
    files["split.csv"] = _csv_bytes(("sample_id", "split"), split_rows)

    if as_zip:
        root.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(root, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(files):
                z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name])
    else:
        if overwrite and (root / SEQUENCES_DIR).is_dir():
            for old in (root / SEQUENCES_DIR).glob("*.npy"):
                old.unlink()
        (root / SEQUENCES_DIR).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (root / name).write_bytes(data)
    return root


def _rest_pose(layout: SkeletonLayout, rng: portable.Generator) -> np.ndarray:
    """(V, C) positions: every joint 0.2 from its parent in a random direction, mostly upward
    on the path from the root to the head (``layout_roles``), mostly downward elsewhere."""
    up_chain = set()
    v = layout_roles(layout).head
    while v is not None and v not in up_chain:
        up_chain.add(v)
        v = layout.parents[v]
    pose = np.full((layout.num_joints, layout.channels), np.nan)
    for r in layout.roots:
        pose[r] = 0.0
        pose[r, 1] = 1.0
    while np.isnan(pose).any():
        for v, p in enumerate(layout.parents):
            if np.isnan(pose[v, 0]) and not np.isnan(pose[p, 0]):
                direction = 0.35 * rng.normal(size=layout.channels)
                direction[1] += 1.0 if v in up_chain else -1.0
                pose[v] = pose[p] + 0.2 * direction / portable.norm(direction)
    return pose


def _swing(pose: np.ndarray, layout: SkeletonLayout, moving: np.ndarray, axis: int,
           angle: np.ndarray) -> np.ndarray:
    """(T, V, C): ``pose`` with every moving non-root joint, and all the joints below it,
    rotated about its parent by ``angle[t]`` (about coordinate ``axis`` in 3-D; in the plane in
    2-D), parents before children, so every bone keeps its length."""
    children: dict[int, list[int]] = {}
    for v, p in enumerate(layout.parents):
        if p != v:
            children.setdefault(p, []).append(v)

    def below(v: int) -> list[int]:
        out, stack = [], [v]
        while stack:
            u = stack.pop()
            out.append(u)
            stack.extend(children.get(u, []))
        return sorted(out)

    depth = [0] * layout.num_joints
    for v in range(layout.num_joints):
        u = v
        while layout.parents[u] != u:
            u, depth[v] = layout.parents[u], depth[v] + 1
    cos, sin = portable.cos(angle), portable.sin(angle)
    if layout.channels == 2:
        rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (T, 2, 2)
    else:
        i, j = [a for a in range(3) if a != axis]
        rot = np.zeros((len(angle), 3, 3))
        rot[:, axis, axis] = 1.0
        rot[:, i, i], rot[:, i, j], rot[:, j, i], rot[:, j, j] = cos, -sin, sin, cos
    seq = np.repeat(pose[None], len(angle), axis=0)
    for v in sorted(np.flatnonzero(moving), key=lambda u: depth[u]):
        p = layout.parents[v]
        if p == v:
            continue
        sub = below(v)
        pivot = seq[:, p][:, None]  # (T, 1, C)
        seq[:, sub] = pivot + portable.apply(rot[:, None], seq[:, sub] - pivot)
    return seq


def _csv_bytes(header: Sequence[str], rows: list) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
