"""A warm parent for the stages' MLflow writer processes (:mod:`skelrep.tracking.writer`).

A stage logs through a writer process (``stage_run(..., background=True)``) that used to start
from nothing: Python, MLflow's imports and its SQL store's mappers, ~1.7 s of a core before it
could open the run. A short stage (features, linear, knn: 2-5 s) then waited for its writer at
its end, ~1 s of each of the ~30 short stages of the default pipeline. Here the first stage that
logs starts a *warm parent* (``python -m skelrep.tracking.warm_writer``) that does those imports
once and then forks one writer per stage: the child is the same writer (its own process, the
same messages, the stage's working directory, environment, stdout and stderr, its exit status
sent back to the stage), started in a millisecond. The stage that started the parent logs
through a writer of its own, as before; the stages after it use the parent.

The parent listens on a Linux abstract socket named after the user, the interpreter and a digest
of the skelrep and MLflow code it imports (:func:`address`), so a stage never gets a writer of
other code; it accepts only processes of its own user (``SO_PEERCRED``), and a stage only a
parent of its own user. It exits once no stage has asked for a writer for ``IDLE_S`` seconds and
its children have ended. It holds no file of the pipeline open (its standard streams are
/dev/null, its directory /), so DVC never waits for it. Without abstract sockets (not Linux),
with ``SKELREP_WARM_WRITER=0``, or when the parent cannot be reached, the stage starts its own
writer process as before.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from .. import warm
from ..warm import WORD as _WORD

# the parent's lifetime without a request (DVC starts the next stage within seconds); the
# environment's SKELREP_WARM_WRITER_IDLE_S, when the parent starts, overrides it
IDLE_S = 30.0
DISABLE_ENV = "SKELREP_WARM_WRITER"  # "0": every stage starts its own writer process
_PACKAGE = Path(__file__).resolve().parents[1]  # skelrep


def available() -> bool:
    return warm.available(DISABLE_ENV)


def address() -> str:
    """The parent's abstract socket name: the user, the interpreter, the content of every module
    of this skelrep and the installed MLflow's version (its ``__init__``), so a changed checkout,
    venv or MLflow gets a parent of its own (the old one idles out)."""
    return warm.socket_name("skelrep-writer", repr(warm.installed("mlflow")).encode(), _PACKAGE)


class WarmWriter:
    """A writer forked by the warm parent, seen as the :class:`subprocess.Popen` of a cold one:
    ``stdin`` takes the pickled messages, ``poll``/``wait`` give its exit status (``-1`` when it
    ended without one), ``pid`` is the child's. ``wait`` ends the messages (the child then closes
    the run), like closing a cold writer's stdin."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.stdin = sock.makefile("wb")
        self._reply = b""
        self._ended = False
        self.returncode: int | None = None

    def _pump(self, want: int, block: bool) -> None:
        """Read the child's words until ``want`` bytes of them arrived or its connection ended."""
        while not self._ended and len(self._reply) < want:
            try:
                data = self._sock.recv(want - len(self._reply), 0 if block else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._ended = True
            self._reply += data
        if self.returncode is None and (self._ended or len(self._reply) == 2 * _WORD.size):
            self.returncode = (_WORD.unpack_from(self._reply, _WORD.size)[0]
                               if len(self._reply) == 2 * _WORD.size else -1)

    @property
    def pid(self) -> int:
        self._pump(_WORD.size, block=True)
        return _WORD.unpack_from(self._reply)[0] if len(self._reply) >= _WORD.size else -1

    def poll(self) -> int | None:
        self._pump(2 * _WORD.size, block=False)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        for close in (self.stdin.close, lambda: self._sock.shutdown(socket.SHUT_WR)):
            with contextlib.suppress(OSError):  # the child is gone: its status, or its absence, says so
                close()
        self._sock.settimeout(timeout)
        self._pump(2 * _WORD.size, block=True)
        self._sock.close()
        return self.returncode


def connect(env: dict[str, str]) -> WarmWriter | None:
    """A writer forked by the running warm parent, for a stage with this environment and the
    current directory; None when no parent of this code runs (one is then started for the next
    stages: :func:`start_parent`) or warm writers are off."""
    if not available():
        return None
    name = address()
    sock = None
    try:
        sock = warm.connect(name)
        # the process's stdout and stderr, as a cold writer inherits them
        warm.send_request(sock, (os.getcwd(), env), [1, 2])
    except OSError:
        if sock is not None:
            sock.close()
        start_parent(name, env)
        return None
    return WarmWriter(sock)


def start_parent(name: str, env: dict[str, str]) -> None:
    """Start a warm parent at ``name`` in the background (:func:`skelrep.warm.start_detached`); it
    exits at once when another one already listens there."""
    warm.start_detached([sys.executable, "-m", "skelrep.tracking.warm_writer", name[1:]], env)


def _serve_one(conn: socket.socket) -> int:
    """In the forked child: take the stage's directory, environment and standard streams, then
    be its writer (:func:`skelrep.tracking.writer.main` on the connection); return the status."""
    (cwd, env), fds = warm.receive_request(conn)
    warm.adopt(fds, (1, 2), cwd, env)
    with contextlib.suppress(OSError):  # a stage already gone: its messages end at once
        conn.sendall(_WORD.pack(os.getpid()))
    from .writer import main

    with conn.makefile("rb") as stream:
        return main(stream)


def _child(conn: socket.socket) -> None:
    """The forked writer: serve the stage on ``conn``, send its exit status, exit with it (an
    uncaught error: its traceback on the stage's stderr and status 1, as a cold writer ends)."""
    code = 1
    try:
        conn.settimeout(None)
        code = _serve_one(conn)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        with contextlib.suppress(OSError):
            conn.sendall(_WORD.pack(code))
        os._exit(code)


def serve(name: str, idle_s: float = IDLE_S) -> int:
    """The warm parent: listen at ``name``, import what writers need, fork one per connection of
    this user; exit after ``idle_s`` seconds without a connection or a live child."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)
    except OSError:  # another parent listens there already
        return 0
    listener.listen(64)
    from .writer import _warm_up

    _warm_up()
    listener.settimeout(1.0)
    children: set[int] = set()
    last = time.monotonic()
    while True:
        for pid in list(children):
            if os.waitpid(pid, os.WNOHANG)[0]:
                children.discard(pid)
        if children:
            last = time.monotonic()
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if not children and time.monotonic() - last > idle_s:
                return 0
            continue
        last = time.monotonic()
        if warm.peer_uid(conn) != os.getuid():
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn)  # never returns
        conn.close()
        children.add(pid)


if __name__ == "__main__":
    idle = float(os.environ.get("SKELREP_WARM_WRITER_IDLE_S", IDLE_S))
    os._exit(serve("\0" + sys.argv[1], idle))
