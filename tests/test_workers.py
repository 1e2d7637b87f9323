"""Pool workers die quietly with their parent (kill -9), whichever pool type."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from skelrep.workers import _SilentOrphan, ordered_map, process_pool, worker_pool

from .kill9 import kill9, kill_session, needs_kill9, start, wait_for

_DRIVER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from skelrep.workers import process_pool, worker_pool

    MARKS = Path(sys.argv[2])
    if sys.argv[3] == "fallback":  # as off Linux: no parent-death signal
        import skelrep.workers
        skelrep.workers._set_parent_death_signal = lambda: False

    def task(i):
        (MARKS / str(os.getpid())).touch()  # this worker is busy
        time.sleep(0.5)
        return i

    if __name__ == "__main__":
        if sys.argv[1] == "pool":
            import multiprocessing as mp
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with worker_pool(2, ctx) as pool:
                for _ in pool.imap(task, range(40)):
                    pass
        else:
            with process_pool(2) as pool:
                for _ in pool.map(task, range(40)):
                    pass
""")


@needs_kill9
@pytest.mark.parametrize("how", [pytest.param("linux", marks=pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")), "fallback"])
@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_workers_exit_quietly_when_the_parent_is_killed(tmp_path, kind, how):
    script, marks = tmp_path / "driver.py", tmp_path / "marks"
    script.write_text(_DRIVER)
    marks.mkdir()
    proc = start(script, kind, marks, how, stderr=tmp_path / "stderr.txt")
    try:
        wait_for(lambda: len(list(marks.iterdir())) >= 2, proc)  # both workers mid-task
        assert kill9(proc) == []  # no orphan (an executor's workers used to wait forever)
    finally:
        kill_session(proc)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


def _square(x):
    return x * x


def test_pools_still_compute():
    import multiprocessing as mp

    with worker_pool(2, mp.get_context()) as pool:
        assert pool.map(_square, range(5)) == [0, 1, 4, 9, 16]
    with process_pool(2) as pool:
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_orphaned_workers_stderr_exits_instead_of_printing():
    # the fallback's guard for a task that ends between the parent's death and the next poll
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            out = os.fdopen(w, "w")
            _SilentOrphan(out, os.getppid(), True).write("parent alive\n")
            out.flush()
            _SilentOrphan(out, os.getpid(), True).write("parent gone\n")  # not our parent: exits
        finally:
            os._exit(3)
    os.close(w)
    with os.fdopen(r) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert text == "parent alive\n"


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_ordered_map_keeps_the_job_order(workers):
    with ordered_map(_square_and_pid, range(20), workers, chunksize=3) as results:
        out = list(results)
    assert [value for value, _ in out] == [x * x for x in range(20)]
    in_this_process = {pid for _, pid in out} == {os.getpid()}
    assert in_this_process == (workers == 1)  # a pool only with more than one worker
