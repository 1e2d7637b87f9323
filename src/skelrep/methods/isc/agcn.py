"""The ISC graph encoder: single-stream 2s-AGCN (10 TCN-GCN units, adaptive graph convolution).

Module names follow the official ``moco/AGCN.py`` (``data_bn``, ``l1`` .. ``l10``, ``gcn1``,
``tcn1``, ``PA``, ``conv_a/b/d``, ``down``, ``residual``) so official weights load without
renaming. Differences from the official code: the fixed adjacency is a registered
(non-persistent) buffer, so the module runs on any device (the official code calls ``.cuda()``
on it, so it cannot run on CPU), and joints, persons, channel widths and edges are configurable.

Input ``(N, C, T, V, M)``; output ``(N, 4*base_channels)`` (256 at paper size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from skelrep.skeleton import NTU_EDGES, NTU_NUM_JOINTS


def agcn_adjacency(num_joints: int, edges: Sequence[tuple[int, int]]) -> Tensor:
    """The 2s-AGCN spatial partition ``(3, V, V)``: self links, inward, outward.

    ``edges`` are 0-based (child, parent) pairs; inward = child -> parent. For a link
    (src, dst) the matrix has a 1 at [dst, src]; each column is then divided by its sum
    (2s-AGCN's ``normalize_digraph``), so ``x @ A`` averages over the incoming links.
    """

    for edge in edges:
        if not all(0 <= j < num_joints for j in edge):
            raise ValueError(f"edge {tuple(edge)} is outside the {num_joints} joints")

    def column_normalised(links: Sequence[tuple[int, int]]) -> Tensor:
        a = torch.zeros(num_joints, num_joints)
        for src, dst in links:
            a[dst, src] = 1.0
        return a / a.sum(0, keepdim=True).clamp(min=1.0)  # empty columns stay zero

    inward = [(c, p) for c, p in edges]
    outward = [(p, c) for c, p in edges]
    return torch.stack([torch.eye(num_joints), column_normalised(inward), column_normalised(outward)])


def _kaiming_conv_(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    nn.init.zeros_(conv.bias)


def _bn(channels: int, scale: float = 1.0) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    nn.init.constant_(bn.weight, scale)
    return bn


class TemporalConv(nn.Module):
    """(k, 1) convolution over time + BN (``unit_tcn``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 9, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel, 1), padding=((kernel - 1) // 2, 0),
                              stride=(stride, 1))
        self.bn = _bn(out_channels)
        _kaiming_conv_(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class AdaptiveGraphConv(nn.Module):
    """``unit_gcn``: sum over 3 subsets of conv_d(x @ (A_k + PA_k + attention_k)), BN, residual."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, embed_ratio: int = 4):
        super().__init__()
        subsets, joints, _ = adjacency.shape
        self.inter = out_channels // embed_ratio
        self.register_buffer("A", adjacency.clone(), persistent=False)  # rebuilt from the config
        self.PA = nn.Parameter(torch.full_like(adjacency, 1e-6))
        self.conv_a = nn.ModuleList(nn.Conv2d(in_channels, self.inter, 1) for _ in range(subsets))
        self.conv_b = nn.ModuleList(nn.Conv2d(in_channels, self.inter, 1) for _ in range(subsets))
        self.conv_d = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(subsets))
        self.down = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), _bn(out_channels))
                     if in_channels != out_channels else nn.Identity())
        self.bn = _bn(out_channels, 1e-6)  # 2s-AGCN starts each unit close to its residual path
        self.relu = nn.ReLU()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _kaiming_conv_(m)
        for conv in self.conv_d:  # 2s-AGCN's branch init, scaled for the subset sum
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (out_channels * in_channels * subsets)))

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v = x.shape
        adjacency = self.A + self.PA
        flat = x.reshape(n, c * t, v)
        y = 0
        for k in range(adjacency.shape[0]):
            a = self.conv_a[k](x).permute(0, 3, 1, 2).reshape(n, v, self.inter * t)
            b = self.conv_b[k](x).reshape(n, self.inter * t, v)
            attention = torch.softmax(a @ b / (self.inter * t), dim=-2)  # (N, V, V), columns sum to 1
            y = y + self.conv_d[k]((flat @ (attention + adjacency[k])).reshape(n, c, t, v))
        return self.relu(self.bn(y) + self.down(x))


class _Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros((), dtype=x.dtype, device=x.device)


class TcnGcnUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, stride: int = 1,
                 residual: bool = True, kernel: int = 9):
        super().__init__()
        self.gcn1 = AdaptiveGraphConv(in_channels, out_channels, adjacency)
        self.tcn1 = TemporalConv(out_channels, out_channels, kernel, stride)
        self.relu = nn.ReLU()
        if not residual:
            self.residual = _Zero()
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, kernel=1, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.tcn1(self.gcn1(x)) + self.residual(x))


class IscAGCN(nn.Module):
    """2s-AGCN joint stream: data BN, 10 TCN-GCN units, mean over (T, V) then persons."""

    # (width multiple of base_channels, temporal stride) of units l1 .. l10
    LAYOUT = ((1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1), (4, 1))

    def __init__(self, num_joints: int = NTU_NUM_JOINTS, num_persons: int = 2, in_channels: int = 3,
                 base_channels: int = 64, edges: Sequence[Sequence[int]] = NTU_EDGES,
                 temporal_kernel: int = 9):
        super().__init__()
        self.num_joints, self.num_persons, self.in_channels = num_joints, num_persons, in_channels
        self.base_channels, self.temporal_kernel = base_channels, temporal_kernel
        self.edges = [tuple(int(j) for j in e) for e in edges]
        adjacency = agcn_adjacency(num_joints, self.edges)
        self.data_bn = nn.BatchNorm1d(num_persons * num_joints * in_channels)
        channels = in_channels
        for i, (mult, stride) in enumerate(self.LAYOUT, start=1):
            out = mult * base_channels
            self.add_module(f"l{i}", TcnGcnUnit(channels, out, adjacency, stride, residual=i > 1,
                                                kernel=temporal_kernel))
            channels = out

    @property
    def feature_dim(self) -> int:
        return self.LAYOUT[-1][0] * self.base_channels

    def config(self) -> dict:
        return {"num_joints": self.num_joints, "num_persons": self.num_persons,
                "in_channels": self.in_channels, "base_channels": self.base_channels,
                "edges": [list(e) for e in self.edges], "temporal_kernel": self.temporal_kernel}

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        # data BN over (M, V, C) channels, then persons folded into the batch
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i in range(1, len(self.LAYOUT) + 1):
            x = getattr(self, f"l{i}")(x)
        return x.reshape(n, m, x.shape[1], -1).mean(3).mean(1)
