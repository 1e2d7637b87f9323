"""Where the default pipeline's time goes, stage by stage: start-up and imports, work, DVC.

Full mode (default): clones HEAD (or ``--rev``) into a temporary folder and runs ``dvc repro``
there, the default pipeline of ``make run``, with this interpreter's environment (its ``dvc``,
and its ``python`` for the stage commands) and MLflow tracking into the clone's ``mlflow.db``.
The stage commands' ``python`` is a shim placed first on PATH: it runs the real interpreter with
``-X importtime`` and records per DVC stage (``DVC_STAGE``) the command's wall time and the time
its imports took (top-level imports summed, so also those made lazily inside functions: torch,
mlflow ...); the rest is the stage's work. DVC's bookkeeping around a stage (its start-up, hashing
deps, the run cache, committing outputs to the cache, rewriting dvc.lock) is the time between one
command's end and the next one's start. A fixed calibration workload (``import torch``, matmuls, a
Python loop) is timed before and after the run: the machine's speed of the moment, which on a
shared VM moves by half within an hour. About 6-15 minutes on 2 cores.

``--startup-only``: no pipeline. Per stage script: the wall time of ``python stages/<x>.py
--help`` (median of ``--repeat``), the imports of that process and the heavy packages it loads;
then the fixed costs a stage pays inside ``main``: reading and validating params.yaml (every
stage's first step), ``import torch``, and an MLflow run opened and closed by
``skelrep.tracking.stage_run`` (import, sqlite store, experiment, search, run) on a new and on an
existing database, with three 30-epoch curves logged. About a minute on 2 idle cores.

    python benchmarks/stage_times.py --startup-only
    python benchmarks/stage_times.py                        # the whole default pipeline
    python benchmarks/stage_times.py --targets knn@pku2-xsub --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mlflow", "sqlalchemy", "pandas", "matplotlib", "h5py", "scipy")

# The stand-in for `python` on the stage commands' PATH. `-S`: no site (so neither the venv's
# PATH hook nor any package import runs in the shim itself); stdlib only.
SHIM = '''#!{python} -S
import json, os, subprocess, sys, time
start = time.time()
proc = subprocess.Popen([{python!r}, "-X", "importtime", *sys.argv[1:]], stderr=subprocess.PIPE)
imports_us = 0
for line in proc.stderr:
    if line.startswith(b"import time:"):
        fields = line.split(b"|")  # self | cumulative | name, indented by nesting level
        if len(fields) == 3 and fields[1].strip().isdigit() and not fields[2].startswith(b"  "):
            imports_us += int(fields[1])
        continue
    sys.stderr.buffer.write(line)
    sys.stderr.buffer.flush()
rc = proc.wait()
record = {{"stage": os.environ.get("DVC_STAGE", ""), "argv": sys.argv[1:], "start": start,
          "end": time.time(), "imports": imports_us / 1e6, "rc": rc}}
with open({log!r}, "a") as f:
    f.write(json.dumps(record) + "\\n")
sys.exit(rc)
'''

# dvc, started by this interpreter: the venv's PATH hook (tools/venv_path.pth) puts the venv's
# bin/ first when the interpreter starts, so the shim's folder goes first after that.
DVC_MAIN = ("import os, sys; os.environ['PATH'] = sys.argv[1] + os.pathsep + os.environ['PATH']; "
            "from dvc.cli import main; sys.exit(main(sys.argv[2:]))")

# What every stage does first (its imports included).
VALIDATE = ("from skelrep.params import load_params; from skelrep.validation import validate_all; "
            "validate_all(load_params('params.yaml'))")

# One MLflow run of the default configuration, opened and closed as a stage does (fresh process).
MLFLOW_PROBE = r'''
import json, sys, time
t0 = time.perf_counter()
import mlflow  # noqa: F401
t1 = time.perf_counter()
from skelrep.config import run_identity
from skelrep.params import load_params
from skelrep.tracking.mlflow_run import epoch_curves, stage_run
identity = run_identity(load_params("params.yaml"), "pku2-xsub")
t2 = time.perf_counter()
with stage_run(identity, sys.argv[1]) as run:
    t3 = time.perf_counter()
    rows = [{"epoch": e, "loss": 1 / (e + 1), "train_top1": e, "test_top1": e / 2} for e in range(30)]
    for prefix in (sys.argv[1], f"{sys.argv[1]}/random_init", f"{sys.argv[1]}/handcrafted"):  # new points
        run.log_curves(epoch_curves(rows, prefix, suffix="_curve"))
    t4 = time.perf_counter()
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open": t3 - t2, "curves": t4 - t3, "close": t5 - t4}))
'''


def clone(rev: str, tmp: Path) -> Path:
    path = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(path)], check=True)
    if rev != "HEAD":
        subprocess.run(["git", "-C", str(path), "checkout", "-q", rev], check=True)
    return path


def stage_env(root: Path, extra_pythonpath: list[str]) -> dict[str, str]:
    """The environment of ``make run``, the clone's own package first on the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": os.pathsep.join([str(root / "src"), *extra_pythonpath]),
                "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    return env


def import_times(text: str) -> tuple[float, set[str]]:
    """``(seconds, root packages)`` of the ``-X importtime`` lines in ``text``."""
    total, roots = 0, set()
    for line in text.splitlines():
        fields = line.split("|")
        if line.startswith("import time:") and len(fields) == 3 and fields[1].strip().isdigit():
            roots.add(fields[2].strip().split(".")[0])
            if not fields[2].startswith("  "):
                total += int(fields[1])
    return total / 1e6, roots


def startup_only(root: Path, env: dict[str, str], repeat: int) -> None:
    python = sys.executable
    print(f"Start-up per stage script (`python stages/<x>.py --help`, median of {repeat}; "
          f"load average {os.getloadavg()[0]:.1f} at the start)\n")
    print("| stage script | --help (s) | imports (s) | heavy packages loaded |\n|---|---|---|---|")
    for script in sorted((root / "stages").glob("*.py")):
        walls = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([python, str(script), "--help"], cwd=root, env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
        out = subprocess.run([python, "-X", "importtime", str(script), "--help"], cwd=root, env=env, check=True,
                             capture_output=True, text=True)
        seconds, roots = import_times(out.stderr)
        heavy = ", ".join(p for p in HEAVY if p in roots) or "-"
        print(f"| {script.stem} | {statistics.median(walls):.2f} | {seconds:.2f} | {heavy} |")

    def timed(code: str, *args: str, cwd: Path = root, extra: dict | None = None) -> tuple[float, str]:
        t0 = time.perf_counter()
        out = subprocess.run([python, "-c", code, *args], cwd=cwd, env={**env, **(extra or {})}, check=True,
                             capture_output=True, text=True)
        return time.perf_counter() - t0, out.stdout

    bare = statistics.median(timed("pass")[0] for _ in range(repeat))
    torch = statistics.median(timed("import torch")[0] for _ in range(repeat)) - bare
    check = statistics.median(timed(VALIDATE)[0] for _ in range(repeat)) - bare
    print(f"\nPaid inside a stage's main (fresh processes, each beyond the python start-up of {bare:.2f} s): "
          f"reading and validating params.yaml, every stage's first step, {check:.2f} s; `import torch` "
          f"{torch:.2f} s.\n")
    print("| MLflow run (stage_run, sqlite) | import mlflow (s) | open run (s) | log 3 x 4 curves x 30 epochs (s) "
          "| close (s) | process (s) |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="skelrep-mlflow-") as db_root:
        extra = {"DVC_ROOT": db_root}  # stage_run tracks into <DVC_ROOT>/mlflow.db
        for label, stage in (("new database (the first stage)", "probe1"), ("existing database", "probe2")):
            wall, out = timed(MLFLOW_PROBE, stage, extra=extra)
            t = json.loads(out.strip().splitlines()[-1])
            print(f"| {label} | {t['import']:.2f} | {t['open']:.2f} | {t['curves']:.2f} | {t['close']:.2f} "
                  f"| {wall:.2f} |")


# A fixed workload timed before and after a run, in a fresh process each: this machine's speed of
# the moment (a shared VM's moves by half within an hour, more than most changes measured here),
# so two runs compare only as far as their calibrations agree.
CALIBRATION = """
import time
t = time.perf_counter(); import torch; imp = time.perf_counter() - t
torch.set_num_threads(2)
a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
t = time.perf_counter()
for _ in range(2000): a @ a
mm = time.perf_counter() - t
t = time.perf_counter(); sum(i * i for i in range(3_000_000)); py = time.perf_counter() - t
print(f"import torch {imp:.2f} s, 2000 matmuls 256^3 (2 threads) {mm:.2f} s, a Python loop {py:.2f} s")
"""


def calibrate(env: dict[str, str]) -> str:
    """The calibration workload's times (:data:`CALIBRATION`), in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CALIBRATION], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def full_run(root: Path, env: dict[str, str], tmp: Path, targets: list[str]) -> int:
    shim_dir, log = tmp / "shim", tmp / "stage_times.jsonl"
    shim_dir.mkdir()
    (shim_dir / "python").write_text(SHIM.format(python=sys.executable, log=str(log)))
    (shim_dir / "python").chmod(0o755)
    dvc_log = tmp / "dvc_repro.log"
    before = calibrate(env)
    print(f"dvc repro {' '.join(targets)} in {root} (output: {dvc_log}); load average "
          f"{os.getloadavg()[0]:.1f} at the start", file=sys.stderr, flush=True)
    t0 = time.time()
    with open(dvc_log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", DVC_MAIN, str(shim_dir), "repro", *targets], cwd=root,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)  # its own group: see below
        interrupted = False
        try:
            for line in proc.stdout:
                out.write(line)
                if line.startswith("Running stage"):
                    print(f"  +{time.time() - t0:5.0f} s  {line.strip()}", file=sys.stderr, flush=True)
            rc = proc.wait()
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM, below): the table of the stages that finished
            os.killpg(proc.pid, signal.SIGTERM)  # dvc and the stage it runs
            rc = proc.wait()
            print("interrupted: the stages that finished", file=sys.stderr)
            interrupted = True
    t_end = time.time()
    load = os.getloadavg()
    after = calibrate(env)
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if rc and not interrupted:
        tail_of_log = "".join(dvc_log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        print(f"dvc repro failed (exit {rc}); the end of its output:\n{tail_of_log}", file=sys.stderr)

    stages: dict[str, dict] = {}  # per DVC stage, in run order; several processes of one stage summed
    previous_end = t0
    for r in sorted(records, key=lambda r: r["start"]):
        s = stages.setdefault(r["stage"] or " ".join(r["argv"][:1]),
                              {"command": 0.0, "imports": 0.0, "dvc": 0.0})
        s["dvc"] += max(0.0, r["start"] - previous_end)
        s["command"] += r["end"] - r["start"]
        s["imports"] += r["imports"]
        previous_end = max(previous_end, r["end"])
    tail = t_end - previous_end

    print(f"`dvc repro {' '.join(targets)}`: {len(stages)} stages, {t_end - t0:.0f} s wall "
          f"(load average 1/5/15 min at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})\n"
          f"Machine speed (the calibration workload), before: {before}; after: {after}\n")
    print("| stage | total (s) | DVC before it (s) | command (s) | imports (s) | work (s) |\n|---|---|---|---|---|---|")
    for name, s in stages.items():
        print(f"| {name} | {s['dvc'] + s['command']:.1f} | {s['dvc']:.1f} | {s['command']:.1f} | {s['imports']:.1f} "
              f"| {s['command'] - s['imports']:.1f} |")
    if interrupted:  # the unfinished stage, not DVC: left out of the sums below
        print(f"| (interrupted: the unfinished stage) | {tail:.1f} | | | | |")
        tail = 0.0
    else:
        print(f"| (DVC after the last command) | {tail:.1f} | {tail:.1f} | | | |")

    groups: dict[str, dict] = {}
    for name, s in stages.items():
        g = groups.setdefault(name.split("@")[0], {"n": 0, "command": 0.0, "imports": 0.0, "dvc": 0.0})
        g["n"] += 1
        for key in ("command", "imports", "dvc"):
            g[key] += s[key]
    print("\n| stage group | stages | total (s) | DVC (s) | imports (s) | work (s) |\n|---|---|---|---|---|---|")
    for name, g in groups.items():
        print(f"| {name} | {g['n']} | {g['dvc'] + g['command']:.1f} | {g['dvc']:.1f} | {g['imports']:.1f} "
              f"| {g['command'] - g['imports']:.1f} |")
    dvc = sum(s["dvc"] for s in stages.values()) + tail
    imports = sum(s["imports"] for s in stages.values())
    work = sum(s["command"] - s["imports"] for s in stages.values())
    print(f"| **all** | {len(stages)} | {dvc + imports + work:.1f} | {dvc:.1f} | {imports:.1f} | {work:.1f} |")
    print(f"\nFixed per-stage cost (DVC + imports): {dvc + imports:.0f} s of {t_end - t0:.0f} s, "
          f"{(dvc + imports) / max(len(stages), 1):.1f} s per stage. Work includes each stage's MLflow "
          "logging (minus its imports) and its Python start-up before the first import.")
    return rc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--startup-only", action="store_true",
                        help="time each stage script's --help and the lazy fixed costs only (no pipeline)")
    parser.add_argument("--rev", default="HEAD", help="the commit to clone and time")
    parser.add_argument("--targets", nargs="*", default=[], help="dvc repro targets (default: the whole pipeline)")
    parser.add_argument("--repeat", type=int, default=3, help="--startup-only: runs per measurement")
    parser.add_argument("--extra-pythonpath", action="append", default=[],
                        help="a folder appended to PYTHONPATH of dvc and the stages (e.g. a package to try)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (and the logs)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID`: stop as Ctrl-C does
    tmp = Path(tempfile.mkdtemp(prefix="skelrep-stage-times-"))
    try:
        root = clone(args.rev, tmp)
        env = stage_env(root, args.extra_pythonpath)
        if args.startup_only:
            startup_only(root, env, args.repeat)
            return 0
        return full_run(root, env, tmp, args.targets)
    finally:
        if args.keep:
            print(f"kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
