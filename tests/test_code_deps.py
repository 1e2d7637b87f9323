"""skelrep.code_deps: the project files a stage script loads, read from its imports (what the check
stage digests and the stages depend on; tests/stages/test_dvc_deps.py compares it with a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skelrep.code_deps import ImportGraph, code_digest, entry_files

from .conftest import REPO_ROOT

SRC = REPO_ROOT / "src"


def write_tree(root: Path, files: dict[str, str]) -> None:
    """A repository under ``root``: each of ``files`` (relative path -> text) written."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _tree(root: Path, files: dict[str, str]) -> ImportGraph:
    write_tree(root, files)
    return ImportGraph(root)


def test_imports_are_followed_transitively_relative_absolute_and_lazy(tmp_path):
    graph = _tree(tmp_path, {
        "s.py": "import skelrep.a\n",
        "src/skelrep/__init__.py": '"""doc"""\nVERSION = "1"\n',
        "src/skelrep/a.py": "from .pkg import b\n",
        "src/skelrep/pkg/__init__.py": "",
        "src/skelrep/pkg/b.py": "def f():\n    from ..c import g  # lazy\n",
        "src/skelrep/c.py": "from skelrep.pkg.d import h\n",
        "src/skelrep/pkg/d.py": "",
        "src/skelrep/unused.py": "",
    })
    assert list(graph.stage_code("s.py")) == [
        "src/skelrep/a.py", "src/skelrep/c.py", "src/skelrep/pkg/b.py", "src/skelrep/pkg/d.py"]
    # why: the shortest import chain
    assert graph.stage_code("s.py")["src/skelrep/pkg/d.py"] == (
        "skelrep.pkg.d <- skelrep.c <- skelrep.pkg.b <- skelrep.a <- s.py")


def test_package_inits_count_when_they_run_code_or_a_name_is_imported_from_them(tmp_path):
    graph = _tree(tmp_path, {
        "s.py": "import skelrep.lit.m\nimport skelrep.code.m\n",
        "t.py": "from skelrep import VERSION\n",
        "src/skelrep/__init__.py": '"""doc"""\nfrom __future__ import annotations\nVERSION = "1"\n',
        "src/skelrep/lit/__init__.py": 'NAMES = ("a", "b")\n',
        "src/skelrep/lit/m.py": "",
        "src/skelrep/code/__init__.py": "import os\n",
        "src/skelrep/code/m.py": "",
    })
    assert list(graph.stage_code("s.py")) == [
        "src/skelrep/code/__init__.py", "src/skelrep/code/m.py", "src/skelrep/lit/m.py"]
    assert list(graph.stage_code("t.py")) == ["src/skelrep/__init__.py"]


def test_type_checking_imports_are_not_loads_and_entry_point_strings_are(tmp_path):
    graph = _tree(tmp_path, {
        "s.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import skelrep.heavy\n"
                "else:\n    import skelrep.light\nIMPL = 'skelrep.impl:Method'\nNOT = 'skelrep.missing:X'\n",
        "src/skelrep/heavy.py": "", "src/skelrep/light.py": "", "src/skelrep/impl.py": "",
    })
    assert list(graph.stage_code("s.py")) == ["src/skelrep/impl.py", "src/skelrep/light.py"]


def test_validation_is_followed_only_when_asked(tmp_path):
    graph = _tree(tmp_path, {
        "s.py": "from skelrep.validation import validate_all\n",
        "src/skelrep/validation.py": "import skelrep.schemas\n", "src/skelrep/schemas.py": "",
    })
    assert list(graph.stage_code("s.py")) == []
    assert list(graph.stage_code("s.py", follow_validation=True)) == [
        "src/skelrep/schemas.py", "src/skelrep/validation.py"]


def test_modules_seen_at_run_time_are_added_with_their_imports(tmp_path):
    graph = _tree(tmp_path, {"s.py": "", "src/skelrep/dyn.py": "import skelrep.dep\n", "src/skelrep/dep.py": ""})
    code = graph.stage_code("s.py", runtime=frozenset({"skelrep.dyn"}))
    assert code == {"src/skelrep/dep.py": "skelrep.dep <- skelrep.dyn <- (loaded at import)",
                    "src/skelrep/dyn.py": "skelrep.dyn <- (loaded at import)"}


def test_a_graph_reads_each_file_once_and_a_new_graph_sees_edits(tmp_path):
    graph = _tree(tmp_path, {"s.py": "import skelrep.a\n", "src/skelrep/a.py": ""})
    assert list(graph.stage_code("s.py")) == ["src/skelrep/a.py"]
    (tmp_path / "s.py").write_text("import skelrep.a\nimport skelrep.b\n")
    (tmp_path / "src/skelrep/b.py").write_text("")
    assert list(graph.stage_code("s.py")) == ["src/skelrep/a.py"]  # parsed before the edit
    assert list(ImportGraph(tmp_path).stage_code("s.py")) == ["src/skelrep/a.py", "src/skelrep/b.py"]


def test_code_digest_lists_each_file_once_sorted_with_its_sha256(tmp_path):
    write_tree(tmp_path, {"src/b.py": "b", "src/a/x.yaml": "x", "src/a/__pycache__/x.pyc": "", "src/c.py": "c"})
    text = code_digest(tmp_path, ["src/c.py", "src/a", "src/b.py", "src/c.py"])
    assert [line.split("  ")[1] for line in text.splitlines()] == ["src/a/x.yaml", "src/b.py", "src/c.py"]
    assert text.startswith("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  src/a/x.yaml\n")
    with pytest.raises(FileNotFoundError, match="src/missing.py does not exist"):
        entry_files(tmp_path, ["src/missing.py"])


# --- on the repository ---------------------------------------------------------------------------

GRAPH = ImportGraph(REPO_ROOT)


def test_lazy_imports_inside_functions_are_followed():
    # `skelrep compare` imports the report package only inside the command's function body
    modules = set(GRAPH.loaded_closure(SRC / "skelrep" / "cli.py", follow_validation=True))
    assert {"skelrep.report.compare", "skelrep.report.published", "skelrep.data.protocols"} <= modules
    # a relative import of a name from a package's __init__ makes that __init__ a dependency
    assert "skelrep" in GRAPH.loaded_closure(REPO_ROOT / "stages/preprocess.py")
    assert "skelrep" not in GRAPH.loaded_closure(REPO_ROOT / "stages/knn.py", runtime=frozenset({"skelrep"}))


def test_classes_imported_by_name_are_followed():
    # the registry names each method's MethodInfo, which names its implementation (torch) and
    # its schema (torch-free)
    modules = set(GRAPH.loaded_closure(SRC / "skelrep" / "methods" / "__init__.py"))
    assert {"skelrep.methods.usdrl", "skelrep.methods.usdrl.method", "skelrep.methods.isc.moco",
            "skelrep.methods.umurl.model", "skelrep.methods.usdrl.schema", "skelrep.training.schema"} <= modules


def test_package_data_read_by_a_module_is_found():
    data = SRC / "skelrep" / "data"
    assert GRAPH.package_data(data / "ntu.py") == {data / "missing"}
    assert GRAPH.package_data(data / "layout.py") == {data / "layouts"}
    assert GRAPH.package_data(SRC / "skelrep" / "report" / "published.py") == {
        SRC / "skelrep" / "report" / "published_results.csv"}
