"""params.yaml survives DVC's writer: ``dvc exp run -S key=value`` changes that one line only.

``-S`` loads params.yaml with ruamel's round-trip loader, applies the override through OmegaConf and
writes the file back (``dvc.utils.hydra.apply_overrides``). Every list comes back as a new block list at
ruamel's default indentation (item comments and flow style lost) and a long flow mapping is wrapped at
80 columns, so any other layout turns a one-key ablation into a diff of dozens of lines. These tests
run DVC's own code on the committed file: a no-op write is byte-identical, every leaf changes exactly
its own line, and the loaded values are those of the committed file with that one key changed.
"""

from __future__ import annotations

import copy
import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT

PARAMS = REPO_ROOT / "params.yaml"


def _leaves(node: dict, path: tuple = ()):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def _other_value(value):
    """A different value of the same type, as a Hydra override literal, and as loaded."""
    if isinstance(value, bool):
        return str(not value).lower(), not value
    if isinstance(value, int):
        return str(value + 1), value + 1
    if isinstance(value, float):
        return repr(value * 2 + 0.5), value * 2 + 0.5
    if isinstance(value, str):
        return "changed_value", "changed_value"
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        new = [value[0] + 1, *value[1:]]  # one item changed: one line
        return "[" + ",".join(map(repr, new)) + "]", new
    return None  # {} and []: nothing to change in place


def _load(text: str) -> dict:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _set(params: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(params)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _apply(tmp_path: Path, text: str, override: str) -> str:
    from dvc.utils.hydra import apply_overrides

    work = tmp_path / "params.yaml"
    work.write_text(text, encoding="utf-8")
    apply_overrides(work, [override])
    return work.read_text(encoding="utf-8")


def test_a_no_op_write_is_byte_identical(tmp_path):
    text = PARAMS.read_text(encoding="utf-8")
    method = yaml.safe_load(text)["method"]
    assert _apply(tmp_path, text, f"method={method}") == text


@pytest.mark.slow  # about 200 writes through DVC, 10-15 s
def test_every_key_changes_exactly_its_own_line(tmp_path):
    text = PARAMS.read_text(encoding="utf-8")
    params = yaml.safe_load(text)
    changed, failures = 0, []
    for path, value in _leaves(params):
        other = _other_value(value)
        if other is None:
            continue
        literal, loaded = other
        key = ".".join(path)
        after = _apply(tmp_path, text, f"{key}={literal}")
        lines = _changed_lines(text, after)
        if len(lines) != 2 or not (lines[0].startswith("-") and lines[1].startswith("+")):
            failures.append(f"{key}: {len(lines)} changed lines:\n" + "\n".join(lines[:12]))
        elif _load(after) != _set(params, path, loaded):
            failures.append(f"{key}: the loaded values differ beyond {key}")
        changed += 1
    assert changed > 150, f"only {changed} keys tried"  # every section's leaves, not a handful
    assert not failures, "\n\n".join(failures)


def test_list_and_protocol_keys_change_one_line(tmp_path):
    """The constructs DVC reflows: lists (items with comments, flow lists) and the protocol entries."""
    text = PARAMS.read_text(encoding="utf-8")
    for override, expected in (("usdrl.train.milestones=[4]", "- 4"),
                               ("data.ntu120.synthetic.performers=[45,41,46,43]", "- 43"),
                               ("protocols.ntu60-xview.split=xsub", "split: xsub"),
                               ("linear.milestones=[60,90]", "- 90")):
        lines = _changed_lines(text, _apply(tmp_path, text, override))
        assert len(lines) == 2 and lines[0].startswith("-") and lines[1][1:].strip() == expected, (override, lines)


def test_dvc_exp_run_set_param_leaves_a_one_line_diff(tmp_path):
    """End to end: ``dvc exp run -S`` in a git repository holding the committed params.yaml."""
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  echo:\n    cmd: echo done > out.txt\n    params:\n    - usdrl.train.lr\n    outs:\n    - out.txt\n")

    def run(*args):
        proc = subprocess.run(list(args), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**_env(), "DVC_NO_ANALYTICS": "1"})
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    dvc = (sys.executable, "-m", "dvc")
    run("git", "init", "-q")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "root")
    run(*dvc, "init", "-q")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "params")
    lr = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))["usdrl"]["train"]["lr"]
    new_lr = f"{lr * 3:g}"
    run(*dvc, "exp", "run", "-q", "-S", f"usdrl.train.lr={new_lr}")
    diff = run("git", "diff", "-U0", "--", "params.yaml")
    lines = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(lines) == 2 and "lr:" in lines[0] and f"lr: {new_lr} " in lines[1], diff


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_"))}
