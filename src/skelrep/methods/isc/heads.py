"""ISC projection heads: ``fc`` Linear(d, dim), or with ``mlp`` (every released script)
Linear(d, d) -> ReLU -> Linear(d, dim). Discarded for downstream use.

A plain ``nn.Sequential`` so the official ``fc.0`` / ``fc.2`` (MLP) map to ``0`` / ``2``,
and the plain official ``fc`` maps to ``0``.
"""

from __future__ import annotations

import math

from torch import nn

from skelrep.methods.isc.schema import ENCODER_KINDS


class ProjectionHead(nn.Sequential):
    def __init__(self, in_dim: int, out_dim: int = 128, mlp: bool = True, kind: str = "seq"):
        layers = [nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, out_dim)] if mlp else \
            [nn.Linear(in_dim, out_dim)]
        super().__init__(*layers)
        # The output Linear is the official encoder's own ``fc`` and keeps that encoder's init;
        # the MLP's first Linear was added afterwards with PyTorch defaults.
        fc = self[-1]
        if kind == "seq":
            nn.init.xavier_uniform_(fc.weight)
        elif kind == "graph":
            nn.init.normal_(fc.weight, 0.0, math.sqrt(2.0 / out_dim))
        elif kind == "image":
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        else:
            raise ValueError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")


def map_official_head(state_dict: dict, mlp: bool) -> dict:
    """Official ``fc.*`` keys of an encoder state dict -> ``ProjectionHead`` keys."""
    out = {}
    for name, value in state_dict.items():
        if not name.startswith("fc."):
            continue
        rest = name[len("fc."):]
        out[rest if mlp else f"0.{rest}"] = value
    return out
