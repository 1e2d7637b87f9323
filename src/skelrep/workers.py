"""Worker process pools whose workers exit quietly and never outlive the stage that made them.

A pool worker that finishes a task after its parent was killed (``kill -9``, the OOM killer)
writes the result into a pipe nobody reads any more: ``multiprocessing.pool`` then prints a
``BrokenPipeError`` traceback per worker, and ``concurrent.futures`` workers block forever on
their task queue, orphaned. Every pool here therefore runs :func:`init_worker` first:

- on Linux the kernel kills the worker the moment its parent dies (``PR_SET_PDEATHSIG``,
  SIGKILL), so it never touches the broken pipe; elsewhere a daemon thread polls the parent
  and calls ``os._exit`` within ``_POLL_S`` once it is gone, and the worker's stderr exits
  instead of printing once the parent is gone;
- SIGINT is ignored: on Ctrl-C the parent alone gets KeyboardInterrupt and shuts the pool
  down, instead of one KeyboardInterrupt traceback per worker.

Workers hold no files of their own (results go back to the parent, which writes outputs
atomically), so killing them outright loses nothing. Linux sends the death signal when the
*thread* that started a worker ends: use a pool in the thread that created it.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.pool
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_S = 0.2


def init_worker(parent_pid: int, direct_child: bool = True) -> None:
    """Pool initializer (runs in each worker): ignore SIGINT, die with the parent.

    ``parent_pid`` is the process that created the pool; ``direct_child`` says that it is also
    the worker's parent process (fork and spawn; a forkserver worker's parent is the server).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _set_parent_death_signal() and direct_child:
        if os.getppid() != parent_pid:
            os._exit(0)  # the parent died before the death signal was armed
        return
    # Not Linux, or behind a fork server (which exits with the pool's creator and so takes
    # an armed worker along): poll the creator, and say nothing once it is gone (a task that
    # ends before the poll notices would hit the broken pipe and print a traceback).
    if os.name != "nt":
        sys.stderr = _SilentOrphan(sys.stderr, parent_pid, direct_child)
    threading.Thread(target=_watch_parent, args=(parent_pid, direct_child), daemon=True,
                     name="skelrep-parent-watch").start()


class _SilentOrphan:
    """A worker's stderr that exits the worker instead of writing once the parent is gone."""

    def __init__(self, stream, parent_pid: int, direct_child: bool):
        self._stream, self._parent = stream, (parent_pid, direct_child)

    def write(self, text: str) -> int:
        if not _parent_alive(*self._parent):
            os._exit(0)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0),
                          ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, direct_child: bool) -> None:
    parent = mp.parent_process()
    # On Windows the parent sentinel is the parent's process handle, ready once it exits.
    sentinel = parent.sentinel if os.name == "nt" and parent is not None else None
    while True:
        if sentinel is not None:
            if multiprocessing.connection.wait([sentinel], timeout=_POLL_S):
                os._exit(0)
            continue
        if not _parent_alive(parent_pid, direct_child):
            os._exit(0)
        time.sleep(_POLL_S)


def _parent_alive(parent_pid: int, direct_child: bool) -> bool:
    if direct_child:
        return os.getppid() == parent_pid  # a dead parent's children are re-parented at once
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _initargs(ctx) -> tuple[int, bool]:
    return os.getpid(), ctx.get_start_method() in ("fork", "spawn")


def worker_pool(workers: int, ctx=None) -> multiprocessing.pool.Pool:
    """``ctx.Pool(workers)`` whose workers run :func:`init_worker` (use it as a context manager)."""
    ctx = ctx or mp.get_context()
    return ctx.Pool(workers, initializer=init_worker, initargs=_initargs(ctx))


@contextlib.contextmanager
def process_pool(workers: int, ctx=None) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` whose workers run :func:`init_worker`.

    On an exception (Ctrl-C included) the queued tasks are cancelled instead of awaited.
    """
    ctx = ctx or mp.get_context()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=_initargs(ctx))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def ordered_map(fn: Callable, jobs: Iterable, workers: int, chunksize: int = 1) -> Iterator[Iterator]:
    """``fn`` over ``jobs``, results in job order, in a :func:`process_pool` of ``workers``
    processes (in this process when ``workers`` <= 1); the pool lives as long as the block."""
    if workers <= 1:
        yield map(fn, jobs)
        return
    with process_pool(workers) as pool:
        yield pool.map(fn, jobs, chunksize=chunksize)
