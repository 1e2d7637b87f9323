"""The synthetic data's zip writer: exactly the bytes ``zipfile`` wrote, readable, ordered."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from skelrep.data.synthetic import zipout
from skelrep.data.synthetic.zipout import DeterministicZip, compress_member, deterministic_zip


def _zipfile_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """The reference: what the writer did before, through ``zipfile.writestr`` on a seekable
    file (the archives in dvc.lock were written this way)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data, compresslevel=1)
    return buffer.getvalue()


def _writer_bytes(members: list[tuple[str, bytes]], precompressed: bool) -> bytes:
    buffer = io.BytesIO()
    out = DeterministicZip(buffer)
    for name, data in members:
        if precompressed:  # the NTU path: deflated elsewhere, appended here
            out.add_compressed(compress_member(name, data))
        else:
            out.add(name, data)
    out.finish()
    return buffer.getvalue()


def _members() -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    text = "".join(f"{rng.uniform(-2, 2):.7g} " for _ in range(40_000)).encode("ascii")
    noise = rng.randbytes(70_000)  # incompressible: deflate stores it in blocks
    return sorted([
        ("dir/a_empty.txt", b""),
        ("dir/b_small.txt", b"25\n0.1 0.2 0.3\n"),
        ("dir/c_large.skeleton", text),                 # > 64 KiB, compressible
        # in (limit / 1.05, limit] of the ZIP64 test: a ZIP64 local header only
        ("dir/c_border.skeleton", text[:39_000]),
        ("dir/d_noise.bin", noise),                     # > 64 KiB, deflate expands it slightly
        ("dir/e_crlf.skeleton", text[:5000].replace(b" ", b"\r\n")),
        ("dir/f_\u00e9t\u00e9.txt", b"utf-8 name"),     # zipfile sets the UTF-8 flag
    ])


@pytest.mark.parametrize("precompressed", [True, False])
def test_bytes_equal_zipfile_and_read_back(precompressed):
    members = _members()
    sizes = {name: len(data) for name, data in members}
    assert sizes["dir/a_empty.txt"] == 0 and sizes["dir/c_large.skeleton"] > 65536
    written = _writer_bytes(members, precompressed)
    assert written == _zipfile_bytes(members)
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.testzip() is None  # every member's CRC checks
        assert [(i.filename, archive.read(i)) for i in archive.infolist()] == members


def test_empty_archive_equals_zipfile():
    assert _writer_bytes([], precompressed=True) == _zipfile_bytes([])


def test_zip64_layout_equals_zipfile(monkeypatch):
    """ZIP64 fields (large members, offsets, member count) as zipfile writes them, with both
    modules' limits lowered so that small members cross them."""
    members = _members()
    for module in (zipfile, zipout):
        monkeypatch.setattr(module, "ZIP64_LIMIT" if module is zipfile else "_ZIP64_LIMIT", 40_000)
        monkeypatch.setattr(module, "ZIP_FILECOUNT_LIMIT" if module is zipfile else "_FILECOUNT_LIMIT", 4)
    written = _writer_bytes(members, precompressed=True)
    assert written == _zipfile_bytes(members)
    assert b"PK\x06\x06" in written  # the ZIP64 end record is there
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.testzip() is None
        assert [archive.read(i) for i in archive.infolist()] == [data for _, data in members]


@pytest.mark.parametrize("names", [["b", "a"], ["a", "a"]])
def test_out_of_order_names_refused(names):
    out = DeterministicZip(io.BytesIO())
    out.add(names[0], b"x")
    with pytest.raises(ValueError, match="out of order"):
        out.add_compressed(compress_member(names[1], b"y"))


def test_nul_in_name_refused():
    with pytest.raises(ValueError, match="NUL"):
        DeterministicZip(io.BytesIO()).add("a\x00b", b"")


def test_file_replaced_only_on_success(tmp_path: Path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"old")
    with pytest.raises(ValueError), deterministic_zip(target) as out:
        out.add("b", b"1")
        out.add("a", b"2")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.zip"]
    with deterministic_zip(target) as out:
        out.add("a", b"2")
    assert target.read_bytes() == _zipfile_bytes([("a", b"2")])
