"""A warm parent for the torch stages: each stage process forked with its imports already done.

Every torch stage of the default pipeline (27 of its 38: pretraining, features, linear, KNN,
fine-tuning, transfer, detection) started from nothing and imported torch, h5py and skelrep's
models before its work: 1-3 s of a core per stage on a 2-core machine, a tenth of the default
run. Here the first such stage starts a *warm parent*
(``python -m skelrep.stage_server``) that imports them once; each later stage script, as its
first statement (:func:`run_warm`), hands its command line, directory, environment and standard
streams to the parent, which forks a child that runs the script as ``__main__``, as ``python
<script>`` would, and sends back its exit status, which the stage's own process then exits with
(the same signal, if the child was killed by one). Signals sent to the stage's process (Ctrl-C,
DVC or CI ending it) are forwarded to the child; a stage process that is killed outright
(SIGKILL) takes its child with it: the child watches their connection.

The child differs from a fresh process only in what cannot matter to a stage: its parent pid,
its session, and modules imported before its argv was known. Everything a library may read once
at import time is part of the parent's key: the socket name (:func:`skelrep.warm.socket_name`)
digests the user, the interpreter and its flags, the skelrep code, the installed torch, numpy,
h5py, matplotlib and tqdm, the whole environment but ``DVC_STAGE`` (which DVC sets per stage; the
child gets it), the CPU affinity (torch's thread count), resource limits, priority, cgroup and
umask; a stage of a different context gets a different parent. The parent exits after
``IDLE_S`` seconds without a request or a running child. Off with ``SKELREP_WARM_STAGES=0``; not
on Linux, under a profiler or a tracer (``python -m cProfile stages/x.py``), or when no parent
answers, the stage runs in its own process as before.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import select
import signal
import socket
import sys
import threading
import time

from . import warm

IDLE_S = 30.0  # the environment's SKELREP_WARM_STAGES_IDLE_S, when the parent starts, overrides it
DISABLE_ENV = "SKELREP_WARM_STAGES"  # "0": every stage imports for itself
PER_STAGE_ENV = ("DVC_STAGE",)  # set by DVC for each stage: given to the child, not part of the key
# What the stages import; anything else a stage needs it imports itself, as a fresh process would.
PRELOAD = (
    "torch", "torch.nn.functional", "h5py", "numpy", "tqdm", "matplotlib.figure", "matplotlib.backends.backend_agg",
    "skelrep.methods", "skelrep.training.pretrain", "skelrep.training.optim",
    "skelrep.evaluation.features", "skelrep.evaluation.feature_file", "skelrep.evaluation.handcrafted",
    "skelrep.evaluation.linear", "skelrep.evaluation.knn", "skelrep.evaluation.finetune",
    "skelrep.evaluation.transfer", "skelrep.evaluation.subsets", "skelrep.evaluation.detection.protocols",
    "skelrep.evaluation.detection.dense", "skelrep.tracking.mlflow_run", "skelrep.validation",
    "skelrep.recipes", "skelrep.config", "skelrep.models.encoder_file",
)  # not pandas: it loads pyarrow, whose allocator starts a thread, and a parent that forks has none
_READY = -1  # the child's word after its pid once it is the stage (a wait status is never negative)
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_in_child = False  # True in a forked stage: its run_warm() runs the stage here


def _context_key() -> bytes:
    """Everything of this process that a library may read when it is imported (see the module)."""
    import resource

    env = sorted((k, v) for k, v in os.environ.items() if k not in PER_STAGE_ENV)
    umask = os.umask(0)
    os.umask(umask)
    limits = [resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource)) if n.startswith("RLIMIT_")]
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            cgroup = f.read()
    except OSError:
        cgroup = ""
    return repr((env, sys.flags, sys._xoptions, sys.warnoptions, sys.path[1:], os.getgid(), os.getgroups(),
                 sorted(os.sched_getaffinity(0)), limits, os.getpriority(os.PRIO_PROCESS, 0), cgroup,
                 umask, _installed_stamps())).encode()


def _installed_stamps() -> list[tuple]:
    """Where the preloaded packages are installed and when (their ``__init__``'s size and mtime,
    found without importing them): a package reinstalled between two stages gets a new parent."""
    tops = sorted({m.split(".")[0] for m in PRELOAD if not m.startswith("skelrep")})
    return [(top, *stamp) for top in tops if (stamp := warm.installed(top)) is not None]


def address() -> str:
    return warm.socket_name("skelrep-stages", _context_key())


def available() -> bool:
    return (warm.available(DISABLE_ENV) and not _in_child
            and sys.getprofile() is None and sys.gettrace() is None
            # a standard stream closed when Python started (its stream is None): nothing to hand over
            and None not in (sys.__stdin__, sys.__stdout__, sys.__stderr__))


def run_warm() -> None:
    """A stage script's first statement (under ``if __name__ == "__main__"``): run this stage in a
    child of the warm parent and exit with its status; return at once when that is not possible
    (then the stage runs in this process, and a parent is started for the next stages)."""
    if not available():
        return
    name = address()
    try:
        sock = warm.connect(name)
    except OSError:
        warm.start_detached([sys.executable, *_interpreter_args(), "-m", "skelrep.stage_server", name[1:]],
                            dict(os.environ))
        return
    try:
        # the signals this process ignores (started in the background by a shell, under nohup):
        # the child ignores them too, and this process forwards the others
        ignored = [sig for sig in _FORWARDED if signal.getsignal(sig) == signal.SIG_IGN]
        warm.send_request(sock, {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path,
                                 "stdout": (sys.stdout.line_buffering, sys.stdout.write_through),
                                 "ignored": ignored}, [0, 1, 2])
        (pid,), (ready,) = warm.WORD.iter_unpack(warm.recv_exact(sock, 2 * warm.WORD.size))
    except (OSError, EOFError):  # the parent is exiting (idle) or gone, or its child failed: run here
        sock.close()
        return
    if ready != _READY:
        sock.close()
        return
    for sig in _FORWARDED:
        if sig not in ignored:
            signal.signal(sig, lambda s, _frame: _forward(pid, s))
    try:
        status = warm.WORD.unpack(warm.recv_exact(sock, warm.WORD.size))[0]
    except (OSError, EOFError):
        print(f"error: the warm stage parent ended before the stage (pid {pid}) did", file=sys.stderr)
        os._exit(1)
    _exit_like(status)


def _forward(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _interpreter_args() -> list[str]:
    import subprocess

    return subprocess._args_from_interpreter_flags()  # -X, -W, -O ...: the parent runs as the stage would


def _exit_like(status: int) -> None:
    """End this process as the child ended: its exit code, or the signal that killed it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


# -- the parent and its children ----------------------------------------------------------------------------


def serve(name: str, idle_s: float = IDLE_S) -> int:
    """The warm parent: import :data:`PRELOAD`, then listen at ``name`` and fork one child per
    stage of this user, sending each stage its child's exit status; exit after ``idle_s``
    seconds without a request or a running child."""
    import importlib

    starting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:  # one parent per name: a stage that finds none while this one imports starts no other
        starting.bind(name + "-starting")
    except OSError:
        return 0
    for module in PRELOAD:
        # a module that fails to import (an optional extra, a file being edited) fails in the
        # stage that needs it, with its own error
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    # The imported modules live as long as any stage: out of the collector's sight, a child's
    # collections neither walk them nor copy their pages (copy-on-write) by touching them.
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)  # after the imports: a stage never waits for them
    except OSError:  # another parent listens there already
        return 0
    listener.listen(16)
    children: dict[int, socket.socket] = {}
    last = time.monotonic()
    while True:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(warm.WORD.pack(status))
                conn.close()
        if children:
            last = time.monotonic()
        elif time.monotonic() - last > idle_s:
            return 0
        if not select.select([listener], [], [], 0.05 if children else 1.0)[0]:
            continue
        conn, _ = listener.accept()
        last = time.monotonic()
        if warm.peer_uid(conn) != os.getuid():
            conn.close()
            continue
        try:
            pid = os.fork()
        except OSError:  # no memory or process slot: the stage runs in its own process
            conn.close()
            continue
        if pid == 0:
            listener.close()
            starting.close()
            for other in children.values():
                other.close()
            _child(conn)  # never returns
        children[pid] = conn


def _child(conn: socket.socket) -> None:
    """A forked stage: become the requesting process (argv, directory, environment, import path,
    standard streams), run its script as ``__main__`` and exit as Python would."""
    global _in_child
    _in_child = True
    try:
        request, fds = warm.receive_request(conn)
        warm.adopt(fds, (0, 1, 2), request["cwd"], request["env"])
        _reopen_standard_streams(*request["stdout"])
        sys.path[:] = request["path"]
        sys.argv[:] = request["argv"]
        for sig in _FORWARDED:  # as Python sets them up in the stage's process (not the parent's)
            signal.signal(sig, signal.SIG_IGN if sig in request["ignored"]
                          else signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        threading.Thread(target=_die_with_the_stage, args=(conn,), daemon=True).start()
        # the pid the stage forwards its signals to, and that it is the stage now
        conn.sendall(warm.WORD.pack(os.getpid()) + warm.WORD.pack(_READY))
    except BaseException:  # the stage then runs in its own process (run_warm: only a status came)
        os._exit(1)
    code = _run_script(os.path.abspath(sys.argv[0]))  # __file__ absolute, as Python makes it
    os._exit(code)


def _reopen_standard_streams(line_buffering: bool, write_through: bool) -> None:
    # Python picks a stream's buffering when it starts (line-buffered stdout on a terminal,
    # unbuffered with -u, stderr line-buffered): the stage's stdout as its process had it, the
    # parent's streams were /dev/null.
    def text(fd: int, mode: str, old: io.TextIOWrapper, line: bool, through: bool = False) -> io.TextIOWrapper:
        return io.TextIOWrapper(open(fd, mode + "b", closefd=False), encoding=old.encoding, errors=old.errors,
                                line_buffering=line, write_through=through)

    sys.stdin = sys.__stdin__ = text(0, "r", sys.__stdin__, False)
    sys.stdout = sys.__stdout__ = text(1, "w", sys.__stdout__, line_buffering, write_through)
    sys.stderr = sys.__stderr__ = text(2, "w", sys.__stderr__, True)


def _die_with_the_stage(conn: socket.socket) -> None:
    # The stage's process sends nothing after its request: the connection ends when it does,
    # also when it is killed (SIGKILL), and the stage's work must then stop as it would have.
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def _run_script(path: str) -> int:
    """``python <path>`` in this process: the script's exit code, an uncaught error's traceback
    and 1, or, for an uncaught Ctrl-C, death by SIGINT; then the exit handlers, as at shutdown."""
    import importlib.machinery
    import types

    interrupted = False
    try:
        # what ``python <path>`` makes of it (not runpy.run_path, which rewrites sys.argv[0])
        main = types.ModuleType("__main__")
        main.__file__ = path
        main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
        sys.modules["__main__"] = main
        with io.open_code(path) as f:
            code_object = compile(f.read(), path, "exec", dont_inherit=True)
        exec(code_object, main.__dict__)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException as exc:
        _print_uncaught(exc, path)
        code = 1
        interrupted = isinstance(exc, KeyboardInterrupt)
    _shutdown()
    if interrupted:  # Python ends an uncaught Ctrl-C by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _print_uncaught(exc: BaseException, path: str) -> None:
    exc.with_traceback(_from_script(exc.__traceback__, path))
    sys.excepthook(type(exc), exc, exc.__traceback__)


def _from_script(tb, path: str):
    """The traceback from the script's own frame on, as ``python <path>`` prints it (without
    this module's frames)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename != path:  # compiled with this path
        first = first.tb_next
    return first if first is not None else tb


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _shutdown() -> None:
    # what the interpreter does at exit: wait for the threads that are not daemons, then run the
    # exit handlers (logging's flush, h5py's file closing ...)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


if __name__ == "__main__":
    # Serve from the imported module, not this ``__main__`` copy: the children's ``run_warm``
    # (the stage script imports skelrep.stage_server) must see the flag ``_child`` sets.
    from skelrep import stage_server

    os._exit(stage_server.serve("\0" + sys.argv[1], float(os.environ.get("SKELREP_WARM_STAGES_IDLE_S", IDLE_S))))
