"""Named parameter profiles, applied as ``dvc exp run -S`` overrides.

``params.yaml`` *is* the default CPU profile (the committed values that CI re-derives).
Other profiles are sets of dotted-key overrides, so an experiment records every changed value
explicitly: ``dvc exp run $(skelrep profile paper)``.
"""

from __future__ import annotations

import copy
from typing import Any

# The paper recipe of the evaluation sections: the official USDRL linear evaluation (lr 0.006: NTU xsub).
# Each method's own paper values are its data (skelrep/methods/<name>/defaults.py), gathered
# through the registry; only the selected `method` section is read by the stages.
EVALUATION_PAPER: dict[str, Any] = {
    "features.batch_size": 512,
    "linear.epochs": 160,
    "linear.lr": 0.006,
    "linear.milestones": [120, 140],
    "linear.batch_size": 512,
    "linear.eval_every": 5,
    "linear.standardize": False,
}

PROFILES = ("paper",)


def profile_overrides(name: str) -> dict[str, Any]:
    """The dotted-key overrides of profile ``name``: every registered method's paper values
    (in registry order), then the evaluation sections'."""
    from .methods import METHODS

    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    overrides = {f"{method}.{key}": value for method, info in METHODS.items()
                 for key, value in info.paper_overrides().items()}
    return copy.deepcopy({**overrides, **EVALUATION_PAPER})


def format_set_args(overrides: dict[str, Any]) -> list[str]:
    """``-S key=value`` arguments in DVC's (Hydra) override grammar."""
    def fmt(v: Any) -> str:
        return "[" + ",".join(map(str, v)) + "]" if isinstance(v, (list, tuple)) else str(v)

    return [arg for k, v in overrides.items() for arg in ("-S", f"{k}={fmt(v)}")]


def apply_overrides(params: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``params`` with dotted-key overrides applied (keys must already exist)."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"{dotted} is not a key of params.yaml")
        node[leaf] = value
    return out
