"""Loading ``params.yaml``, and the built-in datasets and protocols.

Every stage validates the sections it reads *before* any heavy work, so a typo in an
ablation (``dvc exp run -S usdrl.train.lr=...``) fails in a second with a message naming the
dotted key and what is allowed; the one validation dialect is :mod:`skelrep.schema`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError

# libyaml's parser when PyYAML has it (the same mapping; ~10x faster: params.yaml is read twice by
# every stage, load_params and committed_params, 50 ms each in pure Python)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def repo_root() -> Path:
    """The repository root: ``DVC_ROOT`` inside DVC (also for temp/queued experiments)."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"])
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").exists() or (candidate / ".git").exists():
            return candidate
    return here


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            params = yaml.load(f, Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise ParamsError("<file>", f"{path} not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError("<file>", f"{path} is not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError("<file>", f"{path} must hold a mapping of sections")
    return params


def get_section(params: Mapping, dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ParamsError(dotted, "missing")
        node = node[part]
    return node


def committed_params(path: str | os.PathLike = "params.yaml") -> dict | None:
    """``path`` as committed at the commit the current run started from: the experiment's
    baseline (``DVC_EXP_BASELINE_REV``, set inside ``dvc exp run``) or ``HEAD``, read with git
    from the file's own folder (which inside a ``--temp`` experiment is DVC's copy of the
    repository at that commit). None when there is no git, no commit or no such file: what a
    run changes against the committed profile is then unknown (``skelrep.config``)."""
    import subprocess

    file = Path(path).resolve()
    rev = os.environ.get("DVC_EXP_BASELINE_REV") or "HEAD"
    try:
        out = subprocess.run(["git", "show", f"{rev}:./{file.name}"], cwd=file.parent, capture_output=True,
                             timeout=30, check=True)
        params = yaml.load(out.stdout, Loader=_SAFE_LOADER)
    except (OSError, subprocess.SubprocessError, yaml.YAMLError):
        return None
    return params if isinstance(params, dict) else None
