"""Dense frame-wise classifier on frozen per-frame features (the head-only variant of dense detection).

A single ``Linear(D, num_classes)`` (0 = background) trained with per-frame cross-entropy and
SGD on frames pooled from all training videos and drawn in shuffled mini-batches. It reuses
the linear-probe initialisation (N(0, 0.01), bias 0) and epoch loop, so it is deterministic for
a fixed seed on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from skelrep.evaluation.head_sgd import HeadSGD
from skelrep.evaluation.linear import make_linear_head, sgd_epoch


def _stack_frames(feats: Sequence, labels: Sequence, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    if len(feats) != len(labels) or not feats:
        raise ValueError("need the same, non-zero number of feature and label sequences")
    for i, (f, y) in enumerate(zip(feats, labels, strict=True)):
        if np.ndim(f) != 2 or np.shape(f)[0] != np.shape(y)[0]:
            raise ValueError(
                f"video {i}: features {np.shape(f)} and labels {np.shape(y)} disagree; expected (T, D) and (T,)"
            )
    # One contiguous copy: memory is total_frames × D × 4 bytes.
    x = torch.cat([torch.as_tensor(np.asarray(f), dtype=torch.float32) for f in feats])
    y = torch.cat([torch.as_tensor(np.asarray(v), dtype=torch.long) for v in labels])
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"frame labels must lie in 0..{num_classes - 1}")
    return x, y


def train_frame_classifier(
    train_feats: Sequence,
    train_labels: Sequence,
    *,
    num_classes: int = 52,
    epochs: int,
    lr: float,
    batch_size: int,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    milestones: Sequence[int] = (),
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[nn.Linear, list[dict]]:
    """Train the per-frame head; returns it (on CPU, eval mode) and per-epoch history.

    ``train_feats[i]`` is (T_i, D), ``train_labels[i]`` is (T_i,) with 0 = background. The lr is
    constant unless ``milestones`` are given (×0.1 at each), matching the TPAMI dense recipe.
    """
    x, y = _stack_frames(train_feats, train_labels, num_classes)
    x, y = x.to(device), y.to(device)
    gen = torch.Generator().manual_seed(seed)
    head = make_linear_head(x.shape[1], num_classes, gen).to(device)
    opt = HeadSGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, milestones=milestones)
    history = []
    for epoch in tqdm(range(1, epochs + 1), desc="frame classifier", disable=not progress):
        epoch_lr = opt.lr
        loss, acc = sgd_epoch(head, opt, x, y, batch_size, gen)
        opt.end_epoch()
        history.append({"epoch": epoch, "lr": epoch_lr, "train_loss": loss, "train_frame_acc": acc})
    return head.cpu().eval(), history


@torch.no_grad()
def predict_frame_probs(head: nn.Module, feats, batch_size: int = 8192) -> np.ndarray:
    """Per-frame softmax probabilities (T, num_classes) as float32 numpy."""
    head.eval()
    device = next(head.parameters()).device
    x = torch.as_tensor(np.asarray(feats), dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"feats must be (T, D), got {tuple(x.shape)}")
    chunks = [F.softmax(head(x[s : s + batch_size].to(device)), dim=1).cpu() for s in range(0, x.shape[0], batch_size)]
    if not chunks:
        return np.zeros((0, head.out_features), dtype=np.float32)
    return torch.cat(chunks).numpy()
