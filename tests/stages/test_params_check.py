"""Every stage validates the whole params.yaml before any work: a typo in a section the stage
never reads still stops it, fast, naming the key, with nothing written."""

from __future__ import annotations

import hashlib
import runpy
import subprocess
import sys
import time

import pytest
import yaml

from skelrep.params import load_params

from ..conftest import REPO_ROOT
from ..dvc_stages import stage_args
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


def _run_check(cwd) -> bytes:
    subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "check.py"), *stage_args("check")],
                   cwd=cwd, check=True, capture_output=True, timeout=120)
    return (cwd / "reports" / "params_check.txt").read_bytes()


def test_the_check_stage_writes_the_same_bytes_for_any_valid_params(tmp_path):
    """Its output is what every stage depends on: it must not change with valid params."""
    outputs = []
    for lr in (0.1, 0.2):
        params = load_params(REPO_ROOT / "params.yaml")
        params["linear"]["lr"] = lr
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        outputs.append(_run_check(tmp_path))
    assert outputs[0] == outputs[1]
    text = outputs[0].decode()
    assert text.startswith("params.yaml: every section valid\n")
    # the digest of the common code: a sha256 and a repository-relative path per file, nothing else
    check = runpy.run_path(str(REPO_ROOT / "stages" / "check.py"), run_name="not_main")
    rows = [line.split("  ") for line in text.splitlines()[2:]]
    assert [path for _, path in rows] == sorted(check["COMMON_CODE"])  # all files here, no folders
    for digest, path in rows:
        assert digest == hashlib.sha256((REPO_ROOT / path).read_bytes()).hexdigest(), path
    assert str(REPO_ROOT) not in text
    # one digest file per code group, each listing the group's files (a folder: each of its files)
    for group, entries in check["CODE_GROUPS"].items():
        listed = (tmp_path / "reports" / "code" / f"{group}.txt").read_text().splitlines()[1:]
        paths = [line.split("  ")[1] for line in listed]
        assert paths == sorted(paths) and paths, group
        assert {e for e in entries if (REPO_ROOT / e).is_file()} <= set(paths), group
        assert all(any(p == e or p.startswith(e + "/") for e in entries) for p in paths), group


def test_the_check_output_changes_with_any_file_of_the_common_code(tmp_path):
    """What makes every stage re-run when a file of the common code changes (stages/check.py)."""
    check = runpy.run_path(str(REPO_ROOT / "stages" / "check.py"), run_name="not_main")
    for entry in check["COMMON_CODE"]:
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry).write_text(f"# {entry}\n")
    (tmp_path / "src/skelrep/data/layouts").mkdir()
    (tmp_path / "src/skelrep/data/layouts/a.yaml").write_text("a: 1\n")
    entries = (*check["COMMON_CODE"], "src/skelrep/data/layouts")
    before = check["code_digest"](tmp_path, entries)
    assert "src/skelrep/data/layouts/a.yaml" in before  # a folder: each of its files
    for entry in (check["COMMON_CODE"][0], "src/skelrep/data/layouts/a.yaml"):
        original = (tmp_path / entry).read_bytes()
        (tmp_path / entry).write_bytes(original + b"# edited\n")
        assert check["code_digest"](tmp_path, entries) != before, entry
        (tmp_path / entry).write_bytes(original)
    assert check["code_digest"](tmp_path, entries) == before
    with pytest.raises(FileNotFoundError, match=r"CODE_GROUPS\) names src/skelrep/missing.py"):
        check["code_digest"](tmp_path, ("src/skelrep/missing.py",))


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO_ROOT / "stages").glob("*.py")))
def test_every_stage_script_calls_validate_all(script):
    source = (REPO_ROOT / "stages" / script).read_text()
    assert "validate_all(" in source, f"stages/{script} does not validate the whole params.yaml"
