"""Named parameter profiles, applied as ``dvc exp run -S`` overrides.

``params.yaml`` *is* the default CPU profile (the committed values that CI re-derives).
Other profiles are sets of dotted-key overrides, so an experiment records every changed value
explicitly: ``dvc exp run $(skelrep profile paper)``.
"""

from __future__ import annotations

import copy
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    # The paper recipes for a GPU: USDRL AAAI code (usdrl.md §2, §11, §12; evaluation.md §2),
    # UmURL and ISC below. Only the selected `method` section is read by the stages.
    "paper": {
        "usdrl.encoder.hidden": 1024,
        "usdrl.encoder.num_layers": 2,
        "usdrl.encoder.frames": 64,
        "usdrl.proj.cp": 2048,
        "usdrl.aug.crop_scale": [0.1, 1.0],
        "usdrl.aug.min_crop": 64,
        "usdrl.train.lr": 0.0005,
        "usdrl.train.batch_size": 356,
        "usdrl.train.epochs": 451,
        "usdrl.train.milestones": [351],
        "usdrl.train.ckpt_every": 50,
        "usdrl.train.workers": 8,
        # UmURL code (umurl.md §5, §9 U2/U3, §11). Batch: the active NTU-60 xsub command (512);
        # NTU-60 xview and NTU-120 use 1024 (-S umurl.train.batch_size=1024).
        "umurl.encoder.hidden": 1024,
        "umurl.encoder.ffn": 1024,
        "umurl.encoder.frames": 64,
        "umurl.proj.dims": [2048, 2048, 4096],
        "umurl.proj.bn": "sync",
        "umurl.aug.min_crop": 64,
        "umurl.train.lr": 0.0005,
        "umurl.train.batch_size": 512,
        "umurl.train.epochs": 451,
        "umurl.train.milestones": [351],
        "umurl.train.ckpt_every": 50,
        "umurl.train.workers": 4,
        # ISC code (isc.md §2, §5, §11), NTU-60 schedule (NTU-120: 351 epochs, milestone 251).
        "isc.frames": 64,
        "isc.gru.hidden": 1024,
        "isc.gru.layers": 3,
        "isc.agcn.base_channels": 64,
        "isc.hcn.width": 64,
        "isc.moco.k": 16384,
        "isc.moco.m": 0.999,
        "isc.aug.min_crop": 64,
        "isc.train.lr": 0.01,
        "isc.train.batch_size": 64,
        "isc.train.epochs": 451,
        "isc.train.milestones": [351],
        "isc.train.ckpt_every": 10,
        "isc.train.workers": 8,
        "features.batch_size": 512,
        "linear.epochs": 160,
        "linear.lr": 0.006,
        "linear.milestones": [120, 140],
        "linear.batch_size": 512,
        "linear.eval_every": 5,
        "linear.standardize": False,
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
