"""DSTE, the Dense Spatio-Temporal Encoder of USDRL (official ``model/DSTE.py``).

Each stream is a stack of ``DSTLayer``s, ``alpha * CA(x) + (1 - alpha) * DSA(x)``. CA and
DSA share one attention module per layer; it is owned by the layer and passed to both
branches, so the state dict holds it once (the official one holds it twice, see
``skelrep.methods.usdrl.official``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skelrep.methods.usdrl.backbone import DropPath, Mlp, TwoStreamBackbone


def _self_attention(attn: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """``attn(x, x, x, need_weights=False)[0]`` for a batch-first ``x`` (N, L, E), computed here.

    The same math as ``nn.MultiheadAttention`` (packed input projection, PyTorch's fused
    ``scaled_dot_product_attention``, output projection) without its sequence-first layout: it
    transposes the batch to (L, N, E), repacks q, k and v into one contiguous (3, L, N, E)
    tensor and, in backward, zero-fills and sums three such tensors to undo that. Here q, k and v
    are views of the one projection and their gradients are concatenated once. Only the
    configuration the layers build is supported: no masks, no added bias_k/v or zero attention,
    dropout 0 (the module's own forward is used otherwise).
    """
    if attn.dropout != 0.0 or attn.bias_k is not None or attn.add_zero_attn or not attn._qkv_same_embed_dim \
            or not attn.batch_first:
        return attn(x, x, x, need_weights=False)[0]
    n, length, dim = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)  # (N, L, 3E)
    q, k, v = (t.view(n, length, heads, dim // heads).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, E / heads)
    out = out.transpose(1, 2).reshape(n, length, dim) if heads > 1 else out.view(n, length, dim)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


class ConvolutionalAttention(nn.Module):
    """Convolutional Attention (CA). Reproduces two official quirks: the attention residual is the input x,
    not the convolved F, and only the MLP branch is returned (no output residual)."""

    def __init__(self, dim: int, mlp_hidden: int, kernel_size: int, drop_path: float):
        super().__init__()
        # 'same' padding keeps the token count for any kernel; identical to the official
        # unpadded Conv1d for the only kernel it can run (1).
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding="same")
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)

    def _conv(self, x: Tensor) -> Tensor:
        """The Conv1d along the token axis of (N, L, dim) tokens; with kernel 1 a per-token linear
        map on the same weights, without the transposes to (N, dim, L) and back."""
        if self.conv.kernel_size == (1,):
            return F.linear(x, self.conv.weight.squeeze(-1), self.conv.bias)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: Tensor, attn: nn.MultiheadAttention) -> Tensor:
        f = x + torch.relu(self._conv(x))
        a = self.drop_path.add(x, _self_attention(attn, self.norm1(f)))
        return self.drop_path(self.mlp(self.norm2(a)))


class DenseShiftAttention(nn.Module):
    """Dense Shift Attention (DSA): token mixing on the token axis with every ``gap``-th token reset to its
    input, then one pre-LN block applied to both the mixed and the raw tokens; averaged."""

    def __init__(self, seq_len: int, dim: int, mlp_hidden: int, gap: int, drop_path: float):
        super().__init__()
        self.wt1 = nn.Linear(seq_len, seq_len)
        self.wt2 = nn.Linear(seq_len, seq_len)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)
        keep = torch.zeros(seq_len, dtype=torch.bool)
        keep[::gap] = True
        self.register_buffer("keep", keep, persistent=False)

    def _block(self, x: Tensor, attn: nn.MultiheadAttention) -> Tensor:
        x = self.drop_path.add(x, _self_attention(attn, self.norm1(x)))
        return self.drop_path.add(x, self.mlp(self.norm2(x)))

    def forward(self, x: Tensor, attn: nn.MultiheadAttention) -> Tensor:
        xt = x.transpose(1, 2)  # (N, dim, L): the Linear layers mix tokens
        shifted = self.wt2(torch.relu(self.wt1(xt))) + xt
        shifted = torch.where(self.keep, xt, shifted).transpose(1, 2)
        return (self._block(shifted, attn) + self._block(x, attn)) * 0.5


class DSTLayer(nn.Module):
    """``alpha * CA(x) + (1 - alpha) * DSA(x)`` with one attention shared by both branches."""

    def __init__(
        self, seq_len: int, dim: int, heads: int, alpha: float, gap: int, kernel_size: int,
        mlp_hidden: int, drop_path: float,
    ):
        super().__init__()
        self.alpha = alpha
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.ca = ConvolutionalAttention(dim, mlp_hidden, kernel_size, drop_path)
        self.dsa = DenseShiftAttention(seq_len, dim, mlp_hidden, gap, drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return self.alpha * self.ca(x, self.attn) + (1.0 - self.alpha) * self.dsa(x, self.attn)


class DSTE(TwoStreamBackbone):
    """Dense Spatio-Temporal Encoder. Defaults are the paper configuration.

    ``forward(x)`` takes a ``(N, C, T, V, M)`` clip of the chosen modality and returns
    ``(y_t (N, T, hidden), y_s (N, M*V, hidden))``. The positional encodings are re-added
    before every layer, as in the official code.
    """

    def __init__(
        self,
        *,
        frames: int = 64,
        joints: int = 25,
        persons: int = 2,
        channels: int = 3,
        hidden: int = 1024,
        heads: int = 1,
        layers: int = 2,
        alpha: float = 0.5,
        gap: int = 4,
        kernel_size: int = 1,
        drop_path: float = 0.1,
        mlp_ratio: float = 2.0,
        t_pe_max_len: int = 200,
    ):
        super().__init__(
            frames=frames, joints=joints, persons=persons, channels=channels, hidden=hidden,
            t_pe_max_len=t_pe_max_len,
        )
        self._config = dict(
            frames=frames, joints=joints, persons=persons, channels=channels, hidden=hidden, heads=heads,
            layers=layers, alpha=alpha, gap=gap, kernel_size=kernel_size, drop_path=drop_path,
            mlp_ratio=mlp_ratio, t_pe_max_len=t_pe_max_len,
        )
        mlp_hidden = int(round(hidden * mlp_ratio))

        def stack(seq_len: int) -> nn.ModuleList:
            return nn.ModuleList(
                DSTLayer(seq_len, hidden, heads, alpha, gap, kernel_size, mlp_hidden, drop_path)
                for _ in range(layers)
            )

        self.t_layers = stack(frames)
        self.s_layers = stack(persons * joints)
        self.reset_parameters()

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def temporal_stream(self, e_t: Tensor) -> Tensor:
        for layer in self.t_layers:
            e_t = layer(self.temporal_pe(e_t))
        return e_t

    def spatial_stream(self, e_s: Tensor) -> Tensor:
        for layer in self.s_layers:
            e_s = layer(e_s + self.spatial_pe)
        return e_s
