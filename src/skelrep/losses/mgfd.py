"""MG-FD, the Multi-Grained Feature Decorrelation loss of USDRL (AAAI code: ``model/loss.py``).

Per domain (temporal t, spatial s, instance i): invariance S, variance + autocovariance V and
cross-correlation X over the four views; each term mixed as i + 0.5 (t + s), and
L = 5 S + 1 V + 0.001 X by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import torch
from torch import Tensor

from skelrep.losses.cross_correlation import cross_correlation_loss
from skelrep.losses.invariance import invariance_loss
from skelrep.losses.mgfd_domains import DEFAULT_DOMAIN_MIX
from skelrep.losses.variance_covariance import variance_covariance_loss


def mgfd_loss(
    z: Mapping[str, Sequence[Tensor]],
    w_sim: float = 5.0,
    w_vac: float = 1.0,
    w_xcorr: float = 0.001,
    domain_mix: Mapping[str, float] | None = None,
    vac_var_weight: float = 5.0,
    vac_cov_weight: float = 1.0,
    var_eps: float = 1e-4,
    xcorr_offdiag: float = 0.005,
    fp32: bool = True,
) -> dict[str, Tensor]:
    """MG-FD from the per-domain projector outputs of all views.

    ``z`` maps each domain ('t', 's', 'i') to its list of view embeddings (B, D_g); the
    last view is the invariance anchor. Per term T: T = Σ_g mix_g T_g (i + 0.5 (t + s)).
    Returns ``sim``, ``vac``, ``xcorr`` (mixed over domains) and
    ``total = w_sim sim + w_vac vac + w_xcorr xcorr``.

    With ``fp32`` the embeddings are cast to float32 first, so the D×D correlations never
    run in half precision under autocast (a deliberate deviation: the official loss runs under
    autocast, so its 4096×4096 correlations are half precision).
    """
    terms = dict(w_sim=w_sim, w_vac=w_vac, w_xcorr=w_xcorr, domain_mix=domain_mix,
                 vac_var_weight=vac_var_weight, vac_cov_weight=vac_cov_weight, var_eps=var_eps,
                 xcorr_offdiag=xcorr_offdiag)
    if not fp32:
        return _mgfd(z, **terms)
    # .float() alone is not enough: inside torch.autocast the matmuls would still run in half
    # precision, so autocast is switched off for the loss.
    device_type = next(iter(z.values()))[0].device.type
    with torch.autocast(device_type, enabled=False):
        return _mgfd({d: [v.float() for v in vs] for d, vs in z.items()}, **terms)


def _mgfd(z, *, w_sim, w_vac, w_xcorr, domain_mix, vac_var_weight, vac_cov_weight, var_eps,
          xcorr_offdiag) -> dict[str, Tensor]:
    mix = dict(DEFAULT_DOMAIN_MIX if domain_mix is None else domain_mix)
    if set(mix) != set(z):
        raise ValueError(f"domain_mix has domains {sorted(mix)} but z has {sorted(z)}")
    sim = vac = xcorr = 0.0
    for domain, weight in mix.items():
        views = list(z[domain])
        sim = sim + weight * invariance_loss(views)
        vac = vac + weight * sum(variance_covariance_loss(v, vac_var_weight, vac_cov_weight, var_eps) for v in views)
        xcorr = xcorr + weight * sum(cross_correlation_loss(a, b, xcorr_offdiag) for a, b in combinations(views, 2))
    total = w_sim * sim + w_vac * vac + w_xcorr * xcorr
    return {"sim": sim, "vac": vac, "xcorr": xcorr, "total": total}
