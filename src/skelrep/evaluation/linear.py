"""Linear probe on cached frozen features: cross-entropy, SGD, step schedule, periodic test evaluation.

Only ``fc = Linear(D, C)`` is trained; the encoder never appears here, so it cannot change.
The SGD helpers are shared with the detection heads (``detection/framewise.py``, ``window.py``);
the optimiser is :class:`~skelrep.evaluation.head_sgd.HeadSGD` (``torch.optim.SGD`` + ``MultiStepLR``,
bit for bit, without their per-stage and per-step overhead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from skelrep.evaluation.head_sgd import HeadSGD, linear_cross_entropy
from skelrep.evaluation.metrics import topk_accuracy


@dataclass
class LinearProbeResult:
    """Outcome of one probe run.

    ``test_scores_last`` are softmax probabilities of the last epoch (what the three-stream late
    fusion of ``skelrep compare`` sums). ``top1_best_on_test`` is the best test top-1 over the
    periodic evaluations, the convention of the official code bases (model selection on the test
    set), reported only as the secondary metric; ties go to the earliest evaluated epoch.
    """

    history: list[dict] = field(repr=False)
    top1_last: float
    top5_last: float
    top1_best_on_test: float
    best_epoch: int
    test_scores_last: np.ndarray = field(repr=False)
    state_dict: dict[str, torch.Tensor] = field(repr=False)


def make_linear_head(in_dim: int, num_classes: int, generator: torch.Generator) -> nn.Linear:
    """Linear layer initialised as in the official probes: weight N(0, 0.01), bias 0."""
    fc = nn.Linear(in_dim, num_classes)
    with torch.no_grad():
        nn.init.normal_(fc.weight, mean=0.0, std=0.01, generator=generator)
        fc.bias.zero_()
    return fc


def sgd_epoch(
    fc: nn.Linear,
    optimizer: HeadSGD,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns (mean loss, top-1 %).

    The permutation is drawn on the CPU generator so the order is identical on every device.
    Each step's gradients come from :func:`~skelrep.evaluation.head_sgd.linear_cross_entropy`
    (autograd's, bit for bit, at less cost).
    """
    n = x.shape[0]
    order = torch.randperm(n, generator=generator).to(x.device)
    loss_sum = 0.0
    correct = 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        loss, logits, fc.weight.grad, fc.bias.grad = linear_cross_entropy(fc.weight, fc.bias, xb, yb)
        optimizer.step()
        loss_sum += float(loss) * idx.numel()
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum / n, 100.0 * correct / n


@torch.no_grad()
def predict_probs(fc: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """Softmax probabilities (N, C) as float32 numpy, computed in batches."""
    fc.eval()
    out = [F.softmax(fc(x[s : s + batch_size]), dim=1).cpu() for s in range(0, x.shape[0], batch_size)]
    if not out:
        return np.zeros((0, fc.out_features), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def _as_tensor(a, dtype: torch.dtype, device: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    return t.to(device=device, dtype=dtype)


def train_linear_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    num_classes: int,
    epochs: int,
    lr: float,
    milestones: Sequence[int],
    batch_size: int,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eval_every: int = 5,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> LinearProbeResult:
    """Train fc on frozen features with SGD + MultiStep(×0.1) and cross-entropy.

    ``train_x`` is (N, D), or (K, N, D): K cached train crops of the same N samples (the
    features stage's ``train_x_crops``), of which epoch e (1-based) trains on crop (e - 1) % K,
    so the K crops take turns like the official per-epoch random crop.

    The test split is evaluated every ``eval_every`` epochs (1-based: 5, 10, ...) and always
    after the last epoch, which gives the primary ``top1_last``. ``test_top5`` uses
    k = min(5, num_classes). The lr logged for an epoch is the one it trained with; a milestone
    m lowers the lr from epoch m + 1 on (1-based). Deterministic on CPU for a fixed ``seed``
    (init and shuffling both come from one ``torch.Generator``).
    """
    if epochs < 1 or eval_every < 1 or batch_size < 1:
        raise ValueError("epochs, eval_every and batch_size must be >= 1")
    xtr = _as_tensor(train_x, torch.float32, device)
    ytr = _as_tensor(train_y, torch.long, device)
    xte = _as_tensor(test_x, torch.float32, device)
    yte = _as_tensor(test_y, torch.long, device)
    if xtr.ndim not in (2, 3) or xte.ndim != 2 or xtr.shape[-1] != xte.shape[1] or xtr.shape[-2] != ytr.shape[0]:
        raise ValueError(f"features must be (N, D) or, train, (K, N, D) with equal D and N train labels; got "
                         f"{tuple(xtr.shape)}, {tuple(xte.shape)} and {ytr.shape[0]} labels")
    crops = xtr if xtr.ndim == 3 else xtr[None]

    gen = torch.Generator().manual_seed(seed)
    fc = make_linear_head(xtr.shape[-1], num_classes, gen).to(device)
    opt = HeadSGD(fc.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, milestones=milestones)
    top_k = min(5, num_classes)

    history: list[dict] = []
    best: tuple[float, int] | None = None  # (test top-1, epoch)
    scores = np.zeros((0, num_classes), dtype=np.float32)
    for epoch in tqdm(range(1, epochs + 1), desc="linear probe", disable=not progress):
        epoch_lr = opt.lr
        loss, acc = sgd_epoch(fc, opt, crops[(epoch - 1) % crops.shape[0]], ytr, batch_size, gen)
        opt.end_epoch()
        row = {"epoch": epoch, "lr": epoch_lr, "train_loss": loss, "train_top1": acc}
        if epoch % eval_every == 0 or epoch == epochs:
            scores = predict_probs(fc, xte, batch_size)
            row["test_top1"] = topk_accuracy(scores, yte.cpu(), 1)
            row["test_top5"] = topk_accuracy(scores, yte.cpu(), top_k)
            if best is None or row["test_top1"] > best[0]:
                best = (row["test_top1"], epoch)
        history.append(row)

    assert best is not None  # the last epoch is always evaluated
    return LinearProbeResult(
        history=history,
        top1_last=history[-1]["test_top1"],
        top5_last=history[-1]["test_top5"],
        top1_best_on_test=best[0],
        best_epoch=best[1],
        test_scores_last=scores,
        state_dict={k: v.detach().cpu().clone() for k, v in fc.state_dict().items()},
    )


def standardize_features(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per-dimension z-score with the train split's statistics, applied to every split.

    Equivalent to a parameter-free BatchNorm in front of the linear head (MAE's linear probe).
    It makes the probe's optimisation insensitive to the feature scale, which differs by
    orders of magnitude between a random-init and a pretrained encoder: without it, a short
    probe can favour one encoder for reasons unrelated to representation quality.
    ``train_x`` may be (K, N, D), K cached train crops: the statistics are then those of all
    K * N rows (every crop the probe trains on), and the result keeps the (K, N, D) shape.
    """
    rows = train_x.reshape(-1, train_x.shape[-1]) if train_x.ndim == 3 else train_x
    mean = rows.mean(0, keepdims=True)
    std = rows.std(0, keepdims=True) + 1e-6
    return [((x - mean) / std).astype(np.float32) for x in (train_x, *others)]
