"""dvc.yaml as DVC expands it, for tests: each stage's definition and its command line.

Stage tests run a stage with the arguments dvc.yaml gives it (``stage_args``), so a test
exercises the same paths the pipeline passes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")


def _lookup(context: dict, dotted: str):
    node = context
    for part in dotted.split("."):
        node = node[part]
    return node


def interpolate(value, context: dict):
    """DVC's ``${...}`` templating, enough for dvc.yaml: a whole-string var keeps its type."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole:
            return _lookup(context, whole.group(1))
        return _VAR.sub(lambda m: str(_lookup(context, m.group(1))), value)
    if isinstance(value, list):
        return [interpolate(v, context) for v in value]
    if isinstance(value, dict):
        return {interpolate(k, context): interpolate(v, context) for k, v in value.items()}
    return value


def expand_stages(params: Mapping | None = None) -> tuple[tuple[str, str, dict], ...]:
    """``(group, name, definition)`` of every stage of the repository's dvc.yaml, ``foreach``
    items expanded from ``params`` (default: the committed params.yaml)."""
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    if params is None:
        params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    out = []
    for group, spec in dvc["stages"].items():
        if "foreach" in spec:
            items = interpolate(spec["foreach"], params)
            pairs = items.items() if isinstance(items, dict) else ((i, i) for i in items)
            for key, item in pairs:
                out.append((group, f"{group}@{key}", interpolate(spec["do"], {**params, "key": key, "item": item})))
        else:
            out.append((group, group, interpolate(spec, params)))
    return tuple(out)


def stage_args(name: str, params: Mapping | None = None) -> list[str]:
    """The arguments dvc.yaml passes to stage ``name`` (e.g. ``pretrain@ntu60-xsub``), after the script."""
    for _, stage, definition in expand_stages(params):
        if stage == name:
            argv = shlex.split(definition["cmd"])
            assert argv[:1] == ["python"] and argv[1].startswith("stages/"), definition["cmd"]
            return argv[2:]
    raise KeyError(f"no stage {name!r} in dvc.yaml")
