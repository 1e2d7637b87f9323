"""Frozen-encoder features, computed once per split and cached on disk.

The encoder is frozen, so the linear probe and KNN train on cached features instead of running
the encoder every epoch. Each split is encoded with the test input (``features.test_crop``):
``test_x`` for the probe's test set and KNN's queries, ``train_x`` for KNN's gallery. When the
probe's train input (``features.train_crop``) differs from it, the train split is encoded again
with it: once for a deterministic crop (USDRL's PKU-MMD II centre 50 %), or for K seeded random
crops per sample (ISC's random U(0.5, 1) crop), cached as ``train_x_crops`` (K, N, D); the probe
trains on crop ``(epoch - 1) % K`` in each epoch. The official ISC probe draws a fresh crop every
epoch (80 encoder passes over the train set); K cached crops cost K passes, once, and
approximate that stream by K draws. The file format: :mod:`skelrep.evaluation.feature_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.augment import center_crop_window, deterministic_crop_resize, random_crop_windows, resample_time
from ..data.dataset import SkeletonH5Dataset
from ..methods import build_encoder
from ..methods.base import WHOLE, DownstreamCrops, DownstreamInput
from ..models.encoder_file import load_encoder_file


def load_frozen_encoder(path: str | Path, device: torch.device):
    encoder = build_encoder(load_encoder_file(path)).to(device)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def downstream_inputs(cfg: Mapping[str, Any], official: DownstreamCrops) -> DownstreamCrops:
    """The train and test inputs a validated ``features`` section selects: ``auto`` takes the
    method's official input whole (its crop and its own ratio, scale and minimum length); an
    explicit crop takes ``<train|test>_ratio`` (center) or ``random_scale`` and
    ``random_min_frames`` (random)."""

    def pick(kind: str, ratio: float, auto: DownstreamInput) -> DownstreamInput:
        if kind == "auto":
            return auto
        if kind == "center":
            return DownstreamInput("center", ratio)
        if kind == "random":
            return DownstreamInput("random", scale=tuple(cfg["random_scale"]), min_frames=cfg["random_min_frames"])
        return WHOLE

    return DownstreamCrops(train=pick(cfg["train_crop"], cfg["train_ratio"], official.train),
                           test=pick(cfg["test_crop"], cfg["test_ratio"], official.test))


def crop_windows(spec: DownstreamInput, num_frames, count: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths), each (count, N) int64: the windows of ``spec`` for sequences of
    ``num_frames`` valid frames. Random crops: ``count`` independent draws per sample from a
    CPU ``torch.Generator`` seeded with ``seed``, independent of batching and device
    (:func:`skelrep.data.augment.random_crop_windows`); deterministic crops: the same window
    ``count`` times."""
    n = torch.as_tensor(np.asarray(num_frames), dtype=torch.int64)
    if spec.crop == "random":
        starts, lengths = random_crop_windows(n, count, spec.scale, spec.min_frames,
                                              torch.Generator().manual_seed(seed))
    else:
        starts, lengths = center_crop_window(n, spec.ratio) if spec.crop == "center" else (torch.zeros_like(n), n)
        starts, lengths = starts.expand(count, -1), lengths.expand(count, -1)
    return starts.numpy().copy(), lengths.numpy().copy()


@torch.no_grad()
def extract_features(encoder, dataset: SkeletonH5Dataset, *, crop: str = "whole", ratio: float = 1.0,
                     batch_size: int = 256, device: torch.device = torch.device("cpu"),
                     desc: str = "features") -> np.ndarray:
    """(N, D) float32 global features of every sample of ``dataset``, in dataset order, on a
    deterministic input (``crop`` whole or center)."""
    encoder.eval()
    out = []
    for lo in tqdm(range(0, len(dataset), batch_size), desc=desc, unit="batch", mininterval=1.0):
        items = [dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))]
        x = torch.stack([it[0] for it in items]).to(device)
        nf = torch.tensor([it[1] for it in items], device=device)
        clip = deterministic_crop_resize(x, nf, encoder.frames, mode=crop, ratio=ratio)
        out.append(encoder.features(clip).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.feature_dim), np.float32)


@torch.no_grad()
def extract_window_features(encoder, dataset: SkeletonH5Dataset, starts: np.ndarray, lengths: np.ndarray, *,
                            batch_size: int = 256, device: torch.device = torch.device("cpu"),
                            desc: str = "features") -> np.ndarray:
    """(K, N, D) float32 features of K windows per sample (``starts``/``lengths`` (K, N), e.g. from
    :func:`crop_windows`), each resampled to the clip length: one forward of the split per window,
    each batch read once."""
    encoder.eval()
    k, n = np.shape(starts)
    if np.shape(lengths) != (k, n) or n != len(dataset):
        raise ValueError(f"windows {np.shape(starts)}/{np.shape(lengths)} for {len(dataset)} samples")
    out = np.zeros((k, n, encoder.feature_dim), np.float32)
    for lo in tqdm(range(0, n, batch_size), desc=desc, unit="batch", mininterval=1.0):
        hi = min(lo + batch_size, n)
        x = torch.stack([dataset[i][0] for i in range(lo, hi)]).to(device)
        for j in range(k):
            clip = resample_time(x, torch.from_numpy(starts[j, lo:hi]), torch.from_numpy(lengths[j, lo:hi]),
                                 encoder.frames)
            out[j, lo:hi] = encoder.features(clip).float().cpu().numpy()
    return out
