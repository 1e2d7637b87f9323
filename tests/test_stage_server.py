"""The warm stage parent: a script run through it behaves as ``python <script>``; signals and
deaths pass through; the parent's key follows what a library reads at import; the stages use it."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from skelrep import stage_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets: Linux only")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = '''\
import os, sys, time
from skelrep.stage_server import run_warm
if __name__ == "__main__":
    run_warm()
import skelrep.stage_server as server
mode = sys.argv[1]
print("warm" if server._in_child else "cold", flush=True)
print(os.getcwd(), sys.argv, __file__ == os.path.abspath(sys.argv[0]), os.environ.get("DVC_STAGE"),
      sys.stdout.line_buffering)
print("to stderr", file=sys.stderr)
if mode == "exit3":
    sys.exit(3)
if mode == "exit-message":
    sys.exit("stopped: a message")
if mode == "raise":
    raise ValueError("boom")
if mode == "thread-exit":  # Python waits for a thread that is not a daemon, then exits
    import threading
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
    sys.exit(2)
if mode == "sleep":
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
    print("ready", flush=True)
    time.sleep(60)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A script in a folder of its own and an environment whose parent serves only this module."""
    root = tmp_path_factory.mktemp("warm_stages")
    (root / "stages").mkdir()
    (root / "stages" / "probe.py").write_text(SCRIPT)
    env = {**os.environ, "SKELREP_WARM_STAGES": "1", "SKELREP_WARM_STAGES_IDLE_S": "20",
           "SKELREP_TEST_PARENT": uuid.uuid4().hex}
    _wait_until_warm(root, env)
    yield root, env
    _stop_parents(env["SKELREP_TEST_PARENT"])


def _run(root, env, *args, **kw):
    return subprocess.run([sys.executable, "stages/probe.py", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60, **kw)


def _wait_until_warm(root, env, deadline_s: float = 60.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if _run(root, env, "ok").stdout.startswith("warm"):
            return
        time.sleep(0.5)
    raise AssertionError("no warm parent answered")


def _parents(tag: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if b"skelrep.stage_server" in cmd and f"SKELREP_TEST_PARENT={tag}".encode() in environ:
                pids.append(int(entry.name))
    return pids


def _stop_parents(tag: str) -> None:
    for pid in _parents(tag):
        os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("mode", ["ok", "exit3", "exit-message", "raise", "thread-exit"])
def test_a_warm_run_prints_and_exits_as_a_fresh_process(project, mode):
    root, env = project
    warm = _run(root, {**env, "DVC_STAGE": f"probe@{mode}"}, mode)
    cold = _run(root, {**env, "DVC_STAGE": f"probe@{mode}", "SKELREP_WARM_STAGES": "0"}, mode)
    assert warm.stdout.splitlines()[0] == "warm" and cold.stdout.splitlines()[0] == "cold"
    # the same directory, argv, __file__, per-stage variable and stdout buffering (a pipe: block-buffered)
    assert warm.stdout.splitlines()[1:] == cold.stdout.splitlines()[1:]
    assert f" probe@{mode} False" in warm.stdout
    assert warm.stderr == cold.stderr  # the traceback starts at the script, as Python prints it
    assert warm.returncode == cold.returncode == {"ok": 0, "exit3": 3, "exit-message": 1, "raise": 1,
                                                  "thread-exit": 2}[mode]


def _sleeping_stage(root, env, pid_file, sigint=signal.SIG_DFL):
    """The probe, sleeping, started with SIGINT at ``sigint`` (a shell's background job ignores it)
    whatever this test process has; its process and the pid of the process running the script."""
    proc = subprocess.Popen([sys.executable, "stages/probe.py", "sleep", str(pid_file)], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    mode = proc.stdout.readline().strip()
    while "ready" not in proc.stdout.readline():
        pass
    return proc, mode, int(pid_file.read_text())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_stage_reaches_its_child_and_the_stage_ends_by_it(project, sig, tmp_path):
    root, env = project
    results = {}
    for warm in ("1", "0"):
        proc, mode, child = _sleeping_stage(root, {**env, "SKELREP_WARM_STAGES": warm}, tmp_path / f"pid{warm}")
        assert mode == ("warm" if warm == "1" else "cold")
        proc.send_signal(sig)
        results[warm] = proc.wait(timeout=30)
        time.sleep(0.3)
        assert not _alive(child)
    assert results["1"] == results["0"] == -sig


def test_a_signal_the_stage_ignores_its_child_ignores(project, tmp_path):
    root, env = project
    for warm in ("1", "0"):
        proc, mode, child = _sleeping_stage(root, {**env, "SKELREP_WARM_STAGES": warm}, tmp_path / f"pid{warm}",
                                            sigint=signal.SIG_IGN)
        assert mode == ("warm" if warm == "1" else "cold")
        proc.send_signal(signal.SIGINT)
        os.kill(child, signal.SIGINT)  # also to the process that runs the script (`kill` from top)
        time.sleep(0.5)
        assert proc.poll() is None and _alive(child)  # still sleeping
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM


def test_a_stage_killed_outright_takes_its_child_with_it(project, tmp_path):
    root, env = project
    pid_file = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, "stages/probe.py", "sleep", str(pid_file)], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "warm"
    while "ready" not in proc.stdout.readline():
        pass
    child = int(pid_file.read_text())
    assert child != proc.pid
    proc.kill()
    proc.wait(timeout=10)
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)


def test_a_stage_that_cannot_hand_over_runs_in_its_own_process(project):
    root, env = project
    # started without a standard input (sys.stdin is None): the stage runs here, as Python does
    out = _run(root, env, "ok", preexec_fn=lambda: os.close(0))
    assert out.returncode == 0 and out.stdout.startswith("cold")


def test_the_parent_is_keyed_by_the_environment_but_not_by_the_stage_name(monkeypatch):
    monkeypatch.setenv("DVC_STAGE", "a")
    first = stage_server.address()
    monkeypatch.setenv("DVC_STAGE", "b")
    assert stage_server.address() == first
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # read by libraries when they load: another parent
    second = stage_server.address()
    assert second != first
    # a preloaded package reinstalled (its __init__ rewritten): another parent
    stamps = stage_server._installed_stamps()
    assert {s[0] for s in stamps} == {"h5py", "matplotlib", "numpy", "torch", "tqdm"}
    monkeypatch.setattr(stage_server, "_installed_stamps", lambda: [(*stamps[0][:3], stamps[0][3] + 1), *stamps[1:]])
    assert stage_server.address() != second


def test_off_under_a_profiler_or_tracer_or_when_asked(monkeypatch):
    monkeypatch.setenv("SKELREP_WARM_STAGES", "1")
    assert stage_server.available()
    monkeypatch.setattr(sys, "gettrace", lambda: object())
    assert not stage_server.available()
    monkeypatch.undo()
    monkeypatch.setenv("SKELREP_WARM_STAGES", "0")
    assert not stage_server.available()


def test_an_idle_parent_exits(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "probe.py").write_text(SCRIPT)
    tag = uuid.uuid4().hex
    env = {**os.environ, "SKELREP_WARM_STAGES": "1", "SKELREP_WARM_STAGES_IDLE_S": "1",
           "SKELREP_TEST_PARENT": tag}
    assert _run(tmp_path, env, "ok").stdout.startswith("cold")  # and starts a parent
    for _ in range(200):  # it imports torch, listens, then idles out
        if _parents(tag):
            break
        time.sleep(0.05)
    assert _parents(tag)
    end = time.monotonic() + 60
    while _parents(tag) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _parents(tag)


def test_a_second_parent_for_the_same_name_exits_at_once():
    name = f"skelrep-test-{uuid.uuid4().hex}"
    env = {**os.environ, "SKELREP_WARM_STAGES_IDLE_S": "3"}
    first = subprocess.Popen([sys.executable, "-m", "skelrep.stage_server", name], env=env)
    try:
        time.sleep(0.2)  # the first one holds the name while it imports
        second = subprocess.run([sys.executable, "-X", "importtime", "-m", "skelrep.stage_server", name], env=env,
                                timeout=60, capture_output=True, text=True)
        assert second.returncode == 0 and first.poll() is None
        assert "| torch\n" not in second.stderr  # it stopped before importing anything
    finally:
        assert first.wait(timeout=60) == 0  # idles out


TORCH_STAGES = ["pretrain", "features", "linear", "knn", "finetune", "transfer", "detect"]


@pytest.mark.parametrize("stage", TORCH_STAGES)
def test_each_torch_stage_hands_itself_to_the_warm_parent_before_any_other_import(stage):
    tree = ast.parse((ROOT / "stages" / f"{stage}.py").read_text())
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert isinstance(body[0], ast.ImportFrom) and body[0].module == "__future__"
    assert ast.unparse(body[1]) == "from skelrep.stage_server import run_warm"
    assert ast.unparse(body[2]) == "if __name__ == '__main__':\n    run_warm()"
