"""Shared transformer parts: the sinusoidal table is the official one, computed portably."""

from __future__ import annotations

import math

import torch

from skelrep.models.components import SinusoidalPositionalEncoding, sinusoid_table


def _torch_float32_table(dim: int, max_len: int) -> torch.Tensor:
    """The official construction, in torch float32 (CPU-kernel dependent)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_len, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term[: dim // 2])
    return pe


def test_table_matches_the_official_float32_construction():
    for dim, max_len in ((64, 200), (1024, 200), (63, 50)):
        ours, official = sinusoid_table(dim, max_len), _torch_float32_table(dim, max_len)
        assert ours.shape == official.shape == (1, max_len, dim) and ours.dtype == torch.float32
        # one float32 ulp of exp(.) times the position: at most ~2e-5 at 200 frames
        assert (ours - official).abs().max() < 2e-5
        assert (ours - official).abs()[:, :10].max() < 1e-6


def test_table_values_and_buffer():
    table = sinusoid_table(4, 3)
    assert torch.equal(table[0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert abs(table[0, 2, 0].item() - math.sin(2.0)) < 1e-7
    module = SinusoidalPositionalEncoding(8, max_len=5)
    assert torch.equal(module.pe, sinusoid_table(8, 5)) and "pe" in module.state_dict()
    x = torch.zeros(2, 3, 8)
    assert torch.equal(module(x), module.pe[:, :3].expand(2, 3, 8))
