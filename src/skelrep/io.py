"""File output helpers: every stage output is written atomically (temp file + rename).

A killed stage therefore never leaves a half-written file under its final name, which DVC
would otherwise cache as if it were complete.

A temp file is named after its output, ``.<name>.<8 random hex digits><suffix>`` next to it
(e.g. ``.ntu60-xsub.h5.1f0c9a2e.h5``). ``kill -9`` runs no cleanup, so the next write of the
same output first removes such leftovers (:func:`remove_stale_temps`): only siblings of
exactly that pattern, i.e. temp files of this output, never those of another output written
concurrently into the same folder. (Two concurrent writers of one output do not occur: DVC
runs a stage once at a time and locks its outputs.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_DEFAULT_SUFFIX = ".tmp"


def _temp_name(name: str, suffix: str) -> str:
    return f".{name}.{secrets.token_hex(4)}{suffix}"


def temp_pattern(name: str, suffix: str = _DEFAULT_SUFFIX) -> re.Pattern:
    """The names of temp files of output ``name``: ``.<name>.<8 random chars><suffix>``.

    The random part is 8 lowercase hex digits; ``[a-z0-9_]`` also matches the names that
    ``tempfile.mkstemp`` gave temp files before, so their leftovers are removed as well.
    """
    return re.compile(re.escape(f".{name}.") + "[a-z0-9_]{8}" + re.escape(suffix))


def remove_stale_temps(path: str | os.PathLike, suffix: str = _DEFAULT_SUFFIX) -> list[Path]:
    """Remove the temp files (or folders) a killed writer of ``path`` left next to it.

    Only entries of ``path``'s folder whose name fully matches :func:`temp_pattern` are
    removed; everything else, other outputs' temp files included, is left alone. Returns the
    removed paths. Call it only where no other process writes ``path`` at the same time.
    """
    path = Path(path)
    pattern = temp_pattern(path.name, suffix)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        log.info("removed %s, left by an interrupted write of %s", entry.path, path)
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The temp file lives in the same directory (same file system) so the final rename is
    atomic. On any exception the temp file is removed and ``path`` is left untouched; the
    leftovers of a writer that was killed (no exception, no cleanup) are removed first.
    ``suffix`` ends the temp file's name (some writers pick the format from it).
    """
    path = Path(path)
    suffix = suffix or _DEFAULT_SUFFIX
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path, suffix)
    while True:
        tmp_path = path.parent / _temp_name(path.name, suffix)
        try:
            # O_EXCL: a new file of our own; mode 0o666 less the umask, like any output
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indent) written atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: list[dict]) -> None:
    """JSON lines (one sorted-key object per line): the stats / history logs of record."""
    write_text_atomic(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def write_npz_atomic(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez`` written atomically; it stores no timestamps, so equal arrays give equal bytes."""
    import numpy as np

    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_csv_atomic(path: str | os.PathLike, rows: list[dict], columns: list[str] | None = None) -> None:
    """A CSV (e.g. a DVC plot) from dict rows; columns default to the union of keys in order."""
    import csv
    import io

    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())
