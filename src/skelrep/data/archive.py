"""Read dataset archives in place: ``.zip``, ``.7z`` or an already extracted directory.

NTU ships ~114k small ``.skeleton`` files per zip; extracting them to disk doubles the storage
and costs minutes, so the preprocess stage reads members straight from the archive instead.

An :class:`Archive` pickles as "re-open this path", so worker processes each get their own
file handle (zip handles must not be shared across processes).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import queue
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from skelrep.errors import DataError, SkelrepError

SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"

# Decompressed members buffered between the 7z extraction thread and the consumer; bounds memory
# (PKU-MMD skeleton files are a few MB each) while keeping the decompressor busy.
_STREAM_QUEUE_SIZE = 16
_POLL_S = 0.1
# a zip member's local file header: signature, versions, flags, method, time, date, CRC, sizes,
# then the lengths of the name and of the extra field that follow it
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The member name as its local header spells it (UTF-8 when flagged, else CP437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


class Archive:
    """Read-only view of an archive's files. Member names are POSIX paths relative to the root."""

    def __init__(self, path: Path, names: list[str]):
        self.path = path
        self._names = names
        self._name_set = frozenset(names)

    def members(self, suffix: str | None = None) -> list[str]:
        """Sorted member names (files only), optionally only those ending with ``suffix``."""
        if suffix is None:
            return list(self._names)
        return [name for name in self._names if name.endswith(suffix)]

    def read(self, member: str) -> bytes:
        """Return the bytes of one member."""
        self._check_members([member])
        return self._read(member)

    def iter_members(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for every requested member, in the given order.

        Formats with a faster access pattern (7z) override this and yield in archive order.
        """
        names = list(names)
        self._check_members(names)
        for name in names:
            yield name, self._read(name)

    def close(self) -> None:
        """Release file handles (no-op for formats that keep none open)."""

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        # Re-open in the receiving process instead of shipping handles or the name list.
        return open_archive, (self.path,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {len(self._names)} members)"

    def _read(self, member: str) -> bytes:
        raise NotImplementedError

    def _check_members(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._name_set:
                raise DataError(self.path, f"archive has no member {name!r}")


class DirectoryArchive(Archive):
    """An extracted archive: every regular file below ``path``."""

    def _read(self, member: str) -> bytes:
        return (self.path / member).read_bytes()


class ZipArchive(Archive):
    def __init__(self, path: Path, handle: zipfile.ZipFile, names: list[str]):
        super().__init__(path, names)
        self._zip = handle

    def _read(self, member: str) -> bytes:
        data = self._read_whole(member)
        if data is not None:
            return data
        try:
            return self._zip.read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            # BadZipFile covers "Bad CRC-32"; zlib.error/EOFError a damaged deflate stream.
            raise DataError(self.path, f"member {member!r} is corrupt ({exc}); re-download the archive") from exc

    def _read_whole(self, member: str) -> bytes | None:
        """A plain stored or deflated member in two reads and one ``zlib.decompress`` (NTU's
        ~114k small members: zipfile's streaming reader costs a sixth of the decompression on
        top); its length and CRC-32 checked as zipfile checks them. None for anything else and
        for anything that does not check out: zipfile then reads it, or names the damage."""
        info = self._zip.getinfo(member)
        if info.flag_bits & 0x61 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return None  # encrypted, patched or strongly encrypted; another compression
        fd = self._zip.fp.fileno()
        header = os.pread(fd, _LOCAL_HEADER.size, info.header_offset)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
        start = info.header_offset + _LOCAL_HEADER.size
        raw = os.pread(fd, name_len + extra_len + info.compress_size, start)
        if len(raw) != name_len + extra_len + info.compress_size or raw[:name_len] != _raw_name(info):
            return None
        raw = memoryview(raw)[name_len + extra_len:]
        try:
            data = bytes(raw) if info.compress_type == zipfile.ZIP_STORED else zlib.decompress(raw, -15, info.file_size)
        except zlib.error:
            return None
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            return None
        return data

    def close(self) -> None:
        self._zip.close()


class SevenZipArchive(Archive):
    """A ``.7z`` archive read with py7zr. No handle is kept: each read opens its own."""

    def __init__(self, path: Path, names: list[str], py7zr: ModuleType):
        super().__init__(path, names)
        self._py7zr = py7zr

    def _read(self, member: str) -> bytes:
        # Decompresses the solid stream up to ``member``: use iter_members() for many members.
        return next(self.iter_members([member]))[1]

    def iter_members(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for every requested member, in archive order.

        Solid 7z archives decompress as one stream, so members are extracted in a single pass by
        a background thread and handed over through a bounded queue.
        """
        wanted = set(names)
        self._check_members(wanted)
        if not wanted:
            return
        results: queue.Queue[Any] = queue.Queue(maxsize=_STREAM_QUEUE_SIZE)
        stop = threading.Event()
        done = object()

        def hand_over(item: object) -> None:
            while not stop.is_set():
                try:
                    results.put(item, timeout=_POLL_S)
                    return
                except queue.Full:
                    continue
            raise _Cancelled

        def extract() -> None:
            try:
                factory = _queue_writer_factory(self._py7zr, hand_over, stop)
                with self._py7zr.SevenZipFile(self.path, "r") as handle:
                    handle.extract(targets=sorted(wanted), factory=factory)
                hand_over(done)
            except _Cancelled:
                pass
            except Exception as exc:  # re-raised in the consuming thread
                with contextlib.suppress(_Cancelled):
                    hand_over(exc)

        worker = threading.Thread(target=extract, name=f"7z:{self.path.name}", daemon=True)
        worker.start()
        try:
            while wanted:
                item = results.get()
                if item is done:
                    break
                if isinstance(item, Exception):
                    raise DataError(self.path, f"cannot decompress ({item}); re-download the archive") from item
                name, data = item
                wanted.discard(name)
                yield name, data
            if wanted:
                raise DataError(self.path, f"{len(wanted)} member(s) were not extracted, e.g. {min(wanted)!r}")
        finally:
            stop.set()
            worker.join()


class _Cancelled(Exception):
    """Raised inside the 7z extraction thread when the consumer stopped iterating."""


def _queue_writer_factory(py7zr: ModuleType, hand_over: Any, stop: threading.Event) -> Any:
    """A py7zr ``WriterFactory`` whose writers pass each finished member to ``hand_over``.

    py7zr calls ``Py7zIO.close()`` only after a member decompressed *and* passed its CRC check,
    so a member is never handed over before it is known to be intact.
    """
    class QueueWriter(py7zr.io.Py7zIO):
        def __init__(self, name: str):
            self.name = name
            self._buffer = io.BytesIO()

        def write(self, data: bytes | bytearray) -> int:
            if stop.is_set():
                raise _Cancelled
            return self._buffer.write(data)

        def read(self, size: int | None = None) -> bytes:
            return self._buffer.read(size)

        def seek(self, offset: int, whence: int = 0) -> int:
            return self._buffer.seek(offset, whence)

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self._buffer.getbuffer().nbytes

        def close(self) -> None:
            hand_over((self.name, self._buffer.getvalue()))
            self._buffer = io.BytesIO()

    class QueueWriterFactory(py7zr.io.WriterFactory):
        def create(self, filename: str) -> QueueWriter:
            return QueueWriter(filename)

    return QueueWriterFactory()


def _import_py7zr(path: Path) -> ModuleType:
    try:
        py7zr = importlib.import_module("py7zr")
    except ImportError as exc:
        raise SkelrepError(
            f"{path}: reading .7z archives (PKU-MMD) needs py7zr; install it with "
            "`pip install py7zr` (or `pip install skelrep[official]`), or extract the archive "
            "with p7zip and point the data source at the extracted folder"
        ) from exc
    # The per-member completion hook used for streaming appeared in py7zr 1.1.
    if "close" not in vars(py7zr.io.Py7zIO):
        raise SkelrepError(f"{path}: py7zr {py7zr.__version__} is too old; run `pip install -U py7zr`")
    return py7zr


def _open_directory(path: Path) -> DirectoryArchive:
    names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    return DirectoryArchive(path, names)


def _open_zip(path: Path) -> ZipArchive:
    try:
        handle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(
            path, f"not a valid zip or 7z archive, or truncated ({exc}); re-download the archive"
        ) from exc
    names = sorted(info.filename for info in handle.infolist() if not info.is_dir())
    return ZipArchive(path, handle, names)


def _open_seven_zip(path: Path) -> SevenZipArchive:
    py7zr = _import_py7zr(path)
    try:
        with py7zr.SevenZipFile(path, "r") as handle:
            names = sorted(info.filename for info in handle.list() if not info.is_directory)
    except (py7zr.exceptions.ArchiveError, EOFError, ValueError) as exc:
        raise DataError(path, f"corrupt or truncated 7z archive ({exc}); re-download the archive") from exc
    return SevenZipArchive(path, names, py7zr)


def open_archive(path: str | os.PathLike) -> Archive:
    """Open a ``.zip``, a ``.7z`` or an extracted directory for in-place reading.

    The format is recognised from the file's magic bytes, so a misnamed file still opens.
    Raises :class:`DataError` for a missing, empty, corrupt or member-less archive.
    """
    path = Path(path)
    if path.is_dir():
        archive: Archive = _open_directory(path)
    elif not path.is_file():
        raise DataError(path, "archive not found")
    else:
        with open(path, "rb") as f:
            magic = f.read(len(SEVEN_ZIP_MAGIC))
        if not magic:
            raise DataError(path, "archive is an empty file (interrupted download?); re-download it")
        if magic == SEVEN_ZIP_MAGIC:
            archive = _open_seven_zip(path)
        elif path.suffix.lower() == ".7z":
            raise DataError(path, "not a valid 7z archive (bad signature); re-download it")
        else:
            archive = _open_zip(path)
    if not archive.members():
        archive.close()
        raise DataError(path, "archive contains no files")
    return archive
