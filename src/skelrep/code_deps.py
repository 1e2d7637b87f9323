"""The project files a stage script loads, found by reading the code: what its DVC deps must cover.

The ``check`` stage writes, per stage script, the sha256 of every file this finds
(``reports/code/<stage>.txt``) and each stage depends on its own digest file instead of naming
those files in dvc.yaml: the deps then follow the imports by construction, and dvc.lock (which
DVC parses and rewrites after every stage, at a cost that grows with each recorded dep) holds
one entry per stage instead of one per file. tests/stages/test_dvc_deps.py checks that what a
script loads when it runs is found here too.

What counts, starting from the script and following every ``skelrep`` import transitively:

- imports anywhere in a module, function bodies included (lazy imports), absolute or relative,
  but not under ``if TYPE_CHECKING:``;
- a string in entry-point form, ``"skelrep.pkg.module:Name"``, as ``from skelrep.pkg.module
  import Name`` (the method registry names its implementations so);
- a package's ``__init__`` when a name is imported from it, or when it holds more than a
  docstring and literal constants (its code runs on the way to a submodule);
- package data a module names: a file or folder of its package (``"layouts"``,
  ``"missing/<dataset>_....txt"``, ``"published_results.csv"``); a folder counts with each
  of its files.

``skelrep.validation`` is not followed for the pipeline's stages: every stage runs it first,
but it only decides *whether* the stage runs (an invalid params.yaml stops it), never what it
writes, so its validators are the check stage's code alone.

Pure standard library: the check stage loads no torch.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "skelrep"
STAGES_DIR = "stages"  # the stage scripts, relative to the repository root
VALIDATION = "skelrep.validation"
_IMPORT_BY_NAME = re.compile(r"(skelrep(?:\.\w+)*):\w+")  # "skelrep.pkg.module:Name"
_FILE_NAME = re.compile(r"[\w][\w.-]*")


class ImportGraph:
    """The ``skelrep`` package under ``root/src``, read with ``ast`` (nothing is imported)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.src = self.root / "src"
        # memoised per graph (the files are read once; a new graph sees edits)
        self.module_file = cache(self._module_file)
        self._parse = cache(self._parse_file)
        self.imports_of = cache(self._imports_of)
        self.package_data = cache(self._package_data)

    def _module_file(self, name: str) -> Path | None:
        base = self.src.joinpath(*name.split("."))
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        return None

    def is_package(self, name: str) -> bool:
        path = self.module_file(name)
        return path is not None and path.name == "__init__.py"

    def _parse_file(self, path: Path) -> ast.Module:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def _imports_of(self, path: Path, name: str | None) -> frozenset[tuple[str, bool]]:
        """``(module, used)`` of every skelrep import in ``path`` (module ``name``; None: a
        script), function bodies included. ``used`` is False for a package only traversed to
        reach a submodule."""
        found: set[tuple[str, bool]] = set()
        package = None if name is None else (name if path.name == "__init__.py" else name.rpartition(".")[0])
        for node in _walk_skipping_type_checking(self._parse(path)):
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
                    if alias.name != "*" and self.module_file(sub) is not None:
                        targets += [(sub, True), (source, False)]
                    else:
                        targets.append((source, True))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                by_name = _IMPORT_BY_NAME.fullmatch(node.value)
                if by_name and self.module_file(by_name.group(1)) is not None:
                    targets.append((by_name.group(1), True))
            for target, used in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    found.add((target, used))
                    found.update((p, False) for p in _parents(target))
        return frozenset(found)

    def trivial_init(self, path: Path) -> bool:
        """A package __init__ holding only a docstring, ``from __future__`` and literal constants."""
        for stmt in self._parse(path).body:
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

    def loaded_closure(self, script: Path, *, follow_validation: bool = False,
                       runtime: frozenset[str] = frozenset()) -> dict[str, str]:
        """Every skelrep module ``script`` loads, transitively, each mapped to the module that
        imports it (``script`` for its own imports). ``runtime``: modules seen loaded when the
        script ran (a test's probe), followed too, as loaded at import."""
        used: set[str] = set()
        traversed: set[str] = set()
        via: dict[str, str] = {}
        seen: set[str] = set()
        label = self._label(script)

        def follow(pending: list[tuple[str, bool, str]]) -> None:
            while pending:
                module, is_used, parent = pending.pop(0)  # breadth first: the shortest import chain
                (used if is_used else traversed).add(module)
                via.setdefault(module, parent)
                if module in seen:
                    continue
                seen.add(module)
                path = self.module_file(module)
                if path is None or (module == VALIDATION and not follow_validation):
                    continue
                pending.extend((m, u, module) for m, u in sorted(self.imports_of(path, module)))

        follow([(m, u, label) for m, u in sorted(self.imports_of(Path(script), None))])
        follow([(m, not self.is_package(m), "(loaded at import)") for m in sorted(set(runtime) - seen)])
        modules = used | {m for m in traversed - used
                          if self.module_file(m) and not self.trivial_init(self.module_file(m))}
        if not follow_validation:
            modules.discard(VALIDATION)
        return {m: via[m] for m in sorted(modules) if self.module_file(m) is not None}

    def _package_data(self, path: Path) -> frozenset[Path]:
        """Data files/folders of the module's package that the module names (module doc)."""
        package_dir = path.parent
        nodes = list(ast.walk(self._parse(path)))  # one walk for both passes below
        joinpath_args = {id(a) for n in nodes if isinstance(n, ast.Call)
                         and getattr(n.func, "attr", None) == "joinpath" for a in n.args}
        found = set()
        for text, node in string_parts(nodes):
            head = text.split("/")[0]
            if not _FILE_NAME.fullmatch(head) or not ("/" in text or "." in text or id(node) in joinpath_args):
                continue
            candidate = package_dir / head
            if not candidate.exists() or candidate.suffix == ".py" or candidate.name == "__pycache__":
                continue
            if candidate.is_dir() and (candidate / "__init__.py").exists():
                continue  # a subpackage: an import, handled above
            found.add(candidate)
        return frozenset(found)

    def stage_code(self, script: str, *, follow_validation: bool = False,
                   runtime: frozenset[str] = frozenset()) -> dict[str, str]:
        """Project file or package-data folder (repository-relative, posix) -> why ``script``
        (repository-relative) needs it: the import chain that loads it. The script itself is
        not included."""
        via = self.loaded_closure(self.root / script, follow_validation=follow_validation, runtime=runtime)
        files: dict[Path, str] = {}
        for module in via:
            path = self.module_file(module)
            why = import_chain(module, via)
            files.setdefault(path, why)
            for data in self.package_data(path):
                files.setdefault(data, f"read by {why}")
        return {p.relative_to(self.root).as_posix(): why for p, why in sorted(files.items())}

    def _label(self, script: Path) -> str:
        try:
            return Path(script).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(script)


def stage_scripts(root: Path, but: str = "check.py") -> list[str]:
    """The stage scripts that get a code digest (repository-relative): every ``stages/*.py``
    but ``but``, the check stage's own script (it depends on the whole package)."""
    return sorted(p.relative_to(root).as_posix() for p in (Path(root) / STAGES_DIR).glob("*.py") if p.name != but)


def stage_digest(root: Path, script: str, graph: ImportGraph | None = None) -> str:
    """The text of a stage's digest file: a comment line, then the sha256 and path of each
    project file ``script`` (repository-relative) loads; the script itself is its own dep."""
    files = (graph or ImportGraph(root)).stage_code(script)
    return f"# the code {script} loads (stages/check.py, skelrep.code_deps)\n" + code_digest(root, files)


def entry_files(root: Path, entries) -> list[Path]:
    """The files of ``entries`` (repository-relative files or folders; a folder: each of its
    files, bytecode caches aside), sorted by path."""
    root = Path(root)
    files = set()
    for entry in entries:
        path = root / entry
        if path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            files.add(path)
        else:
            raise FileNotFoundError(f"{entry} does not exist under {root}")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def code_digest(root: Path, entries) -> str:
    """One ``<sha256>  <path>`` line per file of ``entries`` (paths relative to ``root``)."""
    root = Path(root)
    return "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}\n"
                   for p in entry_files(root, entries))


def import_chain(module: str, via: dict[str, str]) -> str:
    chain = [module]
    while chain[-1] in via and len(chain) < 20:
        chain.append(via[chain[-1]])
    return " <- ".join(chain)


def string_parts(tree: ast.AST | list[ast.AST]):
    """String constants of a tree (or of its nodes, as ``ast.walk`` lists them); an f-string as
    one string with ``*`` for each placeholder."""
    nodes = tree if isinstance(tree, list) else list(ast.walk(tree))
    parts = {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in nodes:
        if isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values), node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            yield node.value, node


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
