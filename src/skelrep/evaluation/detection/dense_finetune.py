"""Protocol D: dense per-frame classification, the whole network fine-tuned (the USDRL TPAMI
pipeline, evaluation.md §6.3 and usdrl.md §13.2).

- **Model.** An encoder's dense per-frame features ``(N, frames, dense_dim)`` (USDRL: usdrl.md
  §13.1; UmURL and the ISC GRU: labelled extensions) and a per-frame ``Linear(dense_dim,
  num_classes)`` (0 = background), initialised N(0, 0.01), bias 0, as the official code.
- **Training.** Per-frame cross-entropy; SGD with momentum over every parameter at one
  learning rate, no weight decay, a **constant** learning rate (the official schedule function
  is never called); the model in ``eval()`` mode throughout (DropPath off, as the official
  loop). ``finetune: false`` freezes the encoder and trains the head alone (a labelled variant).
- **Training clips** (the official generator is not released):

  - ``sliding``: clips of the encoder's length at the native frame rate, every ``stride``
    frames over every training video (the tail covered); frames past a video's end repeat its
    last frame and are left out of the loss;
  - ``seg2clip``: one clip per ground-truth segment and epoch, approximating the inferred
    official scheme: a background share b ~ U(0.5, 0.6) of the clip, split at random before
    (up to half the clip) and after the segment and read at the native rate (indices clipped to
    the video, their own frame labels), and the whole segment resampled to fill the rest with
    its label.

- **Test.** Consecutive non-overlapping clips at the native rate, the last one padded by
  repeating the last frame and its padded predictions discarded; the per-frame softmax
  concatenated per video (:func:`predict_dense_probs`).

Deterministic for a seed on CPU: the head's initialisation comes from ``seed``, each epoch's
clip order and seg2clip draws from a CPU generator seeded with ``(seed, epoch)``. That is also
what makes resuming exact: with ``ckpt_dir`` and a ``fingerprint`` (the run's identity), the
model, optimiser and history are saved every ``ckpt_every`` epochs
(:mod:`skelrep.training.checkpoint`, atomically) and a later run of the same fingerprint goes on
after the last saved epoch, ending with the weights of an uninterrupted run; the checkpoint is
removed when training completes (the paper recipe is 150 epochs at batch 512).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...data.augment import resample_time
from ...training.checkpoint import checkpoint_path, clear_checkpoint, load_checkpoint, save_checkpoint
from ...training.optim import EagerSGD
from ..linear import make_linear_head
from .dense import _clip, _windows

log = logging.getLogger(__name__)

IGNORE = -1  # the label of padded frames: no loss
TRAIN_CLIPS = ("sliding", "seg2clip")
SEG2CLIP_BACKGROUND = (0.5, 0.6)  # the background share of a seg2clip clip, U(lo, hi)
SEG2CLIP_FRONT = 0.5  # at most this share of the clip before the segment


@dataclass(frozen=True)
class DenseFinetuneSettings:
    """The recipe of protocol D (the validated ``detection.dense_finetune`` section)."""

    epochs: int
    lr: float
    batch_size: int
    momentum: float = 0.9
    weight_decay: float = 0.0
    finetune: bool = True
    train_clips: str = "sliding"
    train_stride: int = 32
    seed: int = 0
    ckpt_every: int = 10  # resume checkpoint every this many epochs (with a ckpt_dir)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.train_stride < 1 or self.ckpt_every < 1:
            raise ValueError("epochs, batch_size, train_stride and ckpt_every must be >= 1")
        if self.train_clips not in TRAIN_CLIPS:
            raise ValueError(f"train_clips must be one of {TRAIN_CLIPS}; got {self.train_clips!r}")


class DenseDetector(nn.Module):
    """Encoder plus a per-frame linear head: ``(N, C, frames, V, M)`` clips -> ``(N, frames, classes)``."""

    def __init__(self, encoder: nn.Module, num_classes: int, generator: torch.Generator):
        super().__init__()
        if not getattr(encoder, "dense_dim", 0):
            raise ValueError(f"the {getattr(encoder, 'method', type(encoder).__name__)} encoder has no dense "
                             "per-frame features (protocol D needs them: USDRL, UmURL, the ISC GRU)")
        self.encoder = encoder
        self.fc = make_linear_head(encoder.dense_dim, num_classes, generator)

    @property
    def frames(self) -> int:
        return self.encoder.frames

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder.dense_features(clip))


@dataclass(frozen=True)
class TrainVideo:
    """One training video: joints (C, T, V, M), frame labels (T,) and its ground-truth segments
    as internal ``(label, start, end)`` rows, [start, end) 0-based (seg2clip only)."""

    joint: np.ndarray
    frame_label: np.ndarray
    segments: tuple[tuple[int, int, int], ...] = ()


def sliding_starts(num_frames: int, length: int, stride: int) -> list[int]:
    """The first frames of the ``sliding`` training clips of a video: every ``stride`` frames,
    the tail covered (a video shorter than a clip: one clip from frame 0)."""
    return _windows(num_frames, length, stride)


def sliding_clip(video: TrainVideo, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(clip (C, length, V, M), labels (length,))`` from ``start``; frames past the end repeat
    the last one, labelled :data:`IGNORE`."""
    num_frames = video.joint.shape[1]
    labels = np.full(length, IGNORE, dtype=np.int64)
    keep = min(length, num_frames - start)
    labels[:keep] = video.frame_label[start: start + keep]
    return _clip(video.joint, start, length), labels


def seg2clip(video: TrainVideo, segment: tuple[int, int, int], length: int, generator: torch.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """One clip of ``length`` frames around ``segment`` = (label, start, end): native-rate
    background before and after it, the segment resampled to the rest (module doc)."""
    label, start, end = (int(v) for v in segment)
    num_frames = video.joint.shape[1]
    if not 0 <= start < end <= num_frames:
        raise ValueError(f"segment [{start}, {end}) outside the video's {num_frames} frames")
    lo, hi = SEG2CLIP_BACKGROUND
    background = int(length * (lo + (hi - lo) * float(torch.rand(1, generator=generator, dtype=torch.float64))))
    front = min(int(length * SEG2CLIP_FRONT * float(torch.rand(1, generator=generator, dtype=torch.float64))),
                background)
    action = length - background
    if action < 1:
        raise ValueError(f"a clip of {length} frames leaves no frame for the action")
    before = np.clip(np.arange(start - front, start), 0, num_frames - 1)
    after = np.clip(np.arange(end, end + background - front), 0, num_frames - 1)
    seg = torch.from_numpy(np.ascontiguousarray(video.joint[:, start:end]))[None]
    middle = resample_time(seg, torch.zeros(1, dtype=torch.int64), torch.tensor([end - start]), action)[0].numpy()
    clip = np.concatenate([video.joint[:, before], middle, video.joint[:, after]], axis=1)
    labels = np.concatenate([video.frame_label[before], np.full(action, label), video.frame_label[after]])
    return clip.astype(np.float32, copy=False), labels.astype(np.int64)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def finetune_dense_detector(encoder: nn.Module, videos: Sequence[TrainVideo], *, num_classes: int,
                            settings: DenseFinetuneSettings, device: torch.device | str = "cpu",
                            progress: bool = False, ckpt_dir: str | Path | None = None,
                            fingerprint: str | None = None) -> tuple[DenseDetector, list[dict]]:
    """Train protocol D's detector from ``encoder`` (modified in place when fine-tuned); returns
    the model (on ``device``, eval mode) and one history row per epoch. With ``ckpt_dir`` and
    ``fingerprint``, an interrupted run resumes (module doc)."""
    if not videos:
        raise ValueError("no training video")
    for i, v in enumerate(videos):
        if v.joint.ndim != 4 or np.shape(v.frame_label) != (v.joint.shape[1],):
            raise ValueError(f"video {i}: joint {v.joint.shape} and labels {np.shape(v.frame_label)}; expected "
                             "(C, T, V, M) and (T,)")
        if v.frame_label.size and (int(v.frame_label.min()) < 0 or int(v.frame_label.max()) >= num_classes):
            raise ValueError(f"video {i}: frame labels must lie in 0..{num_classes - 1}")
    device = torch.device(device)
    model = DenseDetector(encoder, num_classes, torch.Generator().manual_seed(settings.seed)).to(device)
    for p in model.encoder.parameters():
        p.requires_grad_(settings.finetune)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = EagerSGD(trainable, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    length = model.frames
    if settings.train_clips == "sliding":  # (video, first frame); each clip is read when its batch is
        items: list = [(i, s) for i, v in enumerate(videos)
                       for s in sliding_starts(v.joint.shape[1], length, settings.train_stride)]
    else:
        items = [(i, seg) for i, v in enumerate(videos) for seg in v.segments]
        if not items:
            raise ValueError("seg2clip: the training videos have no ground-truth segment")
    model.eval()  # the official loop: DropPath off, normalisation statistics fixed
    history: list[dict] = []
    start = 1
    resumable = ckpt_dir is not None and fingerprint is not None
    state = load_checkpoint(ckpt_dir, fingerprint) if resumable else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start = list(state["history"]), int(state["epoch"]) + 1
        log.info("dense detector: resuming after epoch %d (%s)", start - 1, checkpoint_path(ckpt_dir))
    for epoch in tqdm(range(start, settings.epochs + 1), desc="dense detector", unit="epoch", disable=not progress):
        gen = _epoch_generator(settings.seed, epoch)
        order = torch.randperm(len(items), generator=gen).tolist()
        epoch_lr = opt.param_groups[0]["lr"]
        loss_sum, correct, counted = 0.0, 0, 0
        batches = range(0, len(order), settings.batch_size)
        for lo in tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, mininterval=2.0,
                       disable=not progress or len(batches) < 50):
            chosen = [items[k] for k in order[lo: lo + settings.batch_size]]
            pairs = ([sliding_clip(videos[i], s, length) for i, s in chosen] if settings.train_clips == "sliding"
                     else [seg2clip(videos[i], seg, length, gen) for i, seg in chosen])
            x = torch.from_numpy(np.stack([c for c, _ in pairs])).float().to(device)
            y = torch.from_numpy(np.stack([t for _, t in pairs])).to(device)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, num_classes), y.reshape(-1), ignore_index=IGNORE)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"dense detector: non-finite loss at epoch {epoch}; lower the lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            valid = y != IGNORE
            n = int(valid.sum())
            loss_sum += float(loss.detach()) * n
            correct += int((logits.detach().argmax(-1) == y)[valid].sum())
            counted += n
        history.append({"epoch": epoch, "lr": epoch_lr, "train_loss": loss_sum / max(counted, 1),
                        "train_frame_acc": 100.0 * correct / max(counted, 1)})
        if resumable and epoch % settings.ckpt_every == 0 and epoch < settings.epochs:
            # constant lr, per-epoch generators: no scheduler, scaler or global RNG state to carry
            save_checkpoint(ckpt_dir, {"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                                       "optimizer": opt.state_dict(), "scheduler": None, "scaler": None,
                                       "rng": None, "history": history})
    if resumable:
        clear_checkpoint(ckpt_dir)
    return model.eval(), history


@torch.no_grad()
def predict_dense_probs(model: DenseDetector, joint, *, batch_size: int = 64,
                        device: torch.device | str = "cpu") -> np.ndarray:
    """(T, num_classes) float32 per-frame softmax of one video: consecutive non-overlapping clips,
    the padded frames of the last one discarded."""
    model.eval()
    joint = np.asarray(joint, dtype=np.float32)
    length, num_frames = model.frames, joint.shape[1]
    starts = list(range(0, num_frames, length))
    out = []
    for lo in range(0, len(starts), batch_size):
        batch = starts[lo: lo + batch_size]
        x = torch.from_numpy(np.stack([_clip(joint, s, length) for s in batch])).to(device)
        probs = F.softmax(model(x).float(), dim=-1).cpu().numpy()
        out += [p[: min(length, num_frames - s)] for s, p in zip(batch, probs, strict=True)]
    return np.concatenate(out).astype(np.float32)
