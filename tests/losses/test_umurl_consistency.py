"""UmURL consistency losses against the official formulas (intra: MSE(z_x, z_ux); inter: MSE(z_x, mean);
vc_reg; total 5 · (intra + inter) + Σ vc_reg)."""

import pytest
import torch

from skelrep.losses.umurl_consistency import inter_modal_consistency, intra_modal_consistency, umurl_loss


def embeddings(b=6, d=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g, dtype=dtype) for _ in range(3)]


def mse(a, b):
    return ((a - b) ** 2).mean()


def vc_reg(z, var_weight=5.0, cov_weight=1.0, eps=1e-4):
    """The official vc_reg, element by element."""
    b, d = z.shape
    std = torch.sqrt(z.var(dim=0) + eps)
    var = torch.clamp(1 - std, min=0).mean()
    c = z - z.mean(dim=0)
    cov = sum(((c[:, i] * c[:, j]).sum() / (b - 1)) ** 2 for i in range(d) for j in range(d) if i != j)
    return var_weight * var + cov_weight * cov / d


def test_intra_is_the_sum_of_per_modality_mse():
    uni, fused = embeddings(seed=0), embeddings(seed=1)
    expected = mse(uni[0], fused[0]) + mse(uni[1], fused[1]) + mse(uni[2], fused[2])
    torch.testing.assert_close(intra_modal_consistency(uni, fused), expected)


def test_inter_is_the_sum_of_mse_to_the_centre():
    uni = embeddings()
    centre = (uni[0] + uni[1] + uni[2]) / 3
    torch.testing.assert_close(inter_modal_consistency(uni), sum(mse(z, centre) for z in uni))


def test_total_against_the_formula():
    uni, fused = embeddings(seed=2), embeddings(seed=3)
    got = umurl_loss(uni, fused)
    intra = sum(mse(a, b) for a, b in zip(uni, fused, strict=True))
    centre = sum(uni) / 3
    inter = sum(mse(z, centre) for z in uni)
    reg = sum(vc_reg(z) for z in uni + fused)
    for name, value in {"intra": intra, "inter": inter, "reg": reg, "total": 5 * (intra + inter) + reg}.items():
        torch.testing.assert_close(got[name], value)


def test_weights():
    uni, fused = embeddings(seed=4), embeddings(seed=5)
    got = umurl_loss(uni, fused, w_consistency=2.0, vac_var_weight=0.5, vac_cov_weight=3.0, var_eps=1e-2)
    reg = sum(vc_reg(z, 0.5, 3.0, 1e-2) for z in uni + fused)
    torch.testing.assert_close(got["reg"], reg)
    torch.testing.assert_close(got["total"], 2.0 * (got["intra"] + got["inter"]) + reg)


def test_fp32_even_inside_autocast():
    uni, fused = embeddings(d=64, seed=6), embeddings(d=64, seed=7)
    reference = umurl_loss(uni, fused)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = umurl_loss(uni, fused)
        from_half = umurl_loss([z.bfloat16() for z in uni], [z.bfloat16() for z in fused])
        under_amp = umurl_loss(uni, fused, fp32=False)
    for name in reference:
        assert torch.equal(got[name], reference[name])
        assert from_half[name].dtype == torch.float32
    # without the switch the covariance matmuls run in bfloat16
    assert not torch.equal(under_amp["reg"], reference["reg"])


@pytest.mark.parametrize("uni, fused, message", [
    ([], [], "at least one"),
    ([torch.zeros(4, 3)] * 3, [torch.zeros(4, 3)] * 2, "one fused embedding per modality"),
    ([torch.zeros(4, 3)] * 3, [torch.zeros(4, 3)] * 2 + [torch.zeros(4, 2)], "one \\(B, D\\) shape"),
    ([torch.zeros(4)] * 3, [torch.zeros(4)] * 3, "one \\(B, D\\) shape"),
])
def test_errors(uni, fused, message):
    with pytest.raises(ValueError, match=message):
        umurl_loss(uni, fused)
