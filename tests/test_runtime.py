"""``skelrep.runtime.run_stage``: how a stage's process ends (in a fresh interpreter each)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

STAGE = """
import atexit, logging, sys
from pathlib import Path
from skelrep.errors import ParamsError
from skelrep.runtime import run_stage, setup_logging

def main():
    setup_logging()
    atexit.register(lambda: Path(sys.argv[1], "teardown-ran").touch())
    Path(sys.argv[1], "out.txt").write_text("done")
    logging.getLogger("stage").info("logged before the end")
    print("printed, still in the buffer", end="")  # stdout is a pipe: block-buffered
    if sys.argv[2] == "fail":
        raise ParamsError("train.lr", "must be positive")

run_stage(main)
"""


def _run(tmp_path, how: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(STAGE), str(tmp_path), how],
                          capture_output=True, text=True, timeout=120)


def test_a_finished_stage_exits_at_once_with_everything_flushed(tmp_path):
    done = _run(tmp_path, "ok")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == "done"
    assert done.stdout == "printed, still in the buffer"
    assert "INFO stage: logged before the end" in done.stderr
    # the interpreter's teardown (atexit handlers, module finalisation) was skipped
    assert not (tmp_path / "teardown-ran").exists()


def test_a_stage_error_is_one_line_and_exit_status_2(tmp_path):
    failed = _run(tmp_path, "fail")
    assert failed.returncode == 2
    assert "error: params.yaml: train.lr: must be positive" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert failed.stdout == "printed, still in the buffer"


def test_under_a_profiler_the_process_exits_normally_so_it_writes_its_data(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent(STAGE))
    profile = tmp_path / "stage.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), str(script), str(tmp_path), "ok"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0 and (tmp_path / "teardown-ran").exists()
