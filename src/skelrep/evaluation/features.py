"""Frozen-encoder features, computed once per split and cached on disk.

The encoder is frozen and the USDRL/UmURL downstream input is deterministic (the whole valid
sequence resampled to the clip length, no augmentation), so the linear probe and KNN train on
these cached features instead of running the encoder every epoch (the same result, up to
floating-point non-determinism). The file format: :mod:`skelrep.evaluation.feature_file`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.augment import deterministic_crop_resize
from ..data.dataset import SkeletonH5Dataset
from ..methods import build_encoder
from ..models.encoder_file import load_encoder_file


def load_frozen_encoder(path: str | Path, device: torch.device):
    encoder = build_encoder(load_encoder_file(path)).to(device)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


@torch.no_grad()
def extract_features(encoder, dataset: SkeletonH5Dataset, *, crop: str = "whole", ratio: float = 1.0,
                     batch_size: int = 256, device: torch.device = torch.device("cpu"),
                     desc: str = "features") -> np.ndarray:
    """(N, D) float32 global features of every sample of ``dataset``, in dataset order."""
    encoder.eval()
    out = []
    for lo in tqdm(range(0, len(dataset), batch_size), desc=desc, unit="batch", mininterval=1.0):
        items = [dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))]
        x = torch.stack([it[0] for it in items]).to(device)
        nf = torch.tensor([it[1] for it in items], device=device)
        clip = deterministic_crop_resize(x, nf, encoder.frames, mode=crop, ratio=ratio)
        out.append(encoder.features(clip).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.feature_dim), np.float32)
