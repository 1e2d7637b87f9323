"""Cross-correlation term of MG-FD, Barlow-Twins style (summed over the 6 view pairs by ``mgfd``)."""

from __future__ import annotations

import torch
from torch import Tensor


def cross_correlation_loss(z1: Tensor, z2: Tensor, offdiag_weight: float = 0.005) -> Tensor:
    """``Σ_d (C_dd - 1)² + offdiag_weight * Σ_{i≠j} C_ij²`` with C = ẑ1ᵀ ẑ2 / B.

    Each dimension is standardised over the batch with the unbiased std (the official
    convention), so B must be at least 2.
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"expected two embeddings of the same (B, D) shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    b = z1.shape[0]
    if b < 2:
        raise ValueError(f"cross_correlation_loss needs a batch of at least 2, got {b}")
    z1 = (z1 - z1.mean(dim=0)) / z1.std(dim=0)
    z2 = (z2 - z2.mean(dim=0)) / z2.std(dim=0)
    c = z1.T @ z2 / b
    diag = torch.diagonal(c)
    on_diag = (diag - 1).pow(2).sum()
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    return on_diag + offdiag_weight * off_diag
