"""Supervised fine-tuning of a pretrained encoder plus a linear head: the semi-supervised protocol
(a labelled fraction of the train split), full fine-tuning (every label) and transfer fine-tuning
(an encoder pretrained on another dataset) are this one loop on different subsets.

The model is the encoder of an encoder file (any method: its ``features``, the same global
feature the linear probe reads) and ``fc = Linear(D, C)`` initialised as the linear probe's,
N(0, 0.01) and bias 0, trained end to end with cross-entropy. The recipe follows the released
reference (CMD's semi-supervised and transfer scripts, derived from ISC; evaluation.md §4-5):
SGD with momentum over every parameter at one learning rate, a multi-step schedule (x0.1),
``model.train()`` while training (DropPath/dropout active), every partial last batch kept; the
train input a random crop U(lo, hi) of the valid sequence (at least ``min_frames`` frames),
resampled to the clip length, drawn anew for every sample in every epoch (the crop/resize
augmentation of the downstream feeders, nothing else); the test input the method's own
deterministic test crop. ``freeze_encoder`` keeps the encoder frozen and in ``eval()`` mode and
trains the head alone: the USDRL-style probe on a label subset (evaluation.md §4, labelled).

The test split is evaluated every ``eval_every`` epochs and after the last one; the primary
number is top-1 after the last epoch, best-on-test (the official codes' model selection on the
test set) the secondary one, as for the linear probe (evaluation.md §8).

Determinism and resume: the head's initialisation comes from a generator seeded with ``seed``;
each epoch reseeds the sample order, the crops and torch's global RNG (DropPath) from ``(seed,
epoch)``, so a run resumed from its checkpoint ends with the same weights as an uninterrupted
one. ``ckpt_dir`` (optional) holds the run's resume checkpoint (every ``ckpt_every`` epochs,
skelrep.training.checkpoint) and, once it completes, its result (``result.json``): a stage
killed between runs repeats none of the runs it finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data.augment import deterministic_crop_resize, random_crop_windows, resample_time
from ..data.dataset import SkeletonH5Dataset
from ..io import write_json_atomic
from ..methods import build_encoder
from ..methods.base import DownstreamCrops, DownstreamInput
from ..models.encoder_file import load_encoder_file
from ..training.checkpoint import checkpoint_path, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..training.optim import EagerSGD
from .features import downstream_inputs
from .linear import make_linear_head
from .metrics import topk_accuracy

log = logging.getLogger(__name__)

RESULT_NAME = "result.json"
RANDOM_TRAIN_INPUT = DownstreamInput("random", scale=(0.5, 1.0), min_frames=64)  # CMD / ISC: U(0.5, 1), >= 64


# the two encoder files of a model folder a fine-tune starts from, and the per-epoch curves it logs
ENCODER_FILES = {"pretrained": "encoder.pt", "random_init": "encoder_random.pt"}
CURVES = ("lr", "train_loss", "train_top1", "test_top1", "test_top5")

@dataclass(frozen=True)
class FinetuneSettings:
    """One fine-tuning run's recipe (the validated ``finetune`` settings and the train input; the
    test input is fixed by the clips :func:`evaluation_clips` made)."""

    epochs: int
    lr: float
    milestones: tuple[int, ...]
    batch_size: int
    momentum: float = 0.9
    weight_decay: float = 0.0
    min_steps: int = 0
    eval_every: int = 5
    ckpt_every: int = 10
    seed: int = 0
    train_input: DownstreamInput = RANDOM_TRAIN_INPUT
    freeze_encoder: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1 or self.ckpt_every < 1:
            raise ValueError("epochs, batch_size, eval_every and ckpt_every must be >= 1")


@dataclass(frozen=True)
class Schedule:
    """The epochs a run trains on ``num_samples`` labelled samples (partial last batch kept)."""

    epochs: int
    milestones: tuple[int, ...]
    steps_per_epoch: int

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def schedule_for(settings: FinetuneSettings, num_samples: int) -> Schedule:
    """``epochs``, or more when that is fewer than ``min_steps`` optimiser steps; the milestones
    are then scaled by the same factor (rounded half up), as the pretraining schedule does
    (skelrep.training.schema.train_schedule). A 1 % subset of a small split is one batch per
    epoch: ``min_steps`` gives it enough steps to move at all."""
    if num_samples < 1:
        raise ValueError("no labelled sample to fine-tune on")
    steps_per_epoch = math.ceil(num_samples / settings.batch_size)
    needed = math.ceil(settings.min_steps / steps_per_epoch)
    if needed <= settings.epochs:
        return Schedule(settings.epochs, tuple(settings.milestones), steps_per_epoch)
    scaled = tuple(int(math.floor(m * needed / settings.epochs + 0.5)) for m in settings.milestones)
    return Schedule(needed, scaled, steps_per_epoch)


class FinetuneModel(nn.Module):
    """Encoder (its global ``features``) and a linear head: ``(N, C, frames, V, M)`` clips -> logits."""

    def __init__(self, encoder: nn.Module, num_classes: int, generator: torch.Generator):
        super().__init__()
        self.encoder = encoder
        self.fc = make_linear_head(encoder.feature_dim, num_classes, generator)

    @property
    def frames(self) -> int:
        return self.encoder.frames

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder.features(clip))


def load_trainable_encoder(path: str | Path) -> nn.Module:
    """The encoder of an encoder file with every parameter trainable (on the CPU)."""
    encoder = build_encoder(load_encoder_file(path))
    for p in encoder.parameters():
        p.requires_grad_(True)
    return encoder


@dataclass
class FinetuneResult:
    """Outcome of one run; ``history`` has one row per epoch (test columns on evaluated epochs)."""

    history: list[dict] = field(repr=False)
    top1_last: float
    top5_last: float
    top1_best_on_test: float
    best_epoch: int
    epochs: int
    steps: int
    labelled: int

    def metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}/top1_last": self.top1_last, f"{prefix}/top5_last": self.top5_last,
                f"{prefix}/top1_best_on_test": self.top1_best_on_test, f"{prefix}/best_epoch": self.best_epoch}


class Sequences:
    """Samples of a split held in memory: each one's valid frames only (``(C, n_i, V, M)``), so the
    epochs of a run, and every run of a stage, read the file once. ``batch`` pads a batch to its
    longest sequence (every crop reads the valid frames only)."""

    def __init__(self, x: list[torch.Tensor], num_frames: torch.Tensor, labels: torch.Tensor):
        if not len(x) == len(num_frames) == len(labels):
            raise ValueError(f"{len(x)} sequences, {len(num_frames)} lengths, {len(labels)} labels")
        self.x, self.num_frames, self.labels = x, num_frames, labels

    @classmethod
    def load(cls, dataset: SkeletonH5Dataset, positions: Sequence[int] | np.ndarray | None = None,
             desc: str = "read", progress: bool = False) -> Sequences:
        """The samples at ``positions`` of ``dataset`` (default: all), in that order."""
        positions = range(len(dataset)) if positions is None else [int(p) for p in positions]
        x, nf, y = [], [], []
        for i in tqdm(positions, desc=desc, unit="sample", disable=not progress, mininterval=1.0):
            joint, n, label, _ = dataset[i]
            x.append(joint[:, :n].clone())
            nf.append(n)
            y.append(label)
        return cls(x, torch.tensor(nf, dtype=torch.int64), torch.tensor(y, dtype=torch.int64))

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = [int(i) for i in idx]
        nf = self.num_frames[idx]
        longest = int(nf.max())
        x = torch.stack([F.pad(self.x[i], (0, 0, 0, 0, 0, longest - self.x[i].shape[1])) for i in idx])
        return x, nf, self.labels[idx]


@torch.no_grad()
def evaluation_clips(dataset: SkeletonH5Dataset, test_input: DownstreamInput, frames: int, *,
                     batch_size: int = 256, desc: str = "test clips", progress: bool = False) -> torch.Tensor:
    """(N, C, frames, V, M) float32: every sample of ``dataset`` on the deterministic ``test_input``
    (whole or centre crop, resampled to the clip length), computed once for every evaluation."""
    if not test_input.deterministic:
        raise ValueError("the test input must be deterministic (whole or center)")
    out = []
    for lo in tqdm(range(0, len(dataset), batch_size), desc=desc, unit="batch", disable=not progress,
                   mininterval=1.0):
        part = Sequences.load(dataset, range(lo, min(lo + batch_size, len(dataset))))
        x, nf, _ = part.batch(range(len(part)))
        out.append(deterministic_crop_resize(x, nf, frames, mode=test_input.crop, ratio=test_input.ratio))
    if not out:
        raise ValueError("the test split is empty")
    return torch.cat(out)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # one stream per (seed, epoch): the order and crops of an epoch do not depend on the ones before
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@torch.no_grad()
def predict_scores(model: FinetuneModel, clips: torch.Tensor, *, batch_size: int,
                   device: torch.device) -> np.ndarray:
    """(N, C) float32 softmax probabilities of the model on ready clips (``evaluation_clips``)."""
    model.eval()
    out = [F.softmax(model(clips[lo: lo + batch_size].to(device)).float(), dim=1).cpu()
           for lo in range(0, len(clips), batch_size)]
    return torch.cat(out).numpy()


def _train_clips(x: torch.Tensor, nf: torch.Tensor, spec: DownstreamInput, frames: int,
                 generator: torch.Generator) -> torch.Tensor:
    if spec.crop == "random":
        starts, lengths = random_crop_windows(nf, 1, spec.scale, spec.min_frames, generator)
        return resample_time(x, starts[0], lengths[0], frames)
    return deterministic_crop_resize(x, nf, frames, mode=spec.crop, ratio=spec.ratio)


def _load_result(ckpt_dir: Path | None, fingerprint: str | None) -> FinetuneResult | None:
    if ckpt_dir is None or fingerprint is None or not (ckpt_dir / RESULT_NAME).exists():
        return None
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        saved = json.loads((ckpt_dir / RESULT_NAME).read_text(encoding="utf-8"))
        if saved.pop("fingerprint") == fingerprint:
            return FinetuneResult(**saved)
    return None


def finetune(
    encoder: nn.Module,
    train: Sequences,
    positions: Sequence[int] | np.ndarray,
    test: torch.Tensor,
    test_labels: Sequence[int] | np.ndarray,
    *,
    num_classes: int,
    settings: FinetuneSettings,
    device: torch.device | str = "cpu",
    ckpt_dir: str | Path | None = None,
    fingerprint: str | None = None,
    desc: str = "fine-tune",
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``encoder`` (modified in place) plus a new head on the ``positions`` of ``train``;
    evaluate on the ready ``test`` clips (:func:`evaluation_clips`) and their labels. See the
    module doc for the recipe, determinism and resume (``ckpt_dir`` with the run's
    ``fingerprint``: a finished run's result is returned as saved, an interrupted one resumes
    from its checkpoint)."""
    device = torch.device(device)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    positions = np.asarray(positions, dtype=np.int64)
    done = _load_result(ckpt_dir, fingerprint)
    if done is not None:
        log.info("%s: finished before (%s), result reused", desc, ckpt_dir / RESULT_NAME)
        return done
    schedule = schedule_for(settings, len(positions))
    model = FinetuneModel(encoder, num_classes, torch.Generator().manual_seed(settings.seed)).to(device)
    if settings.freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = EagerSGD(trainable, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(schedule.milestones), gamma=0.1)
    history: list[dict] = []
    start = 1
    state = load_checkpoint(ckpt_dir, fingerprint) if ckpt_dir is not None and fingerprint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        history = list(state["history"])
        start = int(state["epoch"]) + 1
        log.info("%s: resuming after epoch %d (%s)", desc, start - 1, checkpoint_path(ckpt_dir))

    top_k = min(5, num_classes)
    for epoch in tqdm(range(start, schedule.epochs + 1), desc=desc, unit="epoch", disable=not progress):
        gen = _epoch_generator(settings.seed, epoch)
        torch.manual_seed(settings.seed * 1_000_003 + epoch)  # DropPath / dropout: exact on resume
        model.train()
        if settings.freeze_encoder:
            model.encoder.eval()  # frozen means frozen: no BatchNorm statistics move either
        order = positions[torch.randperm(len(positions), generator=gen).numpy()]
        epoch_lr = opt.param_groups[0]["lr"]
        loss_sum, correct = 0.0, 0
        batches = range(0, len(order), settings.batch_size)
        for lo in tqdm(batches, desc=f"{desc} epoch {epoch}", unit="batch", leave=False, mininterval=2.0,
                       disable=not progress or len(batches) < 50):  # paper-size epochs take minutes
            x, nf, y = train.batch(order[lo: lo + settings.batch_size])
            clip = _train_clips(x.to(device), nf, settings.train_input, model.frames, gen)
            logits = model(clip)
            y = y.to(device)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss at epoch {epoch}; lower finetune.train.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
        sched.step()
        row = {"epoch": epoch, "lr": epoch_lr, "train_loss": loss_sum / len(order),
               "train_top1": 100.0 * correct / len(order)}
        if epoch % settings.eval_every == 0 or epoch == schedule.epochs:
            scores = predict_scores(model, test, batch_size=max(256, settings.batch_size), device=device)
            row["test_top1"] = topk_accuracy(scores, test_labels, 1)
            row["test_top5"] = topk_accuracy(scores, test_labels, top_k)
        history.append(row)
        if ckpt_dir is not None and fingerprint is not None and (
                epoch % settings.ckpt_every == 0 and epoch < schedule.epochs):
            save_checkpoint(ckpt_dir, {"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                                       "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                       "scaler": None, "rng": rng_state(), "history": history})
        if on_epoch_end is not None:
            on_epoch_end(row)

    evaluated = [h for h in history if "test_top1" in h]
    best = max(evaluated, key=lambda h: (h["test_top1"], -h["epoch"]))  # ties: the earliest epoch
    result = FinetuneResult(history=history, top1_last=history[-1]["test_top1"], top5_last=history[-1]["test_top5"],
                            top1_best_on_test=best["test_top1"], best_epoch=best["epoch"], epochs=schedule.epochs,
                            steps=schedule.steps, labelled=len(positions))
    if ckpt_dir is not None and fingerprint is not None:
        write_json_atomic(ckpt_dir / RESULT_NAME, {"fingerprint": fingerprint, **asdict(result)})
        with contextlib.suppress(FileNotFoundError):
            checkpoint_path(ckpt_dir).unlink()
    return result


# ------------------------------------------------------------------ what the stages share


def section_inputs(cfg: Mapping, official: DownstreamCrops) -> DownstreamCrops:
    """The train and test inputs a validated ``finetune`` section selects (its crop keys are
    the ``features`` section's; ``auto``: the method's official input)."""
    return downstream_inputs(cfg, official)


def section_settings(cfg: Mapping, train_input: DownstreamInput, seed: int | None = None) -> FinetuneSettings:
    """The recipe of a validated ``finetune`` section (``seed``: the run's, default the section's)."""
    return FinetuneSettings(
        epochs=cfg["epochs"], lr=cfg["lr"], milestones=tuple(cfg["milestones"]), batch_size=cfg["batch_size"],
        momentum=cfg["momentum"], weight_decay=cfg["weight_decay"], min_steps=cfg["min_steps"],
        eval_every=cfg["eval_every"], ckpt_every=cfg["ckpt_every"], seed=cfg["seed"] if seed is None else seed,
        train_input=train_input, freeze_encoder=cfg["freeze_encoder"])


def mean_std(results: Sequence[FinetuneResult], prefix: str) -> dict[str, float]:
    """Mean and (population) standard deviation over repeated runs (the label-subset seeds) of
    the last-epoch and best-on-test top-1, the mean last-epoch top-5, the mean labelled count and
    the number of runs."""
    out: dict[str, float] = {}
    for name in ("top1_last", "top1_best_on_test", "top5_last"):
        values = np.array([getattr(r, name) for r in results], dtype=np.float64)
        out[f"{prefix}/{name}_mean"] = float(values.mean())
        if name != "top5_last":
            out[f"{prefix}/{name}_std"] = float(values.std())
    out[f"{prefix}/labelled"] = float(np.mean([r.labelled for r in results]))
    out[f"{prefix}/runs"] = float(len(results))
    return out
