from itertools import combinations

import pytest
import torch

from skelrep.losses.cross_correlation import cross_correlation_loss
from skelrep.losses.invariance import invariance_loss
from skelrep.losses.mgfd import mgfd_loss
from skelrep.losses.variance_covariance import variance_covariance_loss


def embeddings(b=8, dims=None, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    dims = dims or {"t": 6, "s": 6, "i": 12}
    return {k: [torch.randn(b, d, generator=g).to(dtype) for _ in range(4)] for k, d in dims.items()}


def test_combines_terms_with_domain_mix_and_weights():
    z = embeddings()
    per_domain = {
        g: (invariance_loss(v), sum(variance_covariance_loss(x) for x in v),
            sum(cross_correlation_loss(a, b) for a, b in combinations(v, 2)))
        for g, v in z.items()
    }
    sim, vac, xcorr = (per_domain["i"][k] + 0.5 * (per_domain["t"][k] + per_domain["s"][k]) for k in range(3))
    got = mgfd_loss(z)
    torch.testing.assert_close(got["sim"], sim)
    torch.testing.assert_close(got["vac"], vac)
    torch.testing.assert_close(got["xcorr"], xcorr)
    torch.testing.assert_close(got["total"], 5 * sim + vac + 0.001 * xcorr)
    custom = mgfd_loss(z, w_sim=1, w_vac=0, w_xcorr=0, domain_mix={"i": 1, "t": 0, "s": 0})
    torch.testing.assert_close(custom["total"], per_domain["i"][0])


def test_reference_loss(reference_file):
    ref = torch.load(reference_file("usdrl_dste_h64.pt"), weights_only=True)
    got = mgfd_loss(ref["loss_z"])
    for term in ("sim", "vac", "xcorr", "total"):
        torch.testing.assert_close(got[term], ref["loss"][term], rtol=1e-5, atol=1e-12)


def test_computed_in_float32_for_half_inputs():
    z = embeddings(dtype=torch.bfloat16)
    got = mgfd_loss(z)
    assert all(v.dtype == torch.float32 for v in got.values())
    want = mgfd_loss({k: [x.float() for x in v] for k, v in z.items()})
    torch.testing.assert_close(got["total"], want["total"])
    assert mgfd_loss(z, fp32=False)["total"].dtype == torch.bfloat16


def test_gradient_flows_to_every_view():
    z = {k: [x.requires_grad_() for x in v] for k, v in embeddings().items()}
    mgfd_loss(z)["total"].backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for v in z.values() for x in v)


def test_domain_mismatch_is_rejected():
    with pytest.raises(ValueError, match="domain_mix"):
        mgfd_loss(embeddings(dims={"t": 4, "i": 8}))


def test_fp32_loss_is_computed_in_float32_inside_autocast():
    import torch

    from skelrep.losses.mgfd import mgfd_loss

    g = torch.Generator().manual_seed(0)
    z = {d: [torch.randn(16, 64, generator=g) for _ in range(4)] for d in ("t", "s", "i")}
    exact = mgfd_loss(z)["total"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = mgfd_loss(z)["total"]
    assert inside.dtype == torch.float32
    assert torch.allclose(inside, exact, rtol=1e-6)
