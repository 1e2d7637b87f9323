"""The warm parent of the writer processes (:mod:`skelrep.tracking.warm_writer`): the first stage
starts it and logs through a writer of its own; the next stages get writers forked by it, which
record what a cold writer records, in the stage's directory, environment and streams; a failed or
killed writer is handled as a cold one; the parent is keyed by the code, admits only its user and
exits when idle."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from skelrep.tracking import warm_writer
from skelrep.tracking.mlflow_run import STAGE_DONE, RunIdentity, TrackingError, _writer_env, stage_run

from ..conftest import use_mlflow_db
from .test_background_writer import _content

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets: Linux only")


def _listening(name: str) -> bool:
    """Whether a socket listens at the abstract ``name`` (read from /proc: connecting would make
    the parent fork a writer)."""
    wanted = "@" + name[1:]
    with open("/proc/net/unix") as table:
        return any(line.split()[-1] == wanted for line in table.readlines()[1:] if len(line.split()) >= 8)


def _wait(predicate, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _status(experiment: str) -> str | None:
    """The run's status; None while the writer has not created it yet."""
    try:
        return _content(experiment)[0]
    except (AttributeError, ValueError):
        return None


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def parent(tmp_path, template_db, monkeypatch):
    """A parent address of this test's own (so other tests' parents do not serve it), a short
    idle time, an MLflow database; the parent is stopped afterwards."""
    use_mlflow_db(tmp_path, template_db, monkeypatch)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.delenv(warm_writer.DISABLE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    name = f"\0skelrep-writer-test-{uuid.uuid4().hex}"
    monkeypatch.setattr(warm_writer, "address", lambda: name)
    monkeypatch.setenv("SKELREP_WARM_WRITER_IDLE_S", "20")
    yield name
    subprocess.run(["pkill", "-f", name[1:]], check=False)


def _identity(experiment: str) -> RunIdentity:
    return RunIdentity(experiment, "key", {"method": "usdrl"}, f"run of {experiment}")


def _started(name: str) -> None:
    """The first stage: a writer of its own, and the parent started for the next ones."""
    with stage_run(_identity("first"), "knn", background=True) as run:
        assert isinstance(run._process, subprocess.Popen)
        run.log_metrics({"knn/top1": 1.0})
    assert _wait(lambda: _listening(name))


def test_the_stages_after_the_first_get_writers_forked_by_one_parent(parent):
    _started(parent)
    parents = []
    for experiment in ("second", "third"):
        with stage_run(_identity(experiment), "linear", background=True) as run:
            assert isinstance(run._process, warm_writer.WarmWriter)
            parents.append(_ppid(run._process.pid))
            assert os.getpgid(run._process.pid) != os.getpgid(0)  # Ctrl-C is the stage's alone
            run.log_params({"linear.lr": 0.1})
            run.log_metrics({"linear/top1_last": 2.0})
        assert run._process.returncode == 0
        status, params, metrics, tags, *_ = _content(experiment)
        assert status == "FINISHED" and params == {"linear.lr": "0.1"} and metrics == {"linear/top1_last": 2.0}
        assert tags[STAGE_DONE.format(stage="linear")] == "done"
    assert parents[0] == parents[1] != os.getpid()
    assert _content("first")[2] == {"knn/top1": 1.0}


def test_a_warm_writer_works_in_the_stage_s_directory_environment_and_streams(parent, monkeypatch, capfd):
    _started(parent)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-warm")
    Path("scores.txt").write_text("0.5\n")  # a relative path: the stage's directory
    with stage_run(_identity("env"), "linear", background=True) as run:
        assert isinstance(run._process, warm_writer.WarmWriter)
        run.log_artifact("scores.txt", "linear")
    status, *_, tags, _, artifacts, _ = _content("env")
    assert status == "FINISHED" and tags["dvc.exp_name"] == "exp-warm" and artifacts == ["linear/scores.txt"]
    capfd.readouterr()
    with pytest.raises(TrackingError, match="writer process"), \
            stage_run(_identity("fails"), "linear", background=True) as run:
        assert isinstance(run._process, warm_writer.WarmWriter)
        run.log_artifact("missing.txt", "linear")
    assert "missing.txt" in capfd.readouterr().err  # the writer's error, on the stage's stderr
    assert _content("fails")[0] == "FAILED"
    with stage_run(_identity("after"), "knn", background=True) as run:  # the parent serves on
        assert isinstance(run._process, warm_writer.WarmWriter)
        run.log_metrics({"knn/top1": 3.0})
    assert _content("after")[:3:2] == ("FINISHED", {"knn/top1": 3.0})


def test_a_stage_killed_mid_run_leaves_a_failed_run(parent):
    _started(parent)
    writer = warm_writer.connect(_writer_env())
    assert writer is not None
    for message in (("open", _identity("killed"), "pretrain", False),
                    ("call", "log_metrics", ({"pretrain/loss": 3.0},), {"step": 0})):
        pickle.dump(message, writer.stdin)
    writer.stdin.flush()
    assert writer.pid > 0
    writer.stdin.close()  # the stage's end of the connection closes, with no close message
    writer._sock.close()
    assert _wait(lambda: _status("killed") == "FAILED", 30)
    status, _, metrics, tags, *_ = _content("killed")
    assert metrics == {"pretrain/loss": 3.0} and "stage.pretrain" not in tags


def test_a_stage_that_exits_before_logging_leaves_no_trace(parent):
    """A stage whose params turn out invalid exits before its first message, without reading the
    writer's pid (its connection is reset, not closed): its writer ends quietly, no run."""
    _started(parent)
    code = ("import os\nfrom skelrep.tracking import warm_writer\nfrom skelrep.tracking.mlflow_run import _writer_env\n"
            f"warm_writer.address = lambda: {parent!r}\n"
            "assert warm_writer.connect(_writer_env()) is not None\nos._exit(2)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_writer_env(),
                         timeout=120)
    assert out.returncode == 2 and out.stderr == "" and out.stdout == ""


def test_the_address_follows_the_code(tmp_path, monkeypatch):
    package = tmp_path / "skelrep"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(warm_writer, "_PACKAGE", package)
    before = warm_writer.address()
    assert warm_writer.address() == before and before.startswith("\0skelrep-writer-")
    (package / "a.py").write_text("x = 2\n")
    assert warm_writer.address() != before


def test_turned_off_every_stage_starts_its_own_writer(parent, monkeypatch):
    monkeypatch.setenv(warm_writer.DISABLE_ENV, "0")
    for experiment in ("off-1", "off-2"):
        with stage_run(_identity(experiment), "knn", background=True) as run:
            assert isinstance(run._process, subprocess.Popen)
            run.log_metrics({"knn/top1": 4.0})
    time.sleep(0.5)
    assert not _listening(parent) and _content("off-2")[2] == {"knn/top1": 4.0}


def test_the_parent_exits_when_idle(parent, monkeypatch):
    monkeypatch.setenv("SKELREP_WARM_WRITER_IDLE_S", "1")
    warm_writer.start_parent(parent, _writer_env())
    assert _wait(lambda: _listening(parent))
    assert _wait(lambda: not _listening(parent), 30)


@pytest.mark.skipif(os.getuid() != 0, reason="needs to switch to another user")
def test_the_parent_admits_only_its_own_user(parent):
    warm_writer.start_parent(parent, _writer_env())
    assert _wait(lambda: _listening(parent))
    pid = os.fork()
    if pid == 0:  # another user connects and sends a hello: no writer answers it
        code = 1
        try:
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(parent)
            sock.settimeout(20)
            code = 0 if sock.recv(8) == b"" else 1
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0  # the connection was closed without a pid
