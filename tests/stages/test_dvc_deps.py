"""dvc.yaml deps cannot drift from the code: every project file a stage loads is covered by its deps.

A stage lists its script, the check stage's digest of the code that script loads
(``reports/code/<stage>.txt``: ``skelrep.code_deps`` reads the imports, transitively, lazy ones
inside functions included, plus the package data a module names) and its pipeline files. These
tests check that digest against what really happens, for every stage of dvc.yaml (each
``foreach`` item expanded from params.yaml, as DVC does):

- **modules**: the stage script is run in a subprocess, with ``__name__`` other than
  ``"__main__"`` (its imports run, ``main`` does not) and no project module loaded before;
  every loaded module file under ``src/skelrep``, and what it imports in turn, must be covered
  (what only the interpreter saw, e.g. ``importlib.import_module``, is a module the digest
  misses: import it by name, or teach ``skelrep.code_deps``).
- **pipeline files**: paths live on the command lines: every ``data/``, ``models/`` or
  ``reports/`` path of a stage's ``cmd`` is one of its outputs or covered by a dep, and the
  stage script itself names none (beyond :data:`NOT_DEPS`), so the two cannot disagree.

A file is covered by a dep that is the file or a folder holding it, or by the digest file it
depends on. ``skelrep.validation``, which every stage runs first, decides only *whether* a stage
runs, never what it writes, and never changes the params (tests/test_validation.py), so its
(lazy) imports are deps of the ``check`` stage, which re-runs whenever any of them changes.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from skelrep.code_deps import ImportGraph, entry_files, stage_digest, stage_scripts, string_parts

from ..conftest import REPO_ROOT
from ..dvc_stages import expand_stages

SRC = REPO_ROOT / "src"
CHECK_STAGE = "check"
PIPELINE_ROOTS = ("data", "models", "reports")
GRAPH = ImportGraph(REPO_ROOT)

# Paths a stage script names that are deliberately neither dep nor output, with the reason.
NOT_DEPS = {
    "download": {"data": "data/.download-cache: partial downloads resume there (DVC must never delete it)"},
    "pretrain": {"models/.resume/*": "resume state of an interrupted run, deleted on completion"},
    "finetune": {"models/.resume/finetune": "resume state of an interrupted run, deleted on completion"},
    "transfer": {"models/.resume/transfer": "resume state of an interrupted run, deleted on completion"},
    "detect": {"models/.resume/detect": "resume state of an interrupted dense fine-tune, deleted on completion"},
}


# --- dvc.yaml, expanded ------------------------------------------------------------------------


def _paths(entries) -> list[str]:
    """dvc.yaml ``deps`` / ``outs`` entries (a path or ``{path: options}``) as paths."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


@cache
def expanded_stages() -> tuple[tuple[str, str, dict], ...]:
    """``(group, name, definition)`` of every stage, ``foreach`` items expanded."""
    return expand_stages()


def stage_groups() -> list[str]:
    return list(dict.fromkeys(group for group, _, _ in expanded_stages()))


def script_of(cmd: str) -> str:
    match = re.match(r"python\s+(stages/\S+\.py)\b", cmd)
    assert match, f"stage command {cmd!r} does not run a stages/*.py script"
    return match.group(1)


def outputs_of(definition: dict) -> list[str]:
    return [p for kind in ("outs", "metrics", "plots") for p in _paths(definition.get(kind))]


# --- what a script loads ------------------------------------------------------------------------

_PROBE = """
import json, runpy, sys
loaded = {}
for script in sys.argv[1:]:
    # a clean slate of project modules for each script; third-party ones (torch) stay loaded
    for name in [n for n in sys.modules if n == "skelrep" or n.startswith("skelrep.")]:
        del sys.modules[name]
    sys.argv[0] = script
    runpy.run_path(script, run_name="__dvc_deps_probe__")
    loaded[script] = sorted(n for n, m in list(sys.modules.items())
                            if (n == "skelrep" or n.startswith("skelrep.")) and getattr(m, "__file__", None))
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def runtime_modules() -> dict[str, set[str]]:
    """script -> the skelrep modules loaded by running its top level (not ``main``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    scripts = sorted({script_of(d["cmd"]) for _, _, d in expanded_stages()})
    proc = subprocess.run([sys.executable, "-c", _PROBE, *scripts], cwd=REPO_ROOT, env=env, text=True,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, f"importing the stage scripts failed:\n{proc.stderr}"
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(loaded["stages/check.py"]) >= {"skelrep.validation", "skelrep.params"}
    return {script: set(names) for script, names in loaded.items()}


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


def check_stage() -> dict:
    """The check stage's definition in dvc.yaml."""
    return next(d for group, _, d in expanded_stages() if group == CHECK_STAGE)


def digest_of(script: str) -> str:
    """The check stage's output that records the code ``script`` loads."""
    code_dir = check_stage()["cmd"].split("--code-dir", 1)[1].split()[0]
    return f"{code_dir}/{Path(script).stem}.txt"


@cache
def digested_files(script: str) -> tuple[str, ...]:
    """The files the check stage hashes into ``digest_of(script)``, read from the text it writes."""
    text = stage_digest(REPO_ROOT, script, GRAPH)
    return tuple(line.split("  ", 1)[1] for line in text.splitlines() if not line.startswith("#"))


def effective_deps(script: str, deps: list[str]) -> list[str]:
    """A stage's deps, with the files of the code digest it depends on."""
    return deps + (list(digested_files(script)) if digest_of(script) in deps else [])


# --- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("group", stage_groups())
def test_stage_deps_cover_every_project_file_it_loads(group, runtime_modules):
    problems = []
    for _, name, definition in (s for s in expanded_stages() if s[0] == group):
        script = script_of(definition["cmd"])
        deps = _paths(definition.get("deps"))
        runtime = frozenset(runtime_modules[script])
        code = GRAPH.stage_code(script, follow_validation=group == CHECK_STAGE, runtime=runtime)
        # a package-data folder: each of its files (the digest lists files)
        needed = {script: "the command", **{f.relative_to(REPO_ROOT).as_posix(): why for entry, why in code.items()
                                            for f in entry_files(REPO_ROOT, [entry])}}
        missing = {p: why for p, why in needed.items() if not covered(p, effective_deps(script, deps))}
        if missing:
            problems.append(f"stage {name} ({script}) loads project files its deps do not cover:\n"
                            + "".join(f"    {p}  ({why})\n" for p, why in missing.items()))
    assert not problems, "\n".join(problems)


def test_each_stage_depends_on_its_own_code_digest_and_lists_no_source_file():
    """The digest replaces the source files in the deps: a stage lists its script and
    ``reports/code/<stage>.txt``, no other stage's digest and no file under src/ (that would be
    hashed twice, once by DVC, once in the digest)."""
    problems = []
    check = check_stage()
    digests = set(_paths(check["outs"])[1:])
    for group, name, definition in expanded_stages():
        if group == CHECK_STAGE:
            continue
        script = script_of(definition["cmd"])
        deps = _paths(definition.get("deps"))
        if digest_of(script) not in deps:
            problems.append(f"stage {name} does not depend on {digest_of(script)}")
        others = sorted(d for d in deps if d in digests and d != digest_of(script))
        sources = sorted(d for d in deps if d.startswith("src/"))
        if others or sources:
            problems.append(f"stage {name} lists {others + sources}")
    assert not problems, "\n".join(problems)


def test_the_check_stage_writes_one_digest_per_stage_script():
    """Its outputs are its marker file and one digest per script of stages/ but its own, each
    script run by a stage of dvc.yaml (a digest nobody depends on would be work for nothing)."""
    check = check_stage()
    marker, *digests = _paths(check["outs"])
    scripts = stage_scripts(REPO_ROOT)
    assert sorted(digests) == sorted(digest_of(s) for s in scripts)
    used = {script_of(d["cmd"]) for g, _, d in expanded_stages() if g != CHECK_STAGE}
    assert used == set(scripts), "stage scripts without a stage, or stages of another script"
    # the check stage re-runs when any script or any project file changes
    assert {"stages", "src/skelrep"} <= set(_paths(check["deps"]))


def test_a_digest_holds_the_code_its_script_loads_and_nothing_else():
    """Each digest is the script's import closure: the package modules it loads (the stage server,
    the method registry, the stage's own evaluation code), not the validators (the check stage's
    code), not another script, and no file twice."""
    scripts = stage_scripts(REPO_ROOT)
    for script in scripts:
        digested = digested_files(script)
        assert digested and len(digested) == len(set(digested)), script
        assert all(f.startswith("src/skelrep/") and (REPO_ROOT / f).is_file() for f in digested), script
        assert "src/skelrep/validation.py" not in digested, script
        assert "src/skelrep/params.py" in digested, script  # every stage reads params.yaml
    knn, pretrain = digested_files("stages/knn.py"), digested_files("stages/pretrain.py")
    assert "src/skelrep/stage_server.py" in knn and "src/skelrep/evaluation/knn.py" in knn
    assert "src/skelrep/training/pretrain.py" in pretrain and "src/skelrep/evaluation/knn.py" not in pretrain
    assert "src/skelrep/data/missing/ntu60_missing_skeletons.txt" in digested_files("stages/preprocess.py")


def _pipeline_paths(script: str) -> set[str]:
    """The data/, models/, reports/ paths a stage script names (f-string placeholders as *);
    dict keys (``{"data": ...}``) are names, not paths."""
    tree = ast.parse((REPO_ROOT / script).read_text(encoding="utf-8"))
    keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys if k is not None}
    return {text.rstrip("/") for text, node in string_parts(tree)
            if text.split("/")[0] in PIPELINE_ROOTS and id(node) not in keys}


def _related(pattern: str, path: str) -> bool:
    """``path`` is the pattern's file, inside its folder, or a folder holding it."""
    return (fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*")
            or pattern.startswith(path.rstrip("/") + "/"))


def _cmd_paths(cmd: str) -> list[str]:
    """The data/, models/, reports/ paths on a stage's command line."""
    return [token.rstrip("/") for token in cmd.split() if token.split("/")[0] in PIPELINE_ROOTS]


@pytest.mark.parametrize("group", stage_groups())
def test_every_path_on_a_command_line_is_a_dep_or_an_output(group):
    problems = []
    for _, name, definition in (s for s in expanded_stages() if s[0] == group):
        deps, outs = _paths(definition.get("deps")), outputs_of(definition)
        for path in _cmd_paths(definition["cmd"]):
            if path in NOT_DEPS.get(group, {}):
                continue
            # the path, a folder holding it or a folder of deps/outputs (models/<p>: the two encoders)
            if not (any(_related(path, o) or _related(o, path) for o in outs)
                    or any(_related(d, path) for d in deps) or covered(path, deps)):
                problems.append(f"stage {name}: {path!r} is on its command line but neither a dep nor an output")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("group", stage_groups())
def test_stage_scripts_take_their_paths_from_the_command_line(group):
    script = script_of(next(d for g, _, d in expanded_stages() if g == group)["cmd"])
    named = sorted(p for p in _pipeline_paths(script) if p not in NOT_DEPS.get(group, {}))
    assert not named, f"{script} names pipeline paths {named}: pass them on the dvc.yaml command line"


def test_the_path_checks_see_paths():
    """Controls: the checks above would see a path on a command line and one in a script."""
    assert _cmd_paths("python stages/x.py --data data/processed/ntu60.h5 --out models/p/") == [
        "data/processed/ntu60.h5", "models/p"]
    assert "reports/linear/*/metrics.json" in {t for t, _ in string_parts(ast.parse(
        'p = f"reports/linear/{protocol}/metrics.json"'))}


def test_every_stage_waits_for_the_params_check():
    """The check stage validates the whole params.yaml first; every other stage depends on it."""
    stages = expanded_stages()
    check = check_stage()
    assert check["params"] == [{"params.yaml": None}]  # the whole file: any change re-runs it
    marker = _paths(check["outs"])  # the marker file, then the stages' code digests
    assert marker[0] == "reports/params_check.txt"
    missing = [name for group, name, d in stages if group != CHECK_STAGE and marker[0] not in _paths(d.get("deps"))]
    assert not missing, f"stages not depending on {marker[0]}: {', '.join(missing)}"
