"""Byte-reproducible zip archives, written member by member and atomically.

Compressing is most of the cost of writing an archive, so it is split off the writing:
:func:`compress_member` deflates one member (in a worker process, next to the code that
renders it) and :class:`DeterministicZip` only appends the finished bytes, in sorted order.

The writer emits exactly the bytes that ``zipfile.ZipFile.writestr`` wrote for these
archives before (seekable file, deflate level 1, fixed ``ZipInfo``): the archives are DVC
outputs whose md5s are recorded in dvc.lock, and ``tests/data/test_zipout.py`` compares the
two byte for byte. Layout, as CPython's ``zipfile`` writes it (3.11):

- per member a local header (version 20, no data descriptor: zipfile seeks back and fills
  in CRC and sizes, so the final header holds them), the name, and a ZIP64 extra field
  (version 45) when ``size * 1.05`` exceeds 2 GiB - 1, then the raw deflate stream;
- a central directory entry per member, with a ZIP64 extra field holding the sizes and/or
  the header offset that exceed 2 GiB - 1;
- ZIP64 end records when the member count, the directory's offset or size exceed the
  classic fields, then the classic end record (no archive comment).

Owning the layout also keeps the bytes independent of the Python version's ``zipfile``.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from skelrep.io import atomic_path

_COMPRESS_LEVEL = 1  # fast; the text is highly redundant anyway
_WBITS = -15         # raw deflate, no zlib header: what zip stores (zipfile's compressor)

# DOS date and time of 1980-01-01 00:00:00, the fixed timestamp of every member
_DOS_TIME = 0
_DOS_DATE = (1980 - 1980) << 9 | 1 << 5 | 1
_DEFLATED = 8
_VERSION = 20        # zipfile's DEFAULT_VERSION: "version needed" / "made by" 2.0
_ZIP64_VERSION = 45
_CREATE_SYSTEM = 3   # unix, whatever the host
_EXTERNAL_ATTR = 0o100644 << 16  # regular file, rw-r--r--
_UTF8_NAME = 0x800   # general purpose flag bit 11: the name is UTF-8
# zipfile's limits (module globals there too, so tests can lower both to exercise ZIP64)
_ZIP64_LIMIT = (1 << 31) - 1
_FILECOUNT_LIMIT = (1 << 16) - 1

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")


class CompressedMember(NamedTuple):
    """One archive member, deflated: what a worker sends back to the writing process."""

    name: str
    crc: int       # CRC-32 of the uncompressed bytes
    size: int      # uncompressed size
    data: bytes    # raw deflate stream


def compress_member(name: str, data: bytes) -> CompressedMember:
    """Deflate ``data`` exactly as zipfile does: one ``compress`` call and a ``flush`` on a
    ``compressobj(level, DEFLATED, -15)`` (default memLevel and strategy)."""
    compressor = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, _WBITS)
    return CompressedMember(name, zlib.crc32(data), len(data),
                            compressor.compress(data) + compressor.flush())


class _Entry(NamedTuple):
    name: bytes
    flags: int
    version: int
    crc: int
    compressed: int
    size: int
    offset: int


class DeterministicZip:
    """Zip writer with fixed timestamps, permissions and compression; members must be
    added in sorted order (checked) so that equal content gives equal bytes.

    Writes to ``stream`` (binary, positioned where the archive starts) as members come;
    :meth:`finish` writes the central directory. Offsets are counted, never read back, so
    the stream need not be seekable.
    """

    def __init__(self, stream: BinaryIO):
        self._out = stream
        self._pos = 0
        self._entries: list[_Entry] = []
        self._last: str | None = None

    def add(self, name: str, data: bytes) -> None:
        """Compress ``data`` here and append it (for the few small members of a writer)."""
        self.add_compressed(compress_member(name, data))

    def add_compressed(self, member: CompressedMember) -> None:
        """Append a member that :func:`compress_member` deflated (maybe in another process)."""
        name = member.name
        if self._last is not None and name <= self._last:
            raise ValueError(f"zip members out of order: {name!r} after {self._last!r}")
        if "\x00" in name:  # zipfile would silently cut the name there
            raise ValueError(f"zip member name with a NUL byte: {name!r}")
        self._last = name
        try:
            encoded, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            encoded, flags = name.encode("utf-8"), _UTF8_NAME
        compressed = len(member.data)
        # zipfile decides on the local ZIP64 field before compressing, from the size alone
        # (x 1.05: deflate may expand), and then keeps it
        zip64 = member.size * 1.05 > _ZIP64_LIMIT
        if not zip64 and compressed > _ZIP64_LIMIT:
            raise ValueError(f"{name!r}: compressed size needs ZIP64 but the size did not announce it")
        version = _ZIP64_VERSION if zip64 else _VERSION
        extra = struct.pack("<HHQQ", 1, 16, member.size, compressed) if zip64 else b""
        size_field, compressed_field = ((0xFFFFFFFF, 0xFFFFFFFF) if zip64
                                        else (member.size, compressed))
        header = _LOCAL.pack(b"PK\x03\x04", version, 0, flags, _DEFLATED, _DOS_TIME, _DOS_DATE,
                             member.crc, compressed_field, size_field, len(encoded), len(extra))
        self._entries.append(_Entry(encoded, flags, version, member.crc, compressed, member.size,
                                    self._pos))
        for part in (header, encoded, extra, member.data):
            self._out.write(part)
            self._pos += len(part)

    def finish(self) -> None:
        """Write the central directory and the end records."""
        start = self._pos
        for entry in self._entries:
            self._write(_central_entry(entry))
        count, size = len(self._entries), self._pos - start
        if count > _FILECOUNT_LIMIT or start > _ZIP64_LIMIT or size > _ZIP64_LIMIT:
            self._write(_END64.pack(b"PK\x06\x06", 44, _ZIP64_VERSION, _ZIP64_VERSION, 0, 0,
                                    count, count, size, start))
            self._write(_END64_LOCATOR.pack(b"PK\x06\x07", 0, start + size, 1))
            count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
        self._write(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        self._out.flush()

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)


def _central_entry(entry: _Entry) -> bytes:
    wide: list[int] = []  # the ZIP64 extra field's values, in the order zipfile writes them
    size, compressed, offset = entry.size, entry.compressed, entry.offset
    if size > _ZIP64_LIMIT or compressed > _ZIP64_LIMIT:
        wide += [size, compressed]
        size = compressed = 0xFFFFFFFF
    if offset > _ZIP64_LIMIT:
        wide.append(offset)
        offset = 0xFFFFFFFF
    extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
    version = _ZIP64_VERSION if wide else entry.version
    return _CENTRAL.pack(b"PK\x01\x02", version, _CREATE_SYSTEM, version, 0, entry.flags, _DEFLATED,
                         _DOS_TIME, _DOS_DATE, entry.crc, compressed, size, len(entry.name),
                         len(extra), 0, 0, 0, _EXTERNAL_ATTR, offset) + entry.name + extra


@contextlib.contextmanager
def deterministic_zip(path: Path) -> Iterator[DeterministicZip]:
    """Open ``path`` for writing through a temp file that replaces it only on success."""
    with atomic_path(path, suffix=".zip.tmp") as tmp, open(tmp, "wb") as stream:
        archive = DeterministicZip(stream)
        yield archive
        archive.finish()
