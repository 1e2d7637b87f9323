"""The ISC image encoder: HCN (Li et al. 2018), two streams: position and motion.

Module names follow the official ``moco/HCN.py`` (``conv1`` .. ``conv6``, motion stream
``conv1m`` .. ``conv4m``) so official weights load without renaming.

Input ``(N, C, T, V, M)`` with ``T == frames``. After the (3, 1) convolution the
``frames`` output channels become an image axis (the official ``out_channels=window_size``),
so the output is ``4*width * (frames//16)**2`` (4096 at paper size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skelrep.skeleton import NTU_NUM_JOINTS


def _conv_pool(in_channels: int, out_channels: int, *, relu: bool, dropout: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    if relu:
        layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout2d(0.5))
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class IscHCN(nn.Module):
    def __init__(self, in_channels: int = 3, num_joints: int = NTU_NUM_JOINTS, num_persons: int = 2,
                 width: int = 64, frames: int = 64):
        super().__init__()
        if frames < 16:
            raise ValueError(f"HCN needs at least 16 frames (four 2x poolings), got {frames}")
        self.in_channels, self.num_joints, self.num_persons = in_channels, num_joints, num_persons
        self.width, self.frames = width, frames
        for suffix in ("", "m"):  # position stream, motion stream
            self.add_module(f"conv1{suffix}", nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.ReLU()))
            self.add_module(f"conv2{suffix}", nn.Conv2d(width, frames, (3, 1), padding=(1, 0)))
            self.add_module(f"conv3{suffix}", _conv_pool(num_joints, width // 2, relu=False, dropout=False))
            self.add_module(f"conv4{suffix}", _conv_pool(width // 2, width, relu=False, dropout=True))
        self.conv5 = _conv_pool(2 * width, 2 * width, relu=True, dropout=True)
        self.conv6 = _conv_pool(2 * width, 4 * width, relu=True, dropout=True)
        # official init: Glorot-uniform convolutions (fans include the kernel), zero biases
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def feature_dim(self) -> int:
        return 4 * self.width * (self.frames // 16) ** 2

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "num_joints": self.num_joints,
                "num_persons": self.num_persons, "width": self.width, "frames": self.frames}

    def _stream(self, x: Tensor, suffix: str) -> Tensor:
        """(N, C, T, V) -> (N, width, T/4, frames/4)."""
        x = getattr(self, f"conv2{suffix}")(getattr(self, f"conv1{suffix}")(x))
        x = x.permute(0, 3, 2, 1)  # joints become channels: (N, V, T, frames)
        return getattr(self, f"conv4{suffix}")(getattr(self, f"conv3{suffix}")(x))

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        # motion: frame differences resized back to T frames (bilinear over (T, V) = linear in time)
        motion = (x[:, :, 1:] - x[:, :, :-1]).permute(0, 1, 4, 2, 3).reshape(n, c * m, t - 1, v)
        motion = F.interpolate(motion, size=(t, v), mode="bilinear", align_corners=False)
        motion = motion.reshape(n, c, m, t, v).permute(0, 1, 3, 4, 2)
        per_person = []
        for i in range(m):
            both = torch.cat([self._stream(x[..., i], ""), self._stream(motion[..., i], "m")], dim=1)
            per_person.append(self.conv6(self.conv5(both)))
        return torch.stack(per_person).amax(0).flatten(1)
