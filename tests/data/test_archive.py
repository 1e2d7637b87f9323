"""In-place archive reading: zip, 7z and extracted directories, and their failure modes."""

from __future__ import annotations

import pickle
import sys
import zipfile
from pathlib import Path

import pytest

from skelrep.data.archive import SEVEN_ZIP_MAGIC, open_archive
from skelrep.errors import DataError, SkelrepError

MEMBERS = {
    "nturgb+d_skeletons/S001C001P001R001A002.skeleton": b"2\n" + b"0.1 0.2 0.3\n" * 50,
    "nturgb+d_skeletons/S001C001P001R001A001.skeleton": b"1\n" + b"0.4 0.5 0.6\n" * 50,
    "nturgb+d_skeletons/readme.txt": b"not a skeleton\n",
}


def make_zip(path: Path, members: dict[str, bytes] = MEMBERS) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("nturgb+d_skeletons/", b"")  # a directory entry, which members() must skip
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_members_sorted_and_read(tmp_path):
    with open_archive(make_zip(tmp_path / "a.zip")) as archive:
        assert archive.members() == sorted(MEMBERS)
        assert archive.members(".skeleton") == sorted(n for n in MEMBERS if n.endswith(".skeleton"))
        for name, data in MEMBERS.items():
            assert archive.read(name) == data
        names = archive.members(".skeleton")
        assert list(archive.iter_members(names)) == [(n, MEMBERS[n]) for n in names]


def test_zip_is_recognised_by_content_not_name(tmp_path):
    with open_archive(make_zip(tmp_path / "download.bin")) as archive:
        assert archive.members() == sorted(MEMBERS)


def test_archive_pickles_as_reopen_by_path(tmp_path):
    with open_archive(make_zip(tmp_path / "a.zip")) as archive:
        clone = pickle.loads(pickle.dumps(archive))
    with clone:
        assert clone.path == tmp_path / "a.zip"
        assert clone.read(sorted(MEMBERS)[0]) == MEMBERS[sorted(MEMBERS)[0]]


def test_directory_archive(tmp_path):
    root = tmp_path / "extracted"
    for name, data in MEMBERS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "emptydir").mkdir()
    with open_archive(root) as archive:
        assert archive.members() == sorted(MEMBERS)
        assert dict(archive.iter_members(archive.members())) == MEMBERS
        with pytest.raises(DataError, match="no member 'missing.skeleton'"):
            archive.read("missing.skeleton")


def test_unknown_member_names_archive_and_member(tmp_path):
    path = make_zip(tmp_path / "a.zip")
    with open_archive(path) as archive, pytest.raises(DataError) as info:
        archive.read("nope.skeleton")
    assert info.value.path == str(path)
    assert "nope.skeleton" in str(info.value)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"this is not an archive at all", "not a valid zip"),
    ],
)
def test_empty_or_foreign_file_raises(tmp_path, content, reason):
    path = tmp_path / "nturgbd_skeletons_s001_to_s017.zip"
    path.write_bytes(content)
    with pytest.raises(DataError, match=reason) as info:
        open_archive(path)
    assert info.value.path == str(path)


def test_truncated_zip_raises(tmp_path):
    path = make_zip(tmp_path / "a.zip")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated") as info:
        open_archive(path)
    assert info.value.path == str(path)


def test_zip_without_files_raises(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("only_a_dir/", b"")
    with pytest.raises(DataError, match="no files") as info:
        open_archive(path)
    assert info.value.path == str(path)


def test_missing_archive_raises(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_archive(tmp_path / "absent.zip")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_corrupted_member_names_member(tmp_path, compression):
    name = "nturgb+d_skeletons/S001C001P001R001A001.skeleton"
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr(name, MEMBERS[name])
    raw = bytearray(path.read_bytes())
    # Member data follows the 30-byte local header and the file name; flip one data byte, which
    # fails the CRC check (stored) or the deflate stream / CRC (deflated).
    raw[30 + len(name.encode()) + 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with open_archive(path) as archive, pytest.raises(DataError, match="corrupt") as info:
        archive.read(name)
    assert info.value.path == str(path)
    assert name in str(info.value)


def test_seven_zip_without_py7zr_gives_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "Skeleton.7z"
    path.write_bytes(SEVEN_ZIP_MAGIC + b"\x00" * 26)
    # A None entry in sys.modules makes any import of py7zr fail, as if it were not installed.
    monkeypatch.setitem(sys.modules, "py7zr", None)
    with pytest.raises(SkelrepError, match="pip install py7zr") as info:
        open_archive(path)
    assert str(path) in str(info.value)


def test_file_named_7z_without_signature_is_corrupt(tmp_path):
    path = tmp_path / "Skeleton.7z"
    path.write_bytes(b"PK but not really")
    with pytest.raises(DataError, match="not a valid 7z"):
        open_archive(path)


class TestSevenZip:
    """Exercised only where py7zr (the `official` extra) is installed."""

    @pytest.fixture
    def seven_zip(self, tmp_path):
        py7zr = pytest.importorskip("py7zr")
        members = {f"PKU_Skeleton_Renew/{i:04d}-L.txt": f"{i} ".encode() * (1000 + i) for i in range(2, 12)}
        members["PKU_Skeleton_Renew/empty.txt"] = b""
        path = tmp_path / "Skeleton.7z"
        with py7zr.SevenZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(data, name)
        return path, members

    def test_members_read_and_stream(self, seven_zip):
        path, members = seven_zip
        with open_archive(path) as archive:
            assert archive.members() == sorted(members)
            assert archive.read("PKU_Skeleton_Renew/0005-L.txt") == members["PKU_Skeleton_Renew/0005-L.txt"]
            assert dict(archive.iter_members(archive.members())) == members
            subset = archive.members()[3:6]
            assert sorted(name for name, _ in archive.iter_members(subset)) == subset

    def test_abandoned_stream_stops_extraction(self, seven_zip):
        path, _ = seven_zip
        with open_archive(path) as archive:
            stream = archive.iter_members(archive.members())
            next(stream)
            stream.close()  # must not hang on the extraction thread

    def test_truncated_seven_zip_raises(self, seven_zip):
        path, _ = seven_zip
        path.write_bytes(path.read_bytes()[:40])
        with pytest.raises(DataError) as info:
            archive = open_archive(path)
            list(archive.iter_members(archive.members()))
        assert info.value.path == str(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2],
                         ids=["stored", "deflated", "bzip2"])
def test_zip_members_read_whole_or_through_zipfile(tmp_path, compression):
    """Stored and deflated members are read in one piece (ZipArchive._read_whole), others by
    zipfile; the bytes are the same, a non-ASCII name (UTF-8 flag) included."""
    members = {**MEMBERS, "nturgb+d_skeletons/é.txt": b"3\n" * 1000}
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with open_archive(path) as archive:
        for name, data in members.items():
            whole = archive._read_whole(name)
            assert whole == (data if compression != zipfile.ZIP_BZIP2 else None)
            assert archive.read(name) == data
