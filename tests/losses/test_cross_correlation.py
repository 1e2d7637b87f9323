import pytest
import torch

from skelrep.losses.cross_correlation import cross_correlation_loss


def reference(z1, z2, offdiag_weight=0.005):
    z1, z2 = z1.double(), z2.double()
    b, d = z1.shape

    def standardise(z):
        mean = z.sum(0) / b
        std = (((z - mean) ** 2).sum(0) / (b - 1)).sqrt()
        return (z - mean) / std

    a, c = standardise(z1), standardise(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            cij = sum(a[n, i] * c[n, j] for n in range(b)).item() / b
            loss += (cij - 1) ** 2 if i == j else offdiag_weight * cij**2
    return loss


def pair(b=7, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, d, generator=g)
    return z1, 0.5 * z1 + torch.randn(b, d, generator=g)


def test_matches_reference():
    z1, z2 = pair()
    assert cross_correlation_loss(z1, z2).item() == pytest.approx(reference(z1, z2), rel=1e-5)
    assert cross_correlation_loss(z1, z2, 0.1).item() == pytest.approx(reference(z1, z2, 0.1), rel=1e-5)


def test_symmetric_in_its_arguments():
    z1, z2 = pair(seed=3)
    torch.testing.assert_close(cross_correlation_loss(z1, z2), cross_correlation_loss(z2, z1))


def test_invariant_to_per_dimension_affine_maps():
    z1, z2 = pair(seed=4)
    scaled = z1 * torch.tensor([2.0, 0.5, 3.0, 1.0, 7.0]) + 10.0
    torch.testing.assert_close(cross_correlation_loss(scaled, z2), cross_correlation_loss(z1, z2))


def test_identical_decorrelated_views_have_zero_loss():
    h = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32)
    z = h[:, 1:]
    # C_dd = (B-1)/B with the unbiased std, exactly as the official code
    assert cross_correlation_loss(z, z).item() == pytest.approx(3 * (1 - 3 / 4) ** 2, abs=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="same"):
        cross_correlation_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        cross_correlation_loss(torch.randn(1, 3), torch.randn(1, 3))
