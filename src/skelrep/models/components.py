"""Transformer building blocks shared by the USDRL and UmURL encoders.

Tokenised skeleton embedding, the sinusoidal positional encoding, PyTorch's plain transformer
encoder as both methods configure it, and the pooled and per-frame features of two token
streams. The USDRL-only pieces (DSTE's MLP and stochastic depth, the two-stream backbone
base, the official USDRL initialisation) live in ``skelrep.methods.usdrl.backbone``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skelrep import portable

DENSE_SPATIAL_MODES = ("pool_tokens", "none")


def sinusoid_table(dim: int, max_len: int) -> Tensor:
    """The official float32 table ``sin/cos(position * exp(-2i ln(10000) / dim))``, (1, max_len, dim).

    Computed with ``skelrep.portable`` instead of torch's float32 ``exp``/``sin``, whose kernels
    differ per CPU (MKL, vectorised or not): a 1-ulp change of ``exp`` grows with the position
    (up to 1.5e-5 at 200 frames), which made the random-init encoders differ between machines.
    The float32 products are rounded exactly as torch rounds them; ``exp`` and ``sin``/``cos``
    are evaluated in float64 and rounded to float32 once.
    """
    scale = np.float32(-math.log(10000.0) / dim)
    exponent = (np.arange(0, dim, 2, dtype=np.float64) * np.float64(scale)).astype(np.float32)
    div_term = portable.exp(exponent.astype(np.float64)).astype(np.float32)
    angle = (np.arange(max_len, dtype=np.float64)[:, None] * div_term.astype(np.float64)).astype(np.float32)
    sin, cos = portable.sin_cos(angle.astype(np.float64))
    table = np.zeros((1, max_len, dim), dtype=np.float32)
    table[0, :, 0::2] = sin
    table[0, :, 1::2] = cos[:, : dim // 2]
    return torch.from_numpy(table)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sin/cos table; a persistent buffer because official checkpoints store it."""

    def __init__(self, dim: int, max_len: int = 200):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(dim, max_len))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pe[:, : x.shape[1]]


def _embedding_branch(in_features: int, hidden: int) -> nn.Sequential:
    # Indices 0, 1, 3 hold the weights, as in the official `Skeleton_Emb`.
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden)
    )


class SkeletonEmbedding(nn.Module):
    """Per-stream token embedding: Linear -> LayerNorm -> ReLU -> Linear."""

    def __init__(self, temporal_features: int, spatial_features: int, hidden: int):
        super().__init__()
        self.temporal = _embedding_branch(temporal_features, hidden)
        self.spatial = _embedding_branch(spatial_features, hidden)

    def forward(self, t_tokens: Tensor, s_tokens: Tensor) -> tuple[Tensor, Tensor]:
        return self.temporal(t_tokens), self.spatial(s_tokens)


def pool_streams(y_t: Tensor, y_s: Tensor) -> tuple[Tensor, Tensor]:
    """Max over tokens of each stream: ``(N, hidden)`` twice."""
    return y_t.amax(dim=1), y_s.amax(dim=1)


def instance_feature(y_t: Tensor, y_s: Tensor) -> Tensor:
    """The global feature used by linear evaluation and KNN: ``(N, 2*hidden)``."""
    return torch.cat(pool_streams(y_t, y_s), dim=-1)


def dense_feature(y_t: Tensor, y_s: Tensor, dense_spatial: str = "pool_tokens") -> Tensor:
    """Per-frame features ``(N, T, 2*hidden)`` (or ``(N, T, hidden)`` with ``'none'``).

    With 'pool_tokens' the joint tokens of y_s are resampled to T positions by
    adaptive average pooling, as the official detect mode does; these positions are
    interpolated joint tokens, not time-aligned frames.
    """
    if dense_spatial == "none":
        return y_t
    if dense_spatial != "pool_tokens":
        raise ValueError(f"dense_spatial must be one of {DENSE_SPATIAL_MODES}, got {dense_spatial!r}")
    s = F.adaptive_avg_pool1d(y_s.transpose(1, 2), y_t.shape[1]).transpose(1, 2)
    return torch.cat([y_t, s], dim=-1)


def transformer_encoder(hidden: int, heads: int, feedforward: int, layers: int) -> nn.TransformerEncoder:
    """PyTorch's default encoder layers (post-norm, ReLU) with dropout 0, batch first; also UmURL's ST_TR."""
    layer = nn.TransformerEncoderLayer(hidden, heads, feedforward, dropout=0.0, batch_first=True)
    # Nested tensors only matter for padded batches, which never occur here.
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
