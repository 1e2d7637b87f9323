"""The "official" route of the download stage: fetch registered archives, record and verify them.

NTU RGB+D and PKU-MMD are distributed after registration only and may not be redistributed, so
``source`` is whatever the user was given access to: a local path, a ``file://`` URL or an
``http(s)://`` URL. Each archive lands in ``data/raw/<dataset>/`` and is recorded in
``manifest.json`` (name, role, size, sha256); the preprocess stage finds the archives by their role
there and records the archives' sha256 in the processed file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from skelrep.errors import DataError, ParamsError, SkelrepError
from skelrep.io import sha256_file, write_json_atomic

MANIFEST_NAME = "manifest.json"
ROLES = ("label", "skeleton", "split")
MANIFEST_ROLES = (*ROLES, "layout")  # a generic dataset also records its skeleton layout
ARCHIVE_KEYS = ("name", "role", "sha256", "url")

CHUNK_BYTES = 1 << 20
DOWNLOAD_ATTEMPTS = 4
RETRY_DELAY_S = 2.0  # doubled after each failed attempt

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes \*/(\d+)")

_NTU_CHANNEL = (
    "NTU RGB+D is distributed by the ROSE Lab at https://rose1.ntu.edu.sg/dataset/actionRecognition/ "
    "after registration: create an account, submit the request form and accept the ROSE Lab release "
    "agreement (non-commercial research only, no redistribution). The official GitHub README also "
    "lists skeleton-only Google Drive file ids."
)
_PKU_CHANNEL = (
    "PKU-MMD is distributed from the project page https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html "
    "(mirror: struct002.github.io/PKUMMD) via Google Drive or BaiduYun; access requires registration by "
    "an email request for permission to the listed contact (research use, no redistribution). "
    ".7z archives need `pip install py7zr` (or p7zip)."
)

# Official archive names as they must appear in data/raw/<dataset>/.
OFFICIAL_ARCHIVES: dict[str, tuple[str, ...]] = {
    "ntu60": ("nturgbd_skeletons_s001_to_s017.zip",),
    "ntu120": ("nturgbd_skeletons_s001_to_s017.zip", "nturgbd_skeletons_s018_to_s032.zip"),
    "pku1": ("Skeleton.7z", "Label_PKUMMD.7z", "cross-subject.txt"),
    "pku2": ("Skeleton_v2.7z", "Label_PKUMMD_v2.7z", "cross_subject_v2.txt"),
}

DISTRIBUTION: dict[str, str] = {
    "ntu60": f"{_NTU_CHANNEL} NTU-60 needs nturgbd_skeletons_s001_to_s017.zip.",
    "ntu120": (
        f"{_NTU_CHANNEL} NTU-120 needs both nturgbd_skeletons_s001_to_s017.zip and "
        "nturgbd_skeletons_s018_to_s032.zip."
    ),
    "pku1": (
        f"{_PKU_CHANNEL} Phase I needs Skeleton.7z, Label_PKUMMD.7z and Split/cross-subject.txt."
    ),
    "pku2": (
        f"{_PKU_CHANNEL} Phase II needs Skeleton_v2.7z, Label_PKUMMD_v2.7z and cross_subject_v2.txt."
    ),
}


@dataclass(frozen=True)
class ArchiveSpec:
    """One file of a dataset's raw folder and where to get it."""

    name: str  # file name inside data/raw/<dataset>/
    role: str  # 'skeleton' | 'label' | 'split'
    source: str | None  # local path or URL; None for files generated in place (synthetic)
    sha256: str | None = None


def missing_archive_message(dataset: str | None, source: str) -> str:
    """Explain that ``source`` is unavailable and how to obtain the dataset officially."""
    if dataset in DISTRIBUTION:
        where = DISTRIBUTION[dataset]
    else:
        where = " ".join(DISTRIBUTION[name] for name in ("ntu120", "pku2"))
    return (
        f"dataset archive not found at {source}. It cannot be downloaded anonymously. {where} "
        "Once you have access, place the archive locally (or point data.<dataset>.archives[].url at "
        "your copy) and rerun; or use the built-in synthetic data source."
    )


def _guess_dataset(*names: str) -> str | None:
    """The smallest dataset whose official archive list contains one of ``names``."""
    for dataset, archives in OFFICIAL_ARCHIVES.items():
        if any(name in archives for name in names):
            return dataset
    return None


def fetch(
    source: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60,
    dataset: str | None = None,
) -> Path:
    """Copy or download ``source`` to ``dest`` and return ``dest``.

    ``source`` is a local path, a ``file://`` URL or an ``http(s)://`` URL. Data goes through
    ``dest`` + ``.part`` and is renamed only once complete and (if ``sha256`` is given) verified.
    An HTTP download resumes from an existing ``.part``. A ``dest`` that already exists and matches
    ``sha256`` (or any existing ``dest`` when no checksum is given) is kept as is. ``dataset`` only
    sharpens the "where to get it" message; it is guessed from the file name when omitted.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if dataset is None:
        dataset = _guess_dataset(dest.name, Path(urllib.parse.urlsplit(source).path).name)
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    is_http = scheme in ("http", "https")
    local_source = None if is_http else _local_path(source, scheme)

    if local_source is not None and local_source.exists() and dest.exists() and dest.samefile(local_source):
        # The archive was placed directly in the raw folder: nothing to copy, only verify.
        _verify_sha256(dest, sha256, source)
        return dest
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    if is_http:
        _download_http(source, part, dataset, progress, timeout)
    else:
        assert local_source is not None
        _copy_local(local_source, source, part, dataset, progress)
    try:
        _verify_sha256(part, sha256, source, report_as=dest)
    except DataError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _local_path(source: str, scheme: str) -> Path:
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(source).path))
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive letter
        raise SkelrepError(f"unsupported archive source {source!r}: use a local path, file:// or http(s)://")
    return Path(source).expanduser()


def _verify_sha256(path: Path, expected: str | None, source: str, report_as: Path | None = None) -> None:
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            report_as or path,
            f"sha256 mismatch: expected {expected}, got {actual} (from {source}); the file is corrupt "
            "or a different release than params.yaml records",
        )


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool) -> tqdm:
    return tqdm(
        total=total, initial=initial, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
        disable=not enabled,
    )


def _copy_stream(src: BinaryIO, dst: BinaryIO, bar: tqdm) -> int:
    copied = 0
    while block := src.read(CHUNK_BYTES):
        dst.write(block)
        copied += len(block)
        bar.update(len(block))
    return copied


def _copy_local(path: Path, source: str, part: Path, dataset: str | None, progress: bool) -> None:
    if not path.exists():
        raise SkelrepError(missing_archive_message(dataset, source))
    if not path.is_file():
        raise SkelrepError(f"{source}: expected an archive file, found a directory or special file")
    with open(path, "rb") as src, open(part, "wb") as dst, _progress_bar(
        path.name, path.stat().st_size, 0, progress
    ) as bar:
        _copy_stream(src, dst, bar)


def _download_http(url: str, part: Path, dataset: str | None, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming from its current size and retrying transient errors."""
    delay = RETRY_DELAY_S
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            _download_http_once(url, part, dataset, progress, timeout)
            return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == DOWNLOAD_ATTEMPTS:
                raise _http_error(url, exc, dataset) from exc
            failure: Exception = exc
        except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as exc:
            failure = exc
        if attempt == DOWNLOAD_ATTEMPTS:
            break
        time.sleep(delay)
        delay *= 2
    kept = f"; {part.stat().st_size} bytes are kept in {part} and the next run resumes" if part.exists() else ""
    raise SkelrepError(f"{url}: download failed after {DOWNLOAD_ATTEMPTS} attempts ({failure}){kept}")


def _http_error(url: str, exc: urllib.error.HTTPError, dataset: str | None) -> SkelrepError:
    if exc.code in (401, 403, 404, 410):
        return SkelrepError(f"HTTP {exc.code}: " + missing_archive_message(dataset, url))
    return SkelrepError(f"{url}: HTTP {exc.code} {exc.reason}")


def _download_http_once(url: str, part: Path, dataset: str | None, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = _UNSATISFIED_RANGE_RE.fullmatch(exc.headers.get("Content-Range", ""))
            if total and int(total.group(1)) == offset:
                return  # the .part is already complete (killed before the rename)
            part.unlink()  # larger than the remote file: stale, start over
            return _download_http_once(url, part, dataset, progress, timeout)
        raise
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                raise http.client.HTTPException(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
            mode = "ab"
        else:  # 200: the server ignored the Range request, so restart from byte 0
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        total = offset + expected if expected is not None else None
        with open(part, mode) as dst, _progress_bar(part.name, total, offset, progress) as bar:
            received = _copy_stream(response, dst, bar)
    if expected is not None and received < expected:
        # Connection closed early; the retry loop resumes from what we have.
        raise ConnectionError(f"connection closed after {received} of {expected} bytes")


def parse_archive_specs(dataset: str, entries: Any, key_prefix: str) -> list[ArchiveSpec]:
    """Validate ``data.<dataset>.archives`` entries from params.yaml.

    Each entry is a mapping with ``url`` (local path, file:// or http(s)://) and ``role``
    (skeleton, label, split), plus optional ``name`` (defaults to the URL's file name) and
    ``sha256`` (64 hex digits). Errors name the offending key, e.g. ``data.ntu60.archives[0].sha256``.
    """
    if dataset not in DISTRIBUTION:
        raise ParamsError(key_prefix, f"unknown dataset {dataset!r}; allowed: {', '.join(DISTRIBUTION)}")
    if not isinstance(entries, list) or not entries:
        raise ParamsError(key_prefix, "must be a non-empty list of {url, role, name, sha256} mappings")
    specs: list[ArchiveSpec] = []
    for index, entry in enumerate(entries):
        key = f"{key_prefix}[{index}]"
        if not isinstance(entry, dict):
            raise ParamsError(key, f"must be a mapping with keys {', '.join(ARCHIVE_KEYS)}")
        unknown = sorted(set(entry) - set(ARCHIVE_KEYS))
        if unknown:
            raise ParamsError(f"{key}.{unknown[0]}", f"unknown key; allowed: {', '.join(ARCHIVE_KEYS)}")
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ParamsError(f"{key}.url", "required: a local path, a file:// URL or an http(s):// URL")
        role = entry.get("role")
        if role not in ROLES:
            raise ParamsError(f"{key}.role", f"required; one of {', '.join(ROLES)} (got {role!r})")
        sha256 = entry.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256_RE.fullmatch(sha256.lower())):
            raise ParamsError(f"{key}.sha256", f"must be 64 hexadecimal digits or absent (got {sha256!r})")
        name = entry.get("name", Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name)
        if not isinstance(name, str) or not name or name in (".", "..", MANIFEST_NAME) or "/" in name or "\\" in name:
            raise ParamsError(f"{key}.name", f"must be a plain file name other than {MANIFEST_NAME} (got {name!r})")
        if any(spec.name == name for spec in specs):
            raise ParamsError(f"{key}.name", f"duplicate archive name {name!r}")
        specs.append(ArchiveSpec(name=name, role=role, source=url, sha256=sha256.lower() if sha256 else None))
    if not any(spec.role == "skeleton" for spec in specs):
        raise ParamsError(key_prefix, "needs at least one archive with role 'skeleton'")
    return specs


def _tree_digest(root: Path) -> tuple[int, str]:
    """Total size and a sha256 over (relative path, file sha256) pairs of an extracted folder."""
    digest_lines = []
    total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        total += path.stat().st_size
        digest_lines.append(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n")
    return total, hashlib.sha256("".join(digest_lines).encode("utf-8")).hexdigest()


def _size_and_sha256(path: Path) -> tuple[int, str]:
    if path.is_dir():
        return _tree_digest(path)
    return path.stat().st_size, sha256_file(path)


def write_manifest(raw_dir: Path, dataset: str, source_kind: str, entries: list[ArchiveSpec]) -> Path:
    """Record name, role, size and sha256 of each archive in ``raw_dir/manifest.json``.

    Sizes and hashes come from the files on disk (an extracted folder gets a tree hash). The
    output holds no timestamps or absolute paths, so identical data gives identical bytes.
    """
    raw_dir = Path(raw_dir)
    archives = []
    for spec in sorted(entries, key=lambda spec: spec.name):
        path = raw_dir / spec.name
        if not path.exists():
            raise DataError(path, f"archive listed for {dataset} is missing from {raw_dir}")
        size, digest = _size_and_sha256(path)
        if spec.sha256 is not None and digest != spec.sha256:
            raise DataError(path, f"sha256 mismatch: expected {spec.sha256}, got {digest}")
        archives.append({"name": spec.name, "role": spec.role, "size": size, "sha256": digest})
    manifest_path = raw_dir / MANIFEST_NAME
    write_json_atomic(manifest_path, {"dataset": dataset, "source": source_kind, "archives": archives})
    return manifest_path


def read_manifest(raw_dir: Path) -> dict[str, Any]:
    """Load and validate ``raw_dir/manifest.json``."""
    path = Path(raw_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(path, "manifest missing; run the download stage first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"corrupt JSON: {exc.msg}", line=exc.lineno) from exc
    if not isinstance(manifest, dict) or set(manifest) != {"dataset", "source", "archives"}:
        raise DataError(path, "expected an object with exactly the keys archives, dataset, source")
    if not isinstance(manifest["dataset"], str) or not isinstance(manifest["source"], str):
        raise DataError(path, "'dataset' and 'source' must be strings")
    if not isinstance(manifest["archives"], list):
        raise DataError(path, "'archives' must be a list")
    for index, entry in enumerate(manifest["archives"]):
        where = f"archives[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "role", "size", "sha256"}:
            raise DataError(path, f"{where}: expected exactly the keys name, role, sha256, size")
        if not isinstance(entry["name"], str) or not entry["name"] or "/" in entry["name"]:
            raise DataError(path, f"{where}.name: must be a plain file name")
        if entry["role"] not in MANIFEST_ROLES:
            raise DataError(path, f"{where}.role: must be one of {', '.join(MANIFEST_ROLES)}")
        if not isinstance(entry["size"], int) or isinstance(entry["size"], bool) or entry["size"] < 0:
            raise DataError(path, f"{where}.size: must be a non-negative integer")
        if not isinstance(entry["sha256"], str) or not _SHA256_RE.fullmatch(entry["sha256"]):
            raise DataError(path, f"{where}.sha256: must be 64 lowercase hexadecimal digits")
    return manifest
