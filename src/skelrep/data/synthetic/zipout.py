"""Byte-reproducible zip archives, written member by member and atomically."""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from skelrep.io import atomic_path

_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_COMPRESS_LEVEL = 1  # fast; the text is highly redundant anyway


class DeterministicZip:
    """Zip writer with fixed timestamps, permissions and compression; members must be
    added in sorted order (checked) so that equal content gives equal bytes."""

    def __init__(self, archive: zipfile.ZipFile):
        self._zip = archive
        self._last: str | None = None

    def add(self, name: str, data: bytes) -> None:
        if self._last is not None and name <= self._last:
            raise ValueError(f"zip members out of order: {name!r} after {self._last!r}")
        self._last = name
        info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3  # unix, whatever the host
        info.external_attr = 0o100644 << 16
        self._zip.writestr(info, data, compresslevel=_COMPRESS_LEVEL)


@contextlib.contextmanager
def deterministic_zip(path: Path) -> Iterator[DeterministicZip]:
    """Open ``path`` for writing through a temp file that replaces it only on success."""
    with (atomic_path(path, suffix=".zip.tmp") as tmp,
          zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL) as archive):
        yield DeterministicZip(archive)
