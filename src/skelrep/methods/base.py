"""What a pretraining method provides to the generic loop and to the evaluation stages."""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
from torch import nn

from ..training.distributed import DistInfo


class FeatureEncoder(Protocol):
    """A frozen encoder as the evaluation stages use it (built from an encoder file)."""

    feature_dim: int
    dense_dim: int
    frames: int  # clip length the encoder expects

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        """(N, C, frames, V, M) joint clips -> (N, feature_dim) global features."""

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        """(N, C, frames, V, M) joint clips -> (N, frames, dense_dim) per-frame features."""


class Method(Protocol):
    name: str
    cfg: dict  # the validated method section

    def build_model(self, channels: int, joints: int, persons: int,
                    parents: Sequence[int] | None = None) -> nn.Module:
        """The full pretraining model (backbone + heads) for the data's skeleton: C channels,
        V joints, M persons and the bone tree ``parents`` (its layout's; None: NTU's 25 joints)."""

    def training_loss(self, model: nn.Module, x: torch.Tensor, num_frames: torch.Tensor,
                      generator: torch.Generator, dist: DistInfo) -> dict[str, torch.Tensor]:
        """Loss terms for one batch of raw (N, C, T_max, V, M) sequences; key 'total' is optimised."""

    def encoder_payload(self, model: nn.Module) -> dict:
        """Backbone-only content of the encoder file (method, arch, config, state_dict)."""
