"""The hand-crafted baseline: normalised joint coordinates, resampled to a fixed length, flattened.

No learned features: a sample's feature is its valid frames (``num_frame``) of the processed
joint array ``(C, T, V, M)`` (already normalised by preprocessing: centred, rotated, scaled)
resampled by linear interpolation to ``frames`` frames and flattened to ``C * frames * V * M``
values. The resampling is the encoders' whole-sequence downstream input
(:func:`skelrep.data.augment.deterministic_crop_resize` with ``mode="whole"``), so the baseline
sees exactly what an encoder sees, only shorter; padding frames never enter. It depends on no
method or encoder, and is deterministic (no random draw; the same bytes for the same input).

The linear and KNN stages evaluate it like any encoder's features (``handcrafted.npz`` in the
feature folder): the linear probe on these features is a multinomial logistic regression on
the coordinates, the "hand-crafted baseline" row of the benchmark tables.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.augment import deterministic_crop_resize
from ..data.dataset import SkeletonH5Dataset

VARIANT = "handcrafted"  # the feature file <features>/handcrafted.npz and the metric prefix <stage>/handcrafted/


def handcrafted_features(x: torch.Tensor, num_frames: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, C * frames * V * M) float32: each sample's valid frames of ``x`` (N, C, T_max, V, M),
    resampled to ``frames`` frames as the encoders' whole-sequence input, flattened (C, T, V, M order)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    clip = deterministic_crop_resize(x.float(), num_frames, frames, mode="whole")
    return clip.reshape(clip.shape[0], -1)


def extract_handcrafted(dataset: SkeletonH5Dataset, frames: int, batch_size: int = 256) -> np.ndarray:
    """(N, C * frames * V * M) float32 hand-crafted features of every sample of ``dataset``, in order."""
    out = []
    for lo in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))]
        x = torch.stack([it[0] for it in items])
        nf = torch.tensor([it[1] for it in items])
        out.append(handcrafted_features(x, nf, frames).numpy())
    channels, _, joints, persons = dataset.sample_shape
    return np.concatenate(out) if out else np.zeros((0, channels * frames * joints * persons), np.float32)
