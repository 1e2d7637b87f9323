import pytest
import torch

from skelrep.losses.variance_covariance import variance_covariance_loss


def reference(z, var_weight=5.0, cov_weight=1.0, eps=1e-4):
    """Loops and the textbook unbiased covariance, no vectorised shortcuts."""
    z = z.double()
    b, d = z.shape
    mean = z.sum(0) / b
    cov = torch.zeros(d, d, dtype=torch.float64)
    for n in range(b):
        diff = z[n] - mean
        cov += torch.outer(diff, diff)
    cov /= b - 1
    var_term = sum(max(0.0, 1 - (cov[i, i] + eps).sqrt().item()) for i in range(d)) / d
    cov_term = sum(cov[i, j].item() ** 2 for i in range(d) for j in range(d) if i != j) / d
    return var_weight * var_term + cov_weight * cov_term


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_matches_reference(scale):
    z = torch.randn(10, 6, generator=torch.Generator().manual_seed(1)) * scale
    assert variance_covariance_loss(z).item() == pytest.approx(reference(z), rel=1e-5)
    got = variance_covariance_loss(z, var_weight=2.0, cov_weight=0.5, eps=1e-2).item()
    assert got == pytest.approx(reference(z, 2.0, 0.5, 1e-2), rel=1e-5)


def test_decorrelated_unit_variance_gives_only_eps_penalty():
    # ±1 Hadamard columns: unit variance (unbiased), zero covariance
    h = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32)
    z = h[:, 1:] * (3 / 4) ** 0.5  # var = 4/3 * 3/4 = 1
    assert variance_covariance_loss(z, eps=0.0).item() == pytest.approx(0.0, abs=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="at least 2"):
        variance_covariance_loss(torch.randn(1, 8))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        variance_covariance_loss(torch.randn(4, 2, 3))
