"""The ISC sequence encoder (the official ``BIGRU`` of ``moco/GRU.py``).

The official code feeds a 3-layer bidirectional ``nn.GRU`` one frame at a time, carrying the
hidden state. Each call sees a length-1 sequence, so the "reverse" direction is just a
second forward-in-time recurrence: the model is causal. ``causal_official`` implements that
model with the equivalent stacked formulation (per layer two unidirectional GRUs run forward
in time over the whole sequence, outputs concatenated), which uses fused kernels and loads the
official weights by renaming. ``bidirectional`` is a true bidirectional GRU: a different,
labelled model.

Input ``(N, T, V*C*M)`` frame vectors in the official ISC (V, C, M) feature order, kept so official
weights load (UmURL and USDRL use (M, V, C)).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from skelrep.methods.isc.schema import GRU_MODES


class CausalBiGRULayer(nn.Module):
    """One layer of the official stepwise BiGRU: two forward-in-time GRUs on the same input."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.forward_gru = nn.GRU(input_size, hidden, batch_first=True)  # official *_l{k}
        self.reverse_gru = nn.GRU(input_size, hidden, batch_first=True)  # official *_l{k}_reverse

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.forward_gru(x)[0], self.reverse_gru(x)[0]], dim=-1)


class IscGRU(nn.Module):
    """Sequence encoder: ``forward`` -> (N, 2*hidden) top-layer output at the last frame."""

    def __init__(self, input_size: int = 150, hidden: int = 1024, layers: int = 3,
                 mode: str = "causal_official"):
        super().__init__()
        if mode not in GRU_MODES:
            raise ValueError(f"unknown GRU mode {mode!r}; expected one of {', '.join(GRU_MODES)}")
        self.input_size, self.hidden, self.num_layers, self.mode = input_size, hidden, layers, mode
        if mode == "causal_official":
            self.layers = nn.ModuleList(
                CausalBiGRULayer(input_size if k == 0 else 2 * hidden, hidden) for k in range(layers)
            )
        else:
            self.gru = nn.GRU(input_size, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        # official init: Xavier-uniform on every 2-D weight, PyTorch defaults elsewhere
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.xavier_uniform_(p)

    @property
    def feature_dim(self) -> int:
        return 2 * self.hidden

    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden": self.hidden, "layers": self.num_layers,
                "mode": self.mode}

    def frame_features(self, x: Tensor) -> Tensor:
        """Per-frame top-layer outputs ``(N, T, 2*hidden)`` (dense features)."""
        if self.mode == "bidirectional":
            return self.gru(x)[0]
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.frame_features(x)[:, -1]


_OFFICIAL_GRU = re.compile(r"^encoder\.gru\.((?:weight|bias)_(?:ih|hh))_l(\d+)(_reverse)?$")


def map_official_gru(state_dict: Mapping[str, Tensor], mode: str = "causal_official") -> dict[str, Tensor]:
    """Rename an official ``BIGRU`` state dict (without its ``fc``) to ``IscGRU`` names."""
    out = {}
    for name, value in state_dict.items():
        match = _OFFICIAL_GRU.match(name)
        if match is None:
            raise KeyError(f"not an official BIGRU encoder weight: {name!r}")
        kind, layer, reverse = match.groups()
        if mode == "bidirectional":
            out[f"gru.{kind}_l{layer}{reverse or ''}"] = value
        else:
            direction = "reverse_gru" if reverse else "forward_gru"
            out[f"layers.{layer}.{direction}.{kind}_l0"] = value
    return out
