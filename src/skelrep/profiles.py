"""Named parameter profiles, applied as ``dvc exp run -S`` overrides.

``params.yaml`` *is* the default CPU profile (the committed values that CI re-derives).
Other profiles are sets of dotted-key overrides, so an experiment records every changed value
explicitly: ``dvc exp run $(skelrep profile paper)``.
"""

from __future__ import annotations

import copy
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    # USDRL AAAI code (usdrl.md §2, §11, §12; evaluation.md §2) for a GPU.
    "paper": {
        "usdrl.encoder.hidden": 1024,
        "usdrl.encoder.frames": 64,
        "usdrl.proj.cp": 2048,
        "usdrl.aug.min_crop": 64,
        "usdrl.train.lr": 0.0005,
        "usdrl.train.batch_size": 356,
        "usdrl.train.epochs": 451,
        "usdrl.train.milestones": [351],
        "usdrl.train.ckpt_every": 50,
        "usdrl.train.workers": 8,
        "features.batch_size": 512,
        "linear.epochs": 160,
        "linear.lr": 0.006,
        "linear.milestones": [120, 140],
        "linear.batch_size": 512,
        "linear.eval_every": 5,
    },
}


def profile_overrides(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return dict(PROFILES[name])


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
