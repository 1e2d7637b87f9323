"""The BN-MLP projector of USDRL."""

from __future__ import annotations

from torch import nn


class Projector(nn.Sequential):
    """Linear-BN-ReLU, Linear-BN-ReLU, Linear.

    A plain ``nn.Sequential`` so the weights sit at indices 0, 1, 3, 4, 6 like the official
    ``{i,t,s}_proj`` and checkpoints map one to one.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )
