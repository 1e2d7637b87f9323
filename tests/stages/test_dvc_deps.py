"""dvc.yaml deps cannot drift from the code: every project file a stage loads is one of its deps.

For every stage of dvc.yaml (each ``foreach`` item expanded from params.yaml, as DVC does):

- **modules**: the stage script is run in a subprocess, with ``__name__`` other than
  ``"__main__"`` (its imports run, ``main`` does not) and no project module loaded before,
  and every loaded module file under ``src/skelrep`` is listed. Imports made later, inside
  functions (``from ..x import y`` in a function body), are found by parsing the script and
  every module it loads with ``ast``
  and following each ``skelrep`` import, absolute or relative, transitively. A string in
  entry-point form, ``"skelrep.pkg.module:Name"``, counts as ``from skelrep.pkg.module import
  Name``: the method registry and each method's ``implementation`` name the classes they import
  by name. Package ``__init__`` files that only hold a docstring and literal constants count
  only when a name is imported from them (``from .. import __version__``).
- **package data**: a module that reads a file of its package (``files("skelrep.data")
  .joinpath("layouts", ...)``, ``"missing/<dataset>_....txt"``, ``"published_results.csv"``)
  needs that file or folder too.
- **pipeline files**: paths live on the command lines: every ``data/``, ``models/`` or
  ``reports/`` path of a stage's ``cmd`` is one of its outputs or covered by a dep, and the
  stage script itself names none (beyond :data:`NOT_DEPS`), so the two cannot disagree.

A file is covered by a dep that is the file or a folder holding it. ``skelrep.validation``,
which every stage runs first, decides only *whether* a stage runs, never what it writes, and
never changes the params (tests/test_validation.py), so its (lazy) imports are deps of the
``check`` stage, which re-runs whenever any of them changes; the other stages stop there.

The code every stage loads (``COMMON_CODE`` of stages/check.py: params, schema, I/O, runtime,
protocol and layout modules) is not listed in each stage's deps: the check stage's output records
the sha256 of each of its files, so a stage that depends on that output is covered for them.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import runpy
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from ..conftest import REPO_ROOT
from ..dvc_stages import expand_stages

SRC = REPO_ROOT / "src"
PACKAGE = "skelrep"
VALIDATION = "skelrep.validation"  # a dependency of the check stage only (see the module doc)
CHECK_STAGE = "check"
PIPELINE_ROOTS = ("data", "models", "reports")

# Paths a stage script names that are deliberately neither dep nor output, with the reason.
NOT_DEPS = {
    "download": {"data": "data/.download-cache: partial downloads resume there (DVC must never delete it)"},
    "pretrain": {"models/.resume/*": "resume state of an interrupted run, deleted on completion"},
    "finetune": {"models/.resume/finetune": "resume state of an interrupted run, deleted on completion"},
    "transfer": {"models/.resume/transfer": "resume state of an interrupted run, deleted on completion"},
    "detect": {"models/.resume/detect": "resume state of an interrupted dense fine-tune, deleted on completion"},
}


# --- dvc.yaml, expanded ------------------------------------------------------------------------

_IMPORT_BY_NAME = re.compile(r"(skelrep(?:\.\w+)*):\w+")  # "skelrep.pkg.module:Name"
_FILE_NAME = re.compile(r"[\w][\w.-]*")


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


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_package(name: str) -> bool:
    path = module_file(name)
    return path is not None and path.name == "__init__.py"


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _walk_skipping_type_checking(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and (getattr(node.test, "id", None) == "TYPE_CHECKING"
                                         or getattr(node.test, "attr", None) == "TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def imports_of(path: Path, name: str | None) -> frozenset[tuple[str, bool]]:
    """``(module, used)`` of every skelrep import in ``path`` (module ``name``; None: a script),
    function bodies included. ``used`` is False for a package only traversed to reach a submodule."""
    found: set[tuple[str, bool]] = set()
    package = None if name is None else (name if path.name == "__init__.py" else name.rpartition(".")[0])
    for node in _walk_skipping_type_checking(_parse(path)):
        targets: list[tuple[str, bool]] = []
        if isinstance(node, ast.Import):
            targets = [(alias.name, True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if alias.name != "*" and module_file(sub) is not None:
                    targets += [(sub, True), (source, False)]
                else:
                    targets.append((source, True))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            by_name = _IMPORT_BY_NAME.fullmatch(node.value)
            if by_name and module_file(by_name.group(1)) is not None:
                targets.append((by_name.group(1), True))
        for target, used in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.add((target, used))
                found.update((p, False) for p in _parents(target))
    return frozenset(found)


def _trivial_init(path: Path) -> bool:
    """A package __init__ holding only a docstring, ``from __future__`` and literal constants."""
    for stmt in _parse(path).body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            try:
                ast.literal_eval(stmt.value)
                continue
            except ValueError:
                return False
        return False
    return True


def loaded_closure(script: str, runtime: set[str], follow_validation: bool) -> dict[str, str]:
    """Every skelrep module ``script`` loads at import time or later (lazy imports), transitively,
    each mapped to the module that imports it (``script`` for its own imports, ``<runtime>``)."""
    used: set[str] = set()
    traversed: set[str] = set()
    via: dict[str, str] = {}
    seen: set[str] = set()

    def follow(pending: list[tuple[str, bool, str]]) -> None:
        while pending:
            module, is_used, parent = pending.pop(0)  # breadth first: the shortest import chain
            (used if is_used else traversed).add(module)
            via.setdefault(module, parent)
            if module in seen:
                continue
            seen.add(module)
            path = module_file(module)
            if path is None or (module == VALIDATION and not follow_validation):
                continue
            pending.extend((m, u, module) for m, u in sorted(imports_of(path, module)))

    follow([(m, u, script) for m, u in sorted(imports_of(REPO_ROOT / script, None))])
    # what only the interpreter saw (e.g. importlib.import_module): loaded at import time
    follow([(m, not _is_package(m), "(loaded at import)") for m in sorted(runtime - seen)])
    modules = used | {m for m in traversed - used if module_file(m) and not _trivial_init(module_file(m))}
    if not follow_validation:
        modules.discard(VALIDATION)
    return {m: via[m] for m in sorted(modules) if module_file(m) is not None}


def import_chain(module: str, via: dict[str, str]) -> str:
    chain = [module]
    while chain[-1] in via and len(chain) < 20:
        chain.append(via[chain[-1]])
    return " <- ".join(chain)


def _string_parts(tree: ast.AST):
    """String constants; an f-string as one string with ``*`` for each placeholder."""
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values), node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.value, node


def package_data(path: Path) -> set[Path]:
    """Data files/folders of the module's package that the module names (see the module doc)."""
    package_dir = path.parent
    joinpath_args = {id(a) for n in ast.walk(_parse(path)) if isinstance(n, ast.Call)
                     and getattr(n.func, "attr", None) == "joinpath" for a in n.args}
    found = set()
    for text, node in _string_parts(_parse(path)):
        head = text.split("/")[0]
        if not _FILE_NAME.fullmatch(head) or not ("/" in text or "." in text or id(node) in joinpath_args):
            continue
        candidate = package_dir / head
        if not candidate.exists() or candidate.suffix == ".py" or candidate.name == "__pycache__":
            continue
        if candidate.is_dir() and (candidate / "__init__.py").exists():
            continue  # a subpackage: an import, handled above
        found.add(candidate)
    return found


def required_files(script: str, runtime: set[str], follow_validation: bool) -> dict[str, str]:
    """project file -> why the stage needs it (the import chain that loads it)."""
    via = loaded_closure(script, runtime, follow_validation)
    files = {}
    for module in via:
        path = module_file(module)
        why = import_chain(module, via)
        files.setdefault(path, why)
        for data in package_data(path):
            files.setdefault(data, f"read by {why}")
    return {p.relative_to(REPO_ROOT).as_posix(): why for p, why in sorted(files.items())}


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in deps)


@cache
def code_digests() -> dict[str, tuple[str, ...]]:
    """The check stage's outputs that record code digests (every other stage depends on the first,
    the marker file), each mapped to the files it hashes: COMMON_CODE, then each of CODE_GROUPS."""
    check = next(d for group, _, d in expanded_stages() if group == CHECK_STAGE)
    script = runpy.run_path(str(REPO_ROOT / script_of(check["cmd"])), run_name="__dvc_deps_probe__")
    marker, *groups = _paths(check["outs"])
    code_dir = check["cmd"].split("--code-dir", 1)[1].split()[0]
    assert sorted(groups) == sorted(f"{code_dir}/{g}.txt" for g in script["CODE_GROUPS"]), groups
    return {marker: tuple(script["COMMON_CODE"]),
            **{f"{code_dir}/{g}.txt": tuple(entries) for g, entries in script["CODE_GROUPS"].items()}}


def effective_deps(deps: list[str]) -> list[str]:
    """A stage's deps, with the files of each code digest it depends on."""
    digests = code_digests()
    return deps + [entry for dep in deps for entry in digests.get(dep, ())]


# --- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("group", stage_groups())
def test_stage_deps_cover_every_project_file_it_loads(group, runtime_modules):
    problems = []
    for _, name, definition in (s for s in expanded_stages() if s[0] == group):
        script = script_of(definition["cmd"])
        deps = _paths(definition.get("deps"))
        needed = {script: "the command", **required_files(script, runtime_modules[script],
                                                           follow_validation=group == CHECK_STAGE)}
        missing = {p: why for p, why in needed.items() if not covered(p, effective_deps(deps))}
        if missing:
            problems.append(f"stage {name} ({script}) loads project files its deps do not cover:\n"
                            + "".join(f"    {p}  ({why})\n" for p, why in missing.items()))
    assert not problems, "\n".join(problems)


def _pipeline_paths(script: str) -> set[str]:
    """The data/, models/, reports/ paths a stage script names (f-string placeholders as *);
    dict keys (``{"data": ...}``) are names, not paths."""
    tree = _parse(REPO_ROOT / script)
    keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys if k is not None}
    return {text.rstrip("/") for text, node in _string_parts(tree)
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
    assert "reports/linear/*/metrics.json" in {t for t, _ in _string_parts(ast.parse(
        'p = f"reports/linear/{protocol}/metrics.json"'))}


def test_every_stage_waits_for_the_params_check():
    """The check stage validates the whole params.yaml first; every other stage depends on it."""
    stages = expanded_stages()
    check = next(d for group, _, d in stages if group == CHECK_STAGE)
    assert check["params"] == [{"params.yaml": None}]  # the whole file: any change re-runs it
    marker = _paths(check["outs"])  # the marker file, then the code groups' digests
    assert marker[0] == "reports/params_check.txt"
    missing = [name for group, name, d in stages if group != CHECK_STAGE and marker[0] not in _paths(d.get("deps"))]
    assert not missing, f"stages not depending on {marker[0]}: {', '.join(missing)}"


def test_each_code_digest_holds_only_code_every_stage_depending_on_it_loads(runtime_modules):
    """COMMON_CODE and each code group hold only files that every stage depending on their digest
    loads (anything else would re-run a stage for nothing), each exists, the check stage's deps
    cover them, and no stage lists them again (twice the hashing in dvc.lock for nothing)."""
    check = next(d for group, _, d in expanded_stages() if group == CHECK_STAGE)
    everything = [entry for entries in code_digests().values() for entry in entries]
    assert len(everything) == len(set(everything)), "a file in two code digests"
    assert all((REPO_ROOT / entry).exists() for entry in everything)
    assert all(covered(entry, _paths(check["deps"])) for entry in everything)
    users = dict.fromkeys(code_digests(), 0)
    for group, name, definition in expanded_stages():
        if group == CHECK_STAGE:
            continue
        script = script_of(definition["cmd"])
        needed = required_files(script, runtime_modules[script], follow_validation=False)
        deps = _paths(definition.get("deps"))
        for digest, entries in code_digests().items():
            if digest not in deps:
                continue
            users[digest] += 1
            unused = [entry for entry in entries if not any(covered(path, [entry]) for path in needed)]
            assert not unused, f"stage {name} depends on {digest} but does not load {unused}"
        listed = [d for d in deps if covered(d, effective_deps(deps)[len(deps):])]
        assert not listed, f"stage {name} lists {listed}, which a code digest it depends on covers"
    assert all(users.values()), f"code digests no stage depends on: {users}"


def test_lazy_imports_inside_functions_are_followed():
    # `skelrep compare` imports the report package only inside the command's function body
    modules = set(loaded_closure("src/skelrep/cli.py", set(), follow_validation=True))
    assert {"skelrep.report.compare", "skelrep.report.published", "skelrep.data.protocols"} <= modules
    # a relative import of a name from a package's __init__ makes that __init__ a dependency
    assert "skelrep" in loaded_closure("stages/preprocess.py", set(), follow_validation=False)
    assert "skelrep" not in loaded_closure("stages/knn.py", {"skelrep"}, follow_validation=False)


def test_classes_imported_by_name_are_followed():
    # the registry names each method's MethodInfo, which names its implementation (torch) and
    # its schema (torch-free)
    modules = set(loaded_closure("src/skelrep/methods/__init__.py", set(), follow_validation=False))
    assert {"skelrep.methods.usdrl", "skelrep.methods.usdrl.method", "skelrep.methods.isc.moco",
            "skelrep.methods.umurl.model", "skelrep.methods.usdrl.schema", "skelrep.training.schema"} <= modules


def test_package_data_read_by_a_module_is_found():
    data = SRC / "skelrep" / "data"
    assert package_data(data / "ntu.py") == {data / "missing"}
    assert package_data(data / "layout.py") == {data / "layouts"}
    assert package_data(SRC / "skelrep" / "report" / "published.py") == {
        SRC / "skelrep" / "report" / "published_results.csv"}
