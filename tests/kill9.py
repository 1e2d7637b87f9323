"""Test helpers: start a process with worker processes, ``kill -9`` it, watch what is left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

needs_kill9 = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def start(script: Path, *args, stderr: Path) -> subprocess.Popen:
    """``python script args`` in its own session, stderr (its workers' too) into ``stderr``."""
    with open(stderr, "wb") as err:
        return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Poll ``condition`` while ``proc`` runs; fail if it exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before the condition held")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def kill9(proc: subprocess.Popen, timeout: float = 5.0) -> list[int]:
    """SIGKILL ``proc`` (not its workers); return its descendants still alive after ``timeout``."""
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no worker process was running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout
    while True:
        alive = [c.pid for c in children if _alive(c)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_session(proc: subprocess.Popen) -> None:
    """Cleanup: SIGKILL whatever is left of the session ``start`` created."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
