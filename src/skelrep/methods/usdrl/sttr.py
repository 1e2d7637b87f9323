"""STTR, the plain spatio-temporal transformer variant of USDRL (official ``model/STTR.py``).

Each stream is one ``nn.TransformerEncoder`` (post-norm, ReLU, dropout 0). Because both
layers sit inside that one module, each positional encoding is added once, before the
encoder, unlike DSTE which re-adds it before every layer.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from skelrep.methods.usdrl.backbone import TwoStreamBackbone
from skelrep.models.components import transformer_encoder


class STTR(TwoStreamBackbone):
    """Spatio-temporal transformer. ``ffn_ratio`` 1 gives the official dim_feedforward = hidden."""

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
        ffn_ratio: float = 1.0,
        t_pe_max_len: int = 200,
    ):
        super().__init__(
            frames=frames, joints=joints, persons=persons, channels=channels, hidden=hidden,
            t_pe_max_len=t_pe_max_len,
        )
        self._config = dict(
            frames=frames, joints=joints, persons=persons, channels=channels, hidden=hidden, heads=heads,
            layers=layers, ffn_ratio=ffn_ratio, t_pe_max_len=t_pe_max_len,
        )
        feedforward = int(round(hidden * ffn_ratio))
        self.t_encoder = transformer_encoder(hidden, heads, feedforward, layers)
        self.s_encoder = transformer_encoder(hidden, heads, feedforward, layers)
        self.reset_parameters()

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def temporal_stream(self, e_t: Tensor) -> Tensor:
        return self.t_encoder(self.temporal_pe(e_t))

    def spatial_stream(self, e_s: Tensor) -> Tensor:
        return self.s_encoder(e_s + self.spatial_pe)
