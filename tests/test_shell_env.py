"""Running dvc, mlflow and skelrep outside `make`: the stages get the environment's python.

dvc.yaml's commands call ``python``, found on PATH. ``make`` puts .venv/bin first; outside make,
tools/venv_path.pth (installed into the environment by ``make env``) does the same for every process
of the environment's interpreter, so ``.venv/bin/dvc repro`` runs unactivated. ``make shell`` opens an
activated shell. Each test builds a throwaway environment (``python -m venv --without-pip``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

HOOK = REPO_ROOT / "tools" / "venv_path.pth"
BARE_PATH = "/usr/bin:/bin"


def _venv(root: Path, hook: bool = True, with_dvc: bool = False) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    if hook:
        shutil.copy(HOOK, purelib / "skelrep_venv_path.pth")
    if with_dvc:  # this interpreter's packages (dvc), as a plain path: no console scripts in root/bin
        (purelib / "test_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return root


def _run(argv, cwd=None, env=None, **kw) -> subprocess.CompletedProcess:
    base = {"PATH": BARE_PATH, "HOME": str(cwd or "/tmp"), "DVC_NO_ANALYTICS": "1", "LANG": "C.UTF-8"}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, env={**base, **(env or {})},
                          **kw)


def test_hook_puts_the_environment_first_once(tmp_path):
    venv = _venv(tmp_path / "venv")
    show = [str(venv / "bin" / "python"), "-c", "import os; print(os.environ['PATH'])"]
    assert _run(show).stdout.strip() == f"{venv / 'bin'}:{BARE_PATH}"
    already = f"{venv / 'bin'}:{BARE_PATH}"
    assert _run(show, env={"PATH": already}).stdout.strip() == already  # not added twice
    # the interpreter that runs outside any environment is left alone
    assert "sys.prefix == sys.base_prefix" in HOOK.read_text() and len(HOOK.read_text().splitlines()) == 1


@pytest.mark.parametrize("hook", [True, False])
def test_unactivated_dvc_runs_stages_with_the_environment_python(tmp_path, hook):
    venv = _venv(tmp_path / "venv", hook=hook, with_dvc=True)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text(
        "stages:\n  which:\n    cmd: python -c \"import sys; print(sys.prefix)\" > prefix.txt\n"
        "    outs:\n    - prefix.txt\n")
    dvc = [str(venv / "bin" / "python"), "-m", "dvc"]
    assert _run([*dvc, "init", "--no-scm", "-q"], cwd=repo).returncode == 0
    proc = _run([*dvc, "repro", "-q"], cwd=repo)
    ran_here = proc.returncode == 0 and (repo / "prefix.txt").read_text().strip() == str(venv)
    if hook:
        assert ran_here, proc.stderr
    else:  # what the hook fixes: `python` is missing on PATH, or another interpreter
        assert not ran_here


@pytest.mark.skipif(not (shutil.which("make") and shutil.which("bash")), reason="needs make and bash")
def test_make_shell_opens_an_activated_shell(tmp_path):
    venv = _venv(tmp_path / "venv", hook=False)
    (venv / ".installed").touch()  # the stamp of `make env`, newer than the lock: no install here
    commands = 'command -v python\necho "VIRTUAL_ENV=$VIRTUAL_ENV"\nexit\n'
    proc = _run(["make", "-s", "-C", str(REPO_ROOT), "shell", f"VENV={venv}"], cwd=tmp_path,
                env={"SHELL": "/bin/bash"}, input=commands)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"{venv}/bin/python" in lines and f"VIRTUAL_ENV={venv}" in lines, proc.stdout
    assert (venv / ".path-hook").exists()  # make installed the hook on the way
    purelib = _run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    assert (Path(purelib.stdout.strip()) / "skelrep_venv_path.pth").read_text() == HOOK.read_text()
