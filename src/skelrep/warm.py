"""What the warm parents share: a private Linux socket, its name, and a request with file descriptors.

Two processes of the pipeline are forked from a parent that has done their imports once instead
of starting from nothing: the MLflow writers (:mod:`skelrep.tracking.warm_writer`) and the
torch stages themselves (:mod:`skelrep.stage_server`). Both listen on a Linux abstract socket
whose name is a digest of the user, the interpreter and the skelrep code (:func:`socket_name`),
accept only their own user (:func:`peer_uid`, ``SO_PEERCRED``, checked on both ends: the
requests are pickles), and take a request as one pickled payload plus the requester's standard
streams passed as file descriptors (``SCM_RIGHTS``).
"""

from __future__ import annotations

import array
import hashlib
import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

WORD = struct.Struct("!q")  # the length of a request; a pid; an exit status
_PACKAGE = Path(__file__).resolve().parent  # skelrep


def available(disable_env: str) -> bool:
    """Linux (abstract sockets), and not turned off with ``<disable_env>=0``."""
    return sys.platform.startswith("linux") and os.environ.get(disable_env, "1") != "0"


def socket_name(prefix: str, extra: bytes = b"", package: Path | None = None) -> str:
    """``\\0<prefix>-<digest>``: the user, the interpreter, the content of every module of this
    skelrep (``package``) and ``extra``, so a changed checkout or venv gets a parent of its own
    (the old one idles out)."""
    digest = hashlib.sha256(f"{os.getuid()}\0{sys.executable}\0{sys.version}".encode())
    package = package or _PACKAGE
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    digest.update(b"\0" + extra)
    return f"\0{prefix}-{digest.hexdigest()[:32]}"


def installed(package: str) -> tuple[str, int, int] | None:
    """Where ``package`` is installed and when: its ``__init__``'s path, size and mtime, found
    without importing it (None when it is not installed). Part of a parent's name, so that a
    package reinstalled while a parent idles gets a new one."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return None
    stat = os.stat(spec.origin)
    return spec.origin, stat.st_size, stat.st_mtime_ns


def peer_uid(sock: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return uid


def connect(name: str) -> socket.socket:
    """A connection to the parent at ``name``; ``OSError`` when none listens there, or when the one
    that does is another user's."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(name)
        if peer_uid(sock) != os.getuid():  # someone else's socket under our name
            raise ConnectionRefusedError(name)
    except OSError:
        sock.close()
        raise
    return sock


def send_request(sock: socket.socket, payload: object, fds: list[int]) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendmsg([WORD.pack(len(data))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    sock.sendall(data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the requester closed the connection")
        data += chunk
    return data


def receive_request(conn: socket.socket, max_fds: int = 3) -> tuple[object, list[int]]:
    """The payload and the file descriptors of :func:`send_request` (new descriptors of this
    process, in the order sent)."""
    head, ancillary, _flags, _addr = conn.recvmsg(WORD.size, socket.CMSG_SPACE(max_fds * struct.calcsize("i")))
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if len(head) < WORD.size:
        head += recv_exact(conn, WORD.size - len(head))
    return pickle.loads(recv_exact(conn, WORD.unpack(head)[0])), list(fds)


def adopt(fds: list[int], targets: tuple[int, ...], cwd: str, env: dict[str, str]) -> None:
    """In a forked child: take the requester's standard streams (``fds`` onto ``targets``), its
    directory and its whole environment."""
    for fd, target in zip(fds, targets, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)


def start_detached(args: list[str], env: dict[str, str]) -> None:
    """Start a parent in the background: its own session, standard streams on /dev/null and its
    directory /, so it holds no file of the pipeline open and DVC never waits for it."""
    subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     cwd="/", env=env, start_new_session=True)
