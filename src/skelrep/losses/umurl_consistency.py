"""The UmURL objective: 5 · (intra- + inter-modal consistency) plus ``vc_reg`` of each embedding."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from skelrep.losses.variance_covariance import variance_covariance_loss


def _check(uni: Sequence[Tensor], fused: Sequence[Tensor] | None = None) -> None:
    if not uni:
        raise ValueError("need at least one uni-modal embedding")
    if fused is not None and len(fused) != len(uni):
        raise ValueError(f"need one fused embedding per modality, got {len(fused)} for {len(uni)} modalities")
    shapes = {tuple(z.shape) for z in (*uni, *(fused or ()))}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"all embeddings must share one (B, D) shape, got {sorted(shapes)}")


def intra_modal_consistency(uni: Sequence[Tensor], fused: Sequence[Tensor]) -> Tensor:
    """``Σ_k MSE(z_k, z_uk)``: each modality's embedding against its part of the fused one."""
    _check(uni, fused)
    return sum(F.mse_loss(z, z_u) for z, z_u in zip(uni, fused, strict=True))


def inter_modal_consistency(uni: Sequence[Tensor]) -> Tensor:
    """``Σ_k MSE(z_k, c)``, c the mean of the uni-modal embeddings.

    c is not detached, as officially; detaching would not change the gradient, since
    the gradient of the sum with respect to its own mean is zero.
    """
    _check(uni)
    centre = sum(uni) / len(uni)  # the official (z_j + z_b + z_m) / 3
    return sum(F.mse_loss(z, centre) for z in uni)


def umurl_loss(
    uni: Sequence[Tensor],
    fused: Sequence[Tensor],
    w_consistency: float = 5.0,
    vac_var_weight: float = 5.0,
    vac_cov_weight: float = 1.0,
    var_eps: float = 1e-4,
    fp32: bool = True,
) -> dict[str, Tensor]:
    """``total = w_consistency (intra + inter) + reg``, reg = Σ of ``vc_reg`` over all 2K embeddings.

    ``uni`` = (z_j, z_b, z_m), ``fused`` = (z_uj, z_ub, z_um), each (B, D) over the global
    batch. With ``fp32`` autocast is switched off and the embeddings are cast to float32, so the
    D×D covariances never run in half precision (the official loss runs inside the AMP step).
    """
    _check(uni, fused)
    amp_off = torch.autocast(uni[0].device.type, enabled=False) if fp32 else nullcontext()
    with amp_off:
        if fp32:
            uni, fused = [z.float() for z in uni], [z.float() for z in fused]
        intra = intra_modal_consistency(uni, fused)
        inter = inter_modal_consistency(uni)
        reg = sum(variance_covariance_loss(z, vac_var_weight, vac_cov_weight, var_eps) for z in (*uni, *fused))
        total = w_consistency * (intra + inter) + reg
    return {"intra": intra, "inter": inter, "reg": reg, "total": total}
