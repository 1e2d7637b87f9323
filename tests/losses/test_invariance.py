import itertools

import pytest
import torch

from skelrep.losses.invariance import invariance_loss


def mse(a, b):
    return ((a - b) ** 2).mean()


def views(n=4, b=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g) for _ in range(n)]


def test_matches_official_formula():
    z0, z1, z2, z3 = views()
    c = (z0 + z1 + z2) / 3
    expected = mse(z0, z3) + mse(z1, z3) + mse(z2, z3) + mse(z0, c) + mse(z1, c) + mse(z2, c)
    torch.testing.assert_close(invariance_loss([z0, z1, z2, z3]), expected)


def test_invariant_to_order_of_non_anchor_views():
    z = views()
    base = invariance_loss(z)
    for perm in itertools.permutations(z[:3]):
        torch.testing.assert_close(invariance_loss([*perm, z[3]]), base)


def test_anchor_index_and_n_views():
    z = views(n=5)
    torch.testing.assert_close(invariance_loss(z, anchor_index=0), invariance_loss([*z[1:], z[0]]))
    others, anchor = z[:4], z[4]
    c = sum(others) / 4
    expected = sum(mse(v, anchor) for v in others) + sum(mse(v, c) for v in others)
    torch.testing.assert_close(invariance_loss(z), expected)


def test_zero_for_identical_views():
    z = views(n=1)[0]
    assert invariance_loss([z, z.clone(), z.clone(), z.clone()]).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_matches_analytic_form():
    zs = [v.requires_grad_() for v in views()]
    invariance_loss(zs).backward()
    z0, z1, z2, z3 = (v.detach() for v in zs)
    n = z0.numel()
    c = (z0 + z1 + z2) / 3
    # The path through the (non-detached) centre contributes Σ_k (z_k - c) = 0, so only the
    # direct terms remain.
    torch.testing.assert_close(zs[0].grad, 2 * (z0 - z3) / n + 2 * (z0 - c) / n)
    torch.testing.assert_close(zs[3].grad, -2 * ((z0 - z3) + (z1 - z3) + (z2 - z3)) / n)


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        invariance_loss([torch.zeros(4, 3), torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="at least 2"):
        invariance_loss([torch.zeros(4, 3)])
