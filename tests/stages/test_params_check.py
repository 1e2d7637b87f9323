"""Every stage validates the whole params.yaml before any work: a typo in a section the stage
never reads still stops it, fast, naming the key, with nothing written."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from skelrep.code_deps import stage_digest, stage_scripts
from skelrep.params import load_params

from ..conftest import REPO_ROOT
from ..dvc_stages import stage_args
from ..test_code_deps import write_tree
from .test_dvc_deps import expanded_stages, script_of

# one stage of each group, with the arguments dvc.yaml gives it
STAGE = {"download": "download@ntu60", "preprocess": "preprocess@ntu60", "detect": "detect", "report": "report",
         "check": "check", "transfer": "transfer@ntu60-xsub-to-pku2-xsub"}


def _scripts() -> dict[str, str]:
    """dvc.yaml stage group -> its script."""
    return {group: script_of(d["cmd"]) for group, _, d in expanded_stages()}


def _run_all(tmp_path, params: dict, groups) -> dict[str, tuple[subprocess.CompletedProcess, float, list[str]]]:
    """Each stage of ``groups`` in its own empty folder holding only ``params``, all at once."""
    procs = {}
    for group, script in _scripts().items():
        if group not in groups:
            continue
        work = tmp_path / group
        work.mkdir(parents=True)
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        cmd = [sys.executable, str(REPO_ROOT / script), *stage_args(STAGE.get(group, f"{group}@ntu60-xsub"))]
        procs[group] = (subprocess.Popen(cmd, cwd=work, env={**_env(), "DVC_ROOT": str(work)}, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE), time.monotonic(), work)
    results = {}
    for group, (proc, start, work) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[group] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
                          time.monotonic() - start, sorted(p.name for p in work.iterdir()))
    return results


def _env() -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": "sqlite:///unused.db"}


def test_every_stage_is_in_the_test():
    assert set(_scripts()) == {"check", "download", "preprocess", "pretrain", "features", "linear", "knn",
                               "finetune", "transfer", "detect", "report"}


def test_a_typo_in_an_unrelated_section_stops_every_stage_first(tmp_path):
    params = load_params(REPO_ROOT / "params.yaml")
    # `detection` is read by no stage but detect; detect gets its typo in `linear`
    params["detection"]["epochz"] = params["detection"].pop("epochs")
    results = _run_all(tmp_path / "detection", params, set(_scripts()) - {"detect"})
    params["detection"]["epochs"] = params["detection"].pop("epochz")
    params["linear"]["epochz"] = params["linear"].pop("epochs")
    results.update(_run_all(tmp_path / "linear", params, {"detect"}))
    assert set(results) == set(_scripts())
    for group, (proc, seconds, files) in results.items():
        key = "linear.epochz" if group == "detect" else "detection.epochz"
        assert proc.returncode == 2, f"{group}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        assert f"error: params.yaml: {key}: unknown key; allowed keys: " in proc.stderr, f"{group}: {proc.stderr}"
        assert "Traceback" not in proc.stderr, group
        assert files == ["params.yaml"], f"{group} wrote {files} before validating"
        assert seconds < 120, f"{group} took {seconds:.0f} s to fail"  # imports only (2 cores, all at once)


def test_an_unknown_method_stops_the_check_stage_with_the_methods(tmp_path):
    params = load_params(REPO_ROOT / "params.yaml")
    params["method"] = "simclr"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "check.py"), *stage_args("check")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: params.yaml: method: got 'simclr'; allowed: usdrl, umurl, isc" in proc.stderr
    assert not (tmp_path / "reports").exists()


def _run_check(cwd) -> dict[str, bytes]:
    """The check stage's outputs (repository-relative path -> bytes), run in ``cwd``."""
    subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "check.py"), *stage_args("check")],
                   cwd=cwd, check=True, capture_output=True, timeout=120)
    return {p.relative_to(cwd).as_posix(): p.read_bytes() for p in sorted((cwd / "reports").rglob("*")) if p.is_file()}


def test_the_check_stage_writes_the_same_bytes_for_any_valid_params(tmp_path):
    """Its outputs are what every stage depends on: they must not change with valid params."""
    outputs = []
    for lr in (0.1, 0.2):
        params = load_params(REPO_ROOT / "params.yaml")
        params["linear"]["lr"] = lr
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        outputs.append(_run_check(tmp_path))
    assert outputs[0] == outputs[1]
    assert outputs[0].pop("reports/params_check.txt") == b"params.yaml: every section valid\n"
    # one digest per stage script: a sha256 and a repository-relative path per file it loads
    assert sorted(outputs[0]) == sorted(f"reports/code/{Path(s).stem}.txt" for s in stage_scripts(REPO_ROOT))
    for name, data in outputs[0].items():
        text = data.decode()
        assert str(REPO_ROOT) not in text
        rows = [line.split("  ") for line in text.splitlines() if not line.startswith("#")]
        paths = [path for _, path in rows]
        assert paths and paths == sorted(paths), name
        for digest, path in rows:
            assert digest == hashlib.sha256((REPO_ROOT / path).read_bytes()).hexdigest(), path


def test_a_stage_digest_changes_with_any_file_the_stage_loads_and_no_other(tmp_path):
    """What makes a stage re-run when a file it loads changes, and only then (stages/check.py)."""
    write_tree(tmp_path, {
        "stages/check.py": "", "stages/a.py": "from skelrep import x\n", "stages/b.py": "import skelrep.y\n",
        "src/skelrep/__init__.py": '"""doc"""\n', "src/skelrep/x.py": "def f():\n    from .z import g\n",
        "src/skelrep/y.py": "", "src/skelrep/z.py": "", "src/skelrep/data/t.yaml": "a: 1\n",
        "src/skelrep/w.py": 'from importlib.resources import files\nP = files("skelrep").joinpath("data")\n'})
    assert stage_scripts(tmp_path) == ["stages/a.py", "stages/b.py"]
    before = {s: stage_digest(tmp_path, s) for s in ("stages/a.py", "stages/b.py")}
    assert [line.split("  ")[1] for line in before["stages/a.py"].splitlines()[1:]] == [
        "src/skelrep/x.py", "src/skelrep/z.py"]  # z: a lazy import inside a function
    for edited, changes in (("src/skelrep/z.py", "stages/a.py"), ("src/skelrep/y.py", "stages/b.py")):
        original = (tmp_path / edited).read_text()
        (tmp_path / edited).write_text(original + "# edited\n")
        after = {s: stage_digest(tmp_path, s) for s in before}
        assert [s for s in before if after[s] != before[s]] == [changes], edited
        (tmp_path / edited).write_text(original)
    # a new import is a new line: the deps follow the code
    (tmp_path / "stages/b.py").write_text("import skelrep.y\nimport skelrep.w\n")
    lines = stage_digest(tmp_path, "stages/b.py").splitlines()[1:]
    assert [line.split("  ")[1] for line in lines] == ["src/skelrep/data/t.yaml", "src/skelrep/w.py",
                                                        "src/skelrep/y.py"]  # package data: each file


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO_ROOT / "stages").glob("*.py")))
def test_every_stage_script_calls_validate_all(script):
    source = (REPO_ROOT / "stages" / script).read_text()
    assert "validate_all(" in source, f"stages/{script} does not validate the whole params.yaml"
