"""``skelrep.tracking`` knows no domain: it imports nothing from the data, the methods or the
configuration (``skelrep.config`` builds the RunIdentity it opens)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import skelrep.tracking

FORBIDDEN = ("skelrep.data", "skelrep.methods", "skelrep.config", "skelrep.configuration")
TRACKING = Path(skelrep.tracking.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of every module imported in ``path`` (anywhere, also inside functions)."""
    package = "skelrep.tracking"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_no_tracking_module_imports_a_domain_module():
    files = sorted(TRACKING.rglob("*.py"))
    assert files
    bad = {f.name: sorted(n for n in _imports(f) if _forbidden(n)) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_importing_tracking_loads_no_domain_module():
    code = ("import sys; import skelrep.tracking.mlflow_run; "
            "print(sorted(m for m in sys.modules if m.startswith(('skelrep.data', 'skelrep.methods', "
            "'skelrep.config'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_rule_catches_a_relative_domain_import(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ..data.protocols import resolve_protocol\n    from .. import config\n")
    assert {n for n in _imports(path) if _forbidden(n)} == {
        "skelrep.data.protocols", "skelrep.data.protocols.resolve_protocol", "skelrep.config"}
