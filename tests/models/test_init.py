"""models.init.portable_init: PyTorch's initialisation laws, from a portable seeded stream."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from skelrep.models.init import portable_init, unit_rows


def _build(seed: int) -> nn.Module:
    with portable_init(seed):
        model = nn.Sequential(nn.Linear(400, 300), nn.GRU(16, 32), nn.LayerNorm(8))
        nn.init.trunc_normal_(model[2].weight, std=0.02)
        return model


def test_default_initialisers_keep_their_laws():
    model = _build(0)
    bound = 1 / math.sqrt(400)
    weight, bias = model[0].weight, model[0].bias
    assert weight.abs().max() <= bound and weight.abs().max() > 0.99 * bound
    assert abs(weight.std().item() - bound / math.sqrt(3)) < 0.01 * bound
    assert bias.abs().max() <= bound
    gru_bound = 1 / math.sqrt(32)
    assert all(p.abs().max() <= gru_bound for p in model[1].parameters())
    assert abs(model[2].weight.std().item() - 0.02) < 0.01  # 8 values: loose
    assert weight.dtype == torch.float32


def test_trunc_normal_respects_bounds_and_std():
    with portable_init(1):
        t = torch.empty(200_000)
        nn.init.trunc_normal_(t, mean=0.0, std=1.0, a=-1.0, b=1.5)
    assert t.min() >= -1.0 and t.max() <= 1.5
    with portable_init(1):
        w = nn.init.trunc_normal_(torch.empty(100_000), std=0.02)
    assert abs(w.std().item() - 0.02) < 2e-4 and abs(w.mean().item()) < 2e-4


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = _build(3), _build(3), _build(4)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_torch_is_restored_after_the_block():
    originals = (torch.randn, torch.rand, nn.init.trunc_normal_, nn.init.orthogonal_)
    with pytest.raises(RuntimeError), portable_init(0):
        raise RuntimeError("inside")
    assert "uniform_" not in vars(torch.Tensor) and "erfinv_" not in vars(torch.Tensor)
    assert (torch.randn, torch.rand, nn.init.trunc_normal_, nn.init.orthogonal_) == originals
    torch.manual_seed(0)
    assert torch.randn(3).shape == (3,)


def test_non_portable_random_ops_are_refused():
    with portable_init(0):
        with pytest.raises(RuntimeError, match="not CPU-portable"):
            torch.empty(4).erfinv_()
        with pytest.raises(RuntimeError, match="not CPU-portable"):
            nn.init.orthogonal_(torch.empty(4, 4))
        assert torch.randn(2, 3).shape == (2, 3) and torch.rand(5).max() < 1


def test_unit_rows():
    rows = unit_rows(torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(rows, torch.tensor([[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]]))
