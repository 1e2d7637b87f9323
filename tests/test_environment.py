"""The locked environment: requirements.lock matches pyproject.toml and the running interpreter.

`make` installs requirements.lock (every package, direct and transitive, at an exact version with its
sha256 hashes) and `make lock` regenerates it from pyproject.toml with pip-tools. These tests fail
when the two drift apart (a dependency added, removed or re-ranged without `make lock`) and when the
running environment no longer matches the lock (a stale venv: run `make env`).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, the version the lock is compiled for

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;.*?)?\s*\\?$")
HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}\s*\\?$")
SELF = "skelrep (pyproject.toml)"


def _pyproject_requirements() -> list[Requirement]:
    """The runtime dependencies plus those of the extras the Makefile locks (LOCK_EXTRAS)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    makefile = (ROOT / "Makefile").read_text()
    extras = re.search(r"^LOCK_EXTRAS\s*:?=\s*(.*)$", makefile, re.M).group(1).split()
    assert extras, "Makefile: LOCK_EXTRAS is empty"
    reqs = list(project["dependencies"])
    for extra in extras:
        assert extra in project["optional-dependencies"], f"LOCK_EXTRAS names unknown extra {extra!r}"
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


def _parse_lock() -> dict[str, dict]:
    """name -> {'version', 'hashes', 'via'} from pip-compile's output format."""
    entries: dict[str, dict] = {}
    current = None
    in_via = False
    for lineno, line in enumerate(LOCK.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):  # header, section notes
            in_via = False
            continue
        if m := PIN.match(line):
            current = {"version": m.group(2), "hashes": 0, "via": [], "line": lineno}
            entries[canonicalize_name(m.group(1))] = current
            in_via = False
        elif HASH.match(line):
            assert current is not None, f"requirements.lock:{lineno}: hash without a package"
            current["hashes"] += 1
        elif line.lstrip().startswith("#"):
            text = line.strip().lstrip("#").strip()
            if text.startswith("via"):
                in_via = True
                text = text[3:].strip()
            if in_via and text:
                current["via"].append(text)
        else:
            pytest.fail(f"requirements.lock:{lineno}: not an exact `name==version` pin: {line!r}")
    return entries


@pytest.fixture(scope="module")
def lock() -> dict[str, dict]:
    assert LOCK.is_file(), "requirements.lock is missing: run `make lock`"
    return _parse_lock()


def test_lock_header_says_how_it_was_generated():
    head = LOCK.read_text()[:600]
    assert "pip-compile" in head and "make lock" in head and "--generate-hashes" in head


def test_every_locked_package_is_pinned_with_hashes(lock):
    assert len(lock) > 50, "the lock should hold the transitive closure, not just the direct deps"
    unhashed = sorted(name for name, e in lock.items() if e["hashes"] == 0)
    assert not unhashed, f"locked without --hash=sha256: {unhashed}"
    for e in lock.values():
        Version(e["version"])  # a valid, exact version


def test_lock_covers_pyproject(lock):
    """Each dependency of pyproject (main + locked extras) is locked at a version it allows."""
    problems = []
    for req in _pyproject_requirements():
        name = canonicalize_name(req.name)
        if name not in lock:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(lock[name]["version"], prereleases=True):
            problems.append(f"{req}: the lock pins {lock[name]['version']}")
    assert not problems, "requirements.lock is stale, run `make lock`: " + "; ".join(problems)


def test_lock_has_nothing_pyproject_dropped(lock):
    """A package locked only because pyproject asked for it must still be asked for."""
    wanted = {canonicalize_name(r.name) for r in _pyproject_requirements()}
    orphans = sorted(n for n, e in lock.items() if e["via"] == [SELF] and n not in wanted)
    assert not orphans, f"requirements.lock is stale (no longer in pyproject), run `make lock`: {orphans}"


def test_torch_is_the_pinned_cpu_build(lock):
    assert lock["torch"]["version"] == "2.13.0+cpu"
    assert lock["torch"]["hashes"] == 1, "torch: exactly the local CPU wheel's hash"


def test_installed_packages_match_the_lock(lock):
    """The running environment is the locked one (a stale venv is caught; `make env` fixes it)."""
    wrong = []
    for name, e in lock.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing (lock {e['version']})")
            continue
        if Version(installed) != Version(e["version"]):
            wrong.append(f"{name} {installed} (lock {e['version']})")
    assert not wrong, "environment differs from requirements.lock, run `make env`: " + "; ".join(wrong)
    for name in ("numpy", "pandas", "h5py", "torch", "dvc", "mlflow"):
        assert name in lock
