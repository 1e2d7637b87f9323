"""Invariance term of MG-FD, inherited from UmURL's intra/inter-modal consistency."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def invariance_loss(views: Sequence[Tensor], anchor_index: int = -1) -> Tensor:
    """Σ_k MSE(z_k, z_anchor) + Σ_k MSE(z_k, c) over the non-anchor views k, c their mean.

    With four views and the default anchor this is the official
    ``S = Σ_{k<3} MSE(z_k, z_3) + Σ_{k<3} MSE(z_k, (z_0 + z_1 + z_2) / 3)``.
    The centre c is not detached, as in the official code.
    """
    if len(views) < 2:
        raise ValueError(f"invariance_loss needs at least 2 views, got {len(views)}")
    shape = views[0].shape
    if any(v.shape != shape for v in views):
        raise ValueError(f"all views must have the same shape, got {[tuple(v.shape) for v in views]}")
    anchor_index = anchor_index % len(views)
    anchor = views[anchor_index]
    others = [v for k, v in enumerate(views) if k != anchor_index]
    centre = torch.stack(others).mean(dim=0)
    to_anchor = sum(F.mse_loss(z, anchor) for z in others)
    to_centre = sum(F.mse_loss(z, centre) for z in others)
    return to_anchor + to_centre
