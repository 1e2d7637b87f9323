"""Loading and validating ``params.yaml``.

Every stage validates the sections it reads *before* any heavy work, so a typo in an
ablation (``dvc exp run -S usdrl.train.lr=...``) fails in a second with a message naming the
dotted key and what is allowed. Each method validates its own section with the small schema
language below (a dict of key -> validator), in the spirit of solo-learn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError

Validator = Callable[[Any, str], Any]

PROTOCOLS = {
    # the built-in benchmark protocols: protocol -> (dataset, benchmark); the user's own
    # (generic datasets, defined in params.yaml) are resolved by skelrep.data.protocols
    "ntu60-xsub": ("ntu60", "xsub"),
    "ntu60-xview": ("ntu60", "xview"),
    "ntu120-xsub": ("ntu120", "xsub"),
    "ntu120-xset": ("ntu120", "xset"),
    "pku1-xsub": ("pku1", "xsub"),
    "pku2-xsub": ("pku2", "xsub"),
}
DATASETS = ("ntu60", "ntu120", "pku1", "pku2")


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
            params = yaml.safe_load(f)
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


# --- validators: each takes (value, dotted_key) and returns the (normalised) value ---------


def choice(*allowed: Any) -> Validator:
    def check(value: Any, key: str) -> Any:
        if value not in allowed:
            raise ParamsError(key, f"got {value!r}; allowed: {', '.join(map(repr, allowed))}")
        return value

    return check


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParamsError(key, f"got {value!r}; allowed: true or false")
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Validator:
    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(key, f"got {value!r}; expected an integer{_range(lo, hi)}")
        _check_range(value, lo, hi, key)
        return value

    return check


def number(lo: float | None = None, hi: float | None = None) -> Validator:
    def check(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(key, f"got {value!r}; expected a number{_range(lo, hi)}")
        _check_range(value, lo, hi, key)
        return float(value)

    return check


def string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParamsError(key, f"got {value!r}; expected a non-empty string")
    return value


def optional(validator: Validator) -> Validator:
    def check(value: Any, key: str) -> Any:
        return None if value is None else validator(value, key)

    return check


def list_of(validator: Validator, min_len: int = 0, max_len: int | None = None) -> Validator:
    def check(value: Any, key: str) -> list:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(key, f"got {value!r}; expected a list")
        if len(value) < min_len or (max_len is not None and len(value) > max_len):
            raise ParamsError(key, f"expected between {min_len} and {max_len} items, got {len(value)}")
        return [validator(v, f"{key}[{i}]") for i, v in enumerate(value)]

    return check


def mapping(schema: Mapping[str, Validator]) -> Validator:
    def check(value: Any, key: str) -> dict:
        return validate(value, schema, key)

    return check


def validate(section: Any, schema: Mapping[str, Validator], prefix: str) -> dict:
    """Validate ``section`` against ``schema``: every key required, unknown keys rejected."""
    if not isinstance(section, Mapping):
        raise ParamsError(prefix, f"expected a mapping, got {section!r}")
    unknown = sorted(set(section) - set(schema))
    if unknown:
        raise ParamsError(f"{prefix}.{unknown[0]}", f"unknown key; allowed keys: {', '.join(schema)}")
    missing = [k for k in schema if k not in section]
    if missing:
        raise ParamsError(f"{prefix}.{missing[0]}", "missing")
    return {k: schema[k](section[k], f"{prefix}.{k}") for k in schema}


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    return f" in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _check_range(value: float, lo: float | None, hi: float | None, key: str) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamsError(key, f"got {value!r}; expected a value{_range(lo, hi)}")
