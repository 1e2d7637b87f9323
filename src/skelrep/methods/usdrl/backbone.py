"""The base of the USDRL backbones DSTE and STTR.

The two backbones differ only in their per-stream layers; tokenisation, the skeleton
embedding, both positional encodings, pooling and the official initialisation live here
(the embedding, positional-encoding and pooling modules are shared with UmURL:
``skelrep.models.components``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from skelrep.models.components import (
    SinusoidalPositionalEncoding,
    SkeletonEmbedding,
    dense_feature,
    instance_feature,
)
from skelrep.models.modalities import spatial_tokens, temporal_tokens


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero a whole sample's branch with probability ``p``, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def add(self, residual: Tensor, x: Tensor) -> Tensor:
        """``residual + self(x)`` in one pass: the sample mask, scaled by 1 / keep, multiplies ``x``
        inside ``addcmul`` (the same draw as ``self(x)``; ``x * (mask / keep)`` rounds like
        ``x * mask / keep`` to the last bit, not bitwise)."""
        if self.p == 0.0 or not self.training:
            return residual + x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep).div_(keep)
        return torch.addcmul(residual, x, mask)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (dropout 0 in USDRL, so none is modelled)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _official_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):  # includes the attention out_proj
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def official_init_(module: nn.Module) -> None:
    """The official USDRL init (applied by its pretraining wrapper): trunc-normal(0.02) Linear weights, zero biases,
    LayerNorm (1, 0). Attention in_proj, Conv1d and BatchNorm keep PyTorch defaults."""
    module.apply(_official_init)


class TwoStreamBackbone(nn.Module):
    """Base of DSTE and STTR: tokenise a clip, embed both streams, run the stream layers.

    Subclasses build their layers and implement ``temporal_stream`` / ``spatial_stream``,
    each mapping embedded tokens ``(N, L, hidden)`` to dense outputs of the same shape.
    """

    def __init__(self, *, frames: int, joints: int, persons: int, channels: int, hidden: int, t_pe_max_len: int):
        super().__init__()
        if frames > t_pe_max_len:
            raise ValueError(f"frames={frames} exceeds t_pe_max_len={t_pe_max_len}")
        self.frames, self.joints, self.persons, self.channels = frames, joints, persons, channels
        self.hidden = hidden
        self.embed = SkeletonEmbedding(persons * joints * channels, frames * channels, hidden)
        self.temporal_pe = SinusoidalPositionalEncoding(hidden, t_pe_max_len)
        self.spatial_pe = nn.Parameter(torch.zeros(1, persons * joints, hidden))

    @property
    def out_dim(self) -> int:
        """Size of the instance feature."""
        return 2 * self.hidden

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this backbone."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        official_init_(self)
        nn.init.trunc_normal_(self.spatial_pe, std=0.02)

    def temporal_stream(self, e_t: Tensor) -> Tensor:
        raise NotImplementedError

    def spatial_stream(self, e_s: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_tokens(self, t_tokens: Tensor, s_tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Dense outputs from already tokenised inputs (the official ``backbone(jt, js)``)."""
        e_t, e_s = self.embed(t_tokens, s_tokens)
        return self.temporal_stream(e_t), self.spatial_stream(e_s)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Dense outputs ``(y_t (N, T, hidden), y_s (N, M*V, hidden))`` of a modality clip."""
        expected = (self.channels, self.frames, self.joints, self.persons)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected a clip shaped (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self.forward_tokens(temporal_tokens(x), spatial_tokens(x))

    def instance_feature(self, y_t: Tensor, y_s: Tensor) -> Tensor:
        return instance_feature(y_t, y_s)

    def encode(self, x: Tensor) -> Tensor:
        """Instance feature ``(N, 2*hidden)``."""
        return instance_feature(*self(x))

    def encode_dense(self, x: Tensor, dense_spatial: str = "pool_tokens") -> Tensor:
        """Per-frame features ``(N, T, 2*hidden)`` (``(N, T, hidden)`` with ``'none'``)."""
        return dense_feature(*self(x), dense_spatial=dense_spatial)
