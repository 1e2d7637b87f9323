"""Official download route: fetch (local, file://, loopback HTTP with resume), specs and manifest."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from skelrep.data import download
from skelrep.data.download import (
    DISTRIBUTION,
    ArchiveSpec,
    fetch,
    missing_archive_message,
    parse_archive_specs,
    read_manifest,
    write_manifest,
)
from skelrep.errors import DataError, ParamsError, SkelrepError

PAYLOAD = random.Random(0).randbytes(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NTU60_ZIP = "nturgbd_skeletons_s001_to_s017.zip"


class FileServer:
    """Loopback HTTP server for one file, with Range support and scriptable misbehaviour."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[dict[str, str]] = []
        self.ignore_range = False
        self.truncate_next = 0  # number of upcoming responses cut off half-way
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if self.path != f"/{NTU60_ZIP}":
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(server.payload)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate_next:
                    server.truncate_next -= 1
                    body = body[: len(body) // 2]
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{NTU60_ZIP}"
        # A short poll interval keeps shutdown (and so each test's teardown) fast.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def ranges(self) -> list[str | None]:
        return [headers.get("Range") for headers in self.requests]


@pytest.fixture
def server():
    srv = FileServer(PAYLOAD)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)


def part_of(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


# ---------------------------------------------------------------- fetch: local sources


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_fetch_local_copy_with_checksum(tmp_path, as_url):
    src = tmp_path / "downloads" / NTU60_ZIP
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "raw" / NTU60_ZIP
    source = src.as_uri() if as_url else str(src)
    assert fetch(source, dest, sha256=PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part_of(dest).exists()


def test_checksum_mismatch_leaves_no_dest_and_no_part(tmp_path):
    src = tmp_path / NTU60_ZIP
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "raw" / NTU60_ZIP
    with pytest.raises(DataError, match=f"sha256 mismatch: expected {'0' * 64}, got {PAYLOAD_SHA}") as info:
        fetch(str(src), dest, sha256="0" * 64, progress=False)
    assert info.value.path == str(dest)
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_archive_placed_in_raw_folder_is_only_verified(tmp_path):
    dest = tmp_path / NTU60_ZIP
    dest.write_bytes(PAYLOAD)
    assert fetch(str(dest), dest, sha256=PAYLOAD_SHA, progress=False) == dest
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch(str(dest), dest, sha256="f" * 64, progress=False)
    assert dest.read_bytes() == PAYLOAD  # a manually placed file is never deleted


@pytest.mark.parametrize(
    "name, site",
    [
        (NTU60_ZIP, "https://rose1.ntu.edu.sg/dataset/actionRecognition/"),
        ("Skeleton_v2.7z", "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html"),
    ],
)
def test_missing_local_file_explains_distribution(tmp_path, name, site):
    with pytest.raises(SkelrepError) as info:
        fetch(str(tmp_path / name), tmp_path / "raw" / name, progress=False)
    message = str(info.value)
    assert site in message
    assert "registration" in message
    assert str(tmp_path / name) in message


# ---------------------------------------------------------------- fetch: HTTP


def test_http_download(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges() == [None]
    assert not part_of(dest).exists()


def test_http_resumes_from_part_file(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    half = len(PAYLOAD) // 2
    part_of(dest).write_bytes(PAYLOAD[:half])
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert server.ranges() == [f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD
    assert not part_of(dest).exists()


def test_http_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.ignore_range = True
    dest = tmp_path / NTU60_ZIP
    part_of(dest).write_bytes(b"stale bytes that must be discarded")
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_http_complete_part_file_is_finished_without_body(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    part_of(dest).write_bytes(PAYLOAD)  # killed after the download, before the rename
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert server.ranges() == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD


def test_http_dropped_connection_is_retried_and_resumed(tmp_path, server):
    server.truncate_next = 1
    dest = tmp_path / NTU60_ZIP
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert server.ranges()[0] is None
    assert server.ranges()[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_http_checksum_mismatch_removes_part(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch(server.url, dest, sha256="a" * 64, progress=False, timeout=5)
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_http_404_explains_distribution(tmp_path, server):
    url = server.url.replace(NTU60_ZIP, "nturgbd_skeletons_s018_to_s032.zip")
    with pytest.raises(SkelrepError, match="HTTP 404") as info:
        fetch(url, tmp_path / "nturgbd_skeletons_s018_to_s032.zip", progress=False, timeout=5)
    assert "rose1.ntu.edu.sg" in str(info.value)
    assert "registration" in str(info.value)


def test_http_unreachable_gives_up_after_retries(tmp_path, server):
    url = server.url
    server.httpd.shutdown()
    server.httpd.server_close()  # nothing listens on the port any more: connection refused
    with pytest.raises(SkelrepError, match=f"download failed after {download.DOWNLOAD_ATTEMPTS} attempts"):
        fetch(url, tmp_path / NTU60_ZIP, progress=False, timeout=5)


def test_existing_dest_with_right_checksum_is_not_downloaded(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    dest.write_bytes(PAYLOAD)
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    fetch(server.url, dest, progress=False, timeout=5)  # no checksum: existing file is kept
    assert server.requests == []


def test_existing_dest_with_wrong_checksum_is_replaced(tmp_path, server):
    dest = tmp_path / NTU60_ZIP
    dest.write_bytes(b"an older, different file")
    fetch(server.url, dest, sha256=PAYLOAD_SHA, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD


# ---------------------------------------------------------------- distribution text


@pytest.mark.parametrize(
    "dataset, needles",
    [
        ("ntu60", ["rose1.ntu.edu.sg", "release agreement", NTU60_ZIP]),
        ("ntu120", ["rose1.ntu.edu.sg", NTU60_ZIP, "nturgbd_skeletons_s018_to_s032.zip"]),
        ("pku1", ["PKUMMD.html", "email", "Skeleton.7z", "Label_PKUMMD.7z", "Split/cross-subject.txt"]),
        ("pku2", ["PKUMMD.html", "email", "Skeleton_v2.7z", "Label_PKUMMD_v2.7z", "cross_subject_v2.txt"]),
    ],
)
def test_distribution_texts(dataset, needles):
    message = missing_archive_message(dataset, "/nowhere/x")
    for needle in needles:
        assert needle in DISTRIBUTION[dataset]
        assert needle in message
    assert "no redistribution" in message


# ---------------------------------------------------------------- params validation


def test_parse_archive_specs_defaults_name_and_normalises_sha():
    specs = parse_archive_specs(
        "pku1",
        [
            {"url": "https://example.org/files/Skeleton.7z", "role": "skeleton", "sha256": "AB" * 32},
            {"url": "/data/pku/Split/cross-subject.txt", "role": "split", "name": "cross-subject.txt"},
        ],
        "data.pku1.archives",
    )
    assert specs == [
        ArchiveSpec("Skeleton.7z", "skeleton", "https://example.org/files/Skeleton.7z", "ab" * 32),
        ArchiveSpec("cross-subject.txt", "split", "/data/pku/Split/cross-subject.txt", None),
    ]


GOOD = {"url": "/x/nturgbd_skeletons_s001_to_s017.zip", "role": "skeleton"}


@pytest.mark.parametrize(
    "entries, key, allowed",
    [
        ([{**GOOD, "md5": "x"}], "data.ntu60.archives[0].md5", "allowed: name, role, sha256, url"),
        ([GOOD, {"role": "skeleton"}], "data.ntu60.archives[1].url", "http"),
        ([{"url": "/x/a.zip"}], "data.ntu60.archives[0].role", "label, skeleton, split"),
        ([{**GOOD, "role": "video"}], "data.ntu60.archives[0].role", "label, skeleton, split"),
        ([{**GOOD, "sha256": "abc"}], "data.ntu60.archives[0].sha256", "64 hexadecimal digits"),
        ([{**GOOD, "name": "../escape.zip"}], "data.ntu60.archives[0].name", "plain file name"),
        ([GOOD, GOOD], "data.ntu60.archives[1].name", "duplicate"),
        (["just-a-string"], "data.ntu60.archives[0]", "mapping"),
        ({"url": "x"}, "data.ntu60.archives", "list"),
        ([{**GOOD, "role": "label"}], "data.ntu60.archives", "role 'skeleton'"),
    ],
)
def test_parse_archive_specs_errors_name_the_key(entries, key, allowed):
    with pytest.raises(ParamsError) as info:
        parse_archive_specs("ntu60", entries, "data.ntu60.archives")
    assert info.value.key == key
    assert allowed in str(info.value)


# ---------------------------------------------------------------- manifest


@pytest.fixture
def raw_dir(tmp_path):
    raw = tmp_path / "raw" / "pku1"
    raw.mkdir(parents=True)
    (raw / "Skeleton.7z").write_bytes(PAYLOAD)
    (raw / "cross-subject.txt").write_text("Training videos: \n0002-L, \n")
    return raw


SPECS = [
    ArchiveSpec("Skeleton.7z", "skeleton", "https://example.org/Skeleton.7z", PAYLOAD_SHA),
    ArchiveSpec("cross-subject.txt", "split", "/local/cross-subject.txt"),
]


def test_manifest_is_deterministic_and_relative(raw_dir):
    path = write_manifest(raw_dir, "pku1", "official", SPECS)
    first = path.read_bytes()
    write_manifest(raw_dir, "pku1", "official", list(reversed(SPECS)))
    assert path.read_bytes() == first
    assert str(raw_dir.parent) not in first.decode()
    manifest = read_manifest(raw_dir)
    assert manifest == {
        "dataset": "pku1",
        "source": "official",
        "archives": [
            {"name": "Skeleton.7z", "role": "skeleton", "size": len(PAYLOAD), "sha256": PAYLOAD_SHA},
            {
                "name": "cross-subject.txt",
                "role": "split",
                "size": (raw_dir / "cross-subject.txt").stat().st_size,
                "sha256": hashlib.sha256((raw_dir / "cross-subject.txt").read_bytes()).hexdigest(),
            },
        ],
    }


def test_write_manifest_rejects_wrong_or_missing_file(raw_dir):
    with pytest.raises(DataError, match="sha256 mismatch"):
        write_manifest(raw_dir, "pku1", "official", [ArchiveSpec("Skeleton.7z", "skeleton", None, "0" * 64)])
    with pytest.raises(DataError, match="missing") as info:
        write_manifest(raw_dir, "pku1", "official", [ArchiveSpec("Label_PKUMMD.7z", "label", None)])
    assert info.value.path == str(raw_dir / "Label_PKUMMD.7z")


def test_extracted_folder_gets_a_tree_hash(raw_dir):
    folder = raw_dir / "PKU_Skeleton_Renew"
    folder.mkdir()
    (folder / "0002-L.txt").write_bytes(b"1 2 3\n")
    specs = [ArchiveSpec("PKU_Skeleton_Renew", "skeleton", None)]
    write_manifest(raw_dir, "pku1", "manual", specs)
    entry = read_manifest(raw_dir)["archives"][0]
    assert entry["size"] == 6
    (folder / "0002-L.txt").write_bytes(b"1 2 4\n")  # same size, other content: another tree hash
    write_manifest(raw_dir, "pku1", "manual", specs)
    assert read_manifest(raw_dir)["archives"][0]["sha256"] != entry["sha256"]


def test_read_manifest_missing_or_corrupt(raw_dir):
    with pytest.raises(DataError, match="manifest missing"):
        read_manifest(raw_dir)
    (raw_dir / "manifest.json").write_text('{\n  "dataset": "pku1",\n  oops\n}\n')
    with pytest.raises(DataError, match="corrupt JSON") as info:
        read_manifest(raw_dir)
    assert info.value.line == 3
    bad_role = {"name": "a", "role": "video", "size": 1, "sha256": "0" * 64}
    bad_entry = {"dataset": "pku1", "source": "official", "archives": [bad_role]}
    (raw_dir / "manifest.json").write_text(json.dumps(bad_entry))
    with pytest.raises(DataError, match=r"archives\[0\]\.role"):
        read_manifest(raw_dir)
