"""Protocol W: window classification with a frozen encoder (evaluation.md §6.2).

Derived from the linear detection protocol of Simple-Skeleton-Detection (SSD; used for HiCLR,
PCM³ and HiCo) and adapted to encoders of a fixed clip length:

- **Model.** The frozen encoder (``eval()``, no gradient) and its global feature (the one the
  linear probe reads), then ``Linear(feature_dim, num_classes)`` (0 = background), initialised
  as the linear probe's: N(0, 0.01), bias 0.
- **Training samples.** One epoch draws ``samples_per_video × number of training videos``
  windows: a random video, a random centre frame t, d ~ U(``d_choices``) (SSD: {3, 4, 5}). The
  window is the :data:`SSD_SAMPLES` · d native frames t − 8d … t + 8d − 1, its indices clipped
  to the video (the first or last frame repeated), resampled by linear interpolation to the
  encoder's clip length (SSD keeps every d-th frame: 16 frames; ``skelrep`` resamples the whole
  window, evaluation.md §6.2). Target: the label of frame t.
- **Optimiser.** SGD (nesterov as SSD's config) with momentum, ×0.1 at each milestone.
- **Draws** (a CPU economy, not the protocol). ``draws`` K < epochs draws K sets of windows
  and caches their features: epoch e trains on set (e − 1) mod K (K encoder passes over an
  epoch's windows instead of one per epoch; as the cached random crops of the linear probe).
  K = epochs (or None) is the protocol: fresh windows every epoch.
- **Inference.** For every frame t of a test video, the window of ``frames`` native frames
  t − frames/2 … t + frames/2 − 1 (clipped; 64: SSD's 16 frames at stride 4), resampled to the
  clip length, then softmax: P[t, ·]. ``stride`` s > 1 (a CPU economy, not the protocol)
  classifies every s-th frame and the last one and interpolates the probabilities linearly in
  between (each row stays a distribution).

The frozen encoder never changes, so the features of an epoch's windows are computed first and
the head then trained on them in shuffled mini-batches (the same result as feeding the windows
one batch at a time). Deterministic for a seed on CPU: the draws of epoch e come from a CPU
``torch.Generator`` seeded with ``(seed, e)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...data.augment import resample_time
from ..head_sgd import HeadSGD
from ..linear import make_linear_head, sgd_epoch

SSD_SAMPLES = 16  # SSD's window: 16 frames taken every d-th frame, i.e. 16·d native frames


@dataclass(frozen=True)
class WindowSettings:
    """The recipe of protocol W (the validated ``detection.window`` section)."""

    epochs: int
    lr: float
    batch_size: int
    milestones: tuple[int, ...] = ()
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = True
    d_choices: tuple[int, ...] = (3, 4, 5)
    frames: int = 64  # the test window, native frames
    samples_per_video: int = 16
    test_stride: int = 1
    draws: int | None = None  # distinct window draws; None: one per epoch (the protocol)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.samples_per_video < 1 or self.test_stride < 1:
            raise ValueError("epochs, batch_size, samples_per_video and test_stride must be >= 1")
        if self.draws is not None and not 1 <= self.draws <= self.epochs:
            raise ValueError(f"draws must lie in 1..epochs ({self.epochs}); got {self.draws}")
        if not self.d_choices or min(self.d_choices) < 1 or self.frames < 1:
            raise ValueError("d_choices must be non-empty positive integers and frames >= 1")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov needs a momentum > 0")


def window_indices(num_frames: int, centres, span: int) -> np.ndarray:
    """(n, span) int64: the native frame indices of windows of ``span`` frames centred on each
    centre t, t − span//2 … t + span − span//2 − 1, clipped to [0, num_frames − 1]."""
    if num_frames < 1 or span < 1:
        raise ValueError(f"need num_frames >= 1 and span >= 1; got {num_frames}, {span}")
    centres = np.asarray(centres, dtype=np.int64).reshape(-1)
    offsets = np.arange(span, dtype=np.int64) - span // 2
    return np.clip(centres[:, None] + offsets[None, :], 0, num_frames - 1)


def window_clips(joint: torch.Tensor, centres, spans, out_frames: int) -> torch.Tensor:
    """(n, C, out_frames, V, M): the windows of ``spans[i]`` native frames centred on
    ``centres[i]`` of one video ``joint`` (C, T, V, M), indices clipped to the video, each
    resampled to ``out_frames`` by linear interpolation (:func:`skelrep.data.augment.resample_time`;
    a window of ``out_frames`` frames is returned unchanged)."""
    joint = torch.as_tensor(joint)
    if joint.ndim != 4:
        raise ValueError(f"joint must be (C, T, V, M); got {tuple(joint.shape)}")
    centres = np.asarray(centres, dtype=np.int64).reshape(-1)
    spans = np.broadcast_to(np.asarray(spans, dtype=np.int64), centres.shape)
    if centres.size == 0:
        return joint.new_zeros((0, joint.shape[0], out_frames, *joint.shape[2:]))
    # row i: its window's indices first (clipped); the positions past its span are never read
    offsets = np.arange(int(spans.max()), dtype=np.int64)[None, :] - (spans // 2)[:, None]
    idx = np.clip(centres[:, None] + offsets, 0, joint.shape[1] - 1)
    x = joint[:, torch.from_numpy(idx).to(joint.device)]  # (C, n, longest, V, M)
    x = x.permute(1, 0, 2, 3, 4)
    n = x.shape[0]
    starts = torch.zeros(n, dtype=torch.int64)
    return resample_time(x, starts, torch.from_numpy(spans.copy()), out_frames)


def draw_windows(num_frames: Sequence[int], count: int, d_choices: Sequence[int], generator: torch.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` training windows: (video index, centre frame, span = SSD_SAMPLES·d), each (count,)
    int64. Video uniform, centre uniform over the video's frames, d uniform over ``d_choices``."""
    lengths = torch.as_tensor(list(num_frames), dtype=torch.int64)
    if lengths.numel() == 0 or int(lengths.min()) < 1:
        raise ValueError("need at least one video, each with at least one frame")
    video = torch.randint(len(lengths), (count,), generator=generator)
    centre = (torch.rand(count, generator=generator, dtype=torch.float64) * lengths[video]).floor().long()
    centre = torch.minimum(centre, lengths[video] - 1)
    d = torch.as_tensor(list(d_choices), dtype=torch.int64)[torch.randint(len(d_choices), (count,),
                                                                          generator=generator)]
    return video.numpy(), centre.numpy(), (SSD_SAMPLES * d).numpy()


@torch.no_grad()
def window_features(encoder, joints: Sequence[torch.Tensor], video: np.ndarray, centre: np.ndarray,
                    span: np.ndarray, *, batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, feature_dim) float32 on the CPU: the frozen encoder's global feature of each window
    (``joints[video[i]]`` centred on ``centre[i]`` with ``span[i]`` frames), in order."""
    encoder.eval()
    out = []
    for lo in range(0, len(video), batch_size):
        sl = slice(lo, lo + batch_size)
        parts = []
        for v in dict.fromkeys(video[sl].tolist()):  # one gather per video of the batch
            rows = np.flatnonzero(video[sl] == v)
            parts.append((rows, window_clips(joints[v], centre[sl][rows], span[sl][rows], encoder.frames)))
        clips = torch.empty((len(video[sl]), *parts[0][1].shape[1:]), dtype=parts[0][1].dtype)
        for rows, clip in parts:
            clips[torch.from_numpy(rows)] = clip
        out.append(encoder.features(clips.to(device)).float().cpu())
    if not out:
        return torch.zeros((0, encoder.feature_dim))
    return torch.cat(out)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train_window_classifier(encoder, joints: Sequence, frame_labels: Sequence, *, num_classes: int,
                            settings: WindowSettings, device: torch.device | str = "cpu",
                            feature_batch: int = 256, progress: bool = False) -> tuple[nn.Linear, list[dict]]:
    """Train the head of protocol W on the training videos (``joints[i]`` (C, T_i, V, M),
    ``frame_labels[i]`` (T_i,), 0 = background); returns the head (CPU, eval mode) and one
    history row per epoch. The encoder is only read."""
    if len(joints) != len(frame_labels) or not joints:
        raise ValueError("need the same, non-zero number of videos and frame-label sequences")
    joints = [torch.as_tensor(np.asarray(j), dtype=torch.float32) for j in joints]
    labels = [torch.as_tensor(np.asarray(y), dtype=torch.int64) for y in frame_labels]
    for i, (j, y) in enumerate(zip(joints, labels, strict=True)):
        if j.ndim != 4 or y.shape != (j.shape[1],):
            raise ValueError(f"video {i}: joint {tuple(j.shape)} and labels {tuple(y.shape)}; expected "
                             "(C, T, V, M) and (T,)")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"video {i}: frame labels must lie in 0..{num_classes - 1}")
    head = make_linear_head(encoder.feature_dim, num_classes, torch.Generator().manual_seed(settings.seed)).to(device)
    opt = HeadSGD(head.parameters(), lr=settings.lr, momentum=settings.momentum,
                  weight_decay=settings.weight_decay, nesterov=settings.nesterov, milestones=settings.milestones)
    count = settings.samples_per_video * len(joints)
    draws = settings.draws or settings.epochs
    cached: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    history = []
    for epoch in tqdm(range(1, settings.epochs + 1), desc="window classifier", unit="epoch", disable=not progress):
        gen = _epoch_generator(settings.seed, epoch)
        k = (epoch - 1) % draws
        if k in cached:
            x, y = cached[k]
        else:  # set k is drawn in epoch k + 1, from that epoch's generator
            video, centre, span = draw_windows([j.shape[1] for j in joints], count, settings.d_choices, gen)
            x = window_features(encoder, joints, video, centre, span, batch_size=feature_batch, device=device)
            y = torch.stack([labels[v][t] for v, t in zip(video.tolist(), centre.tolist(), strict=True)])
            if draws < settings.epochs:
                cached[k] = (x, y)
        epoch_lr = opt.lr
        loss, acc = sgd_epoch(head, opt, x.to(device), y.to(device), settings.batch_size, gen)
        opt.end_epoch()
        history.append({"epoch": epoch, "lr": epoch_lr, "train_loss": loss, "train_acc": acc})
    return head.cpu().eval(), history


def inference_centres(num_frames: int, stride: int) -> np.ndarray:
    """The frames classified at test time: every ``stride``-th frame from 0, and the last one."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"need num_frames >= 1 and stride >= 1; got {num_frames}, {stride}")
    centres = np.arange(0, num_frames, stride, dtype=np.int64)
    return centres if centres[-1] == num_frames - 1 else np.append(centres, num_frames - 1)


def fill_frames(centres: np.ndarray, probs: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames, C): ``probs`` (len(centres), C) at the increasing ``centres`` (0 and the last
    frame among them), linearly interpolated to every frame in between."""
    if len(centres) == num_frames:
        return probs
    t = np.arange(num_frames, dtype=np.float64)
    right = np.clip(np.searchsorted(centres, t, side="left"), 1, len(centres) - 1)
    left = right - 1
    span = (centres[right] - centres[left]).astype(np.float64)
    w = ((t - centres[left]) / np.where(span > 0, span, 1.0))[:, None]
    return ((1.0 - w) * probs[left] + w * probs[right]).astype(probs.dtype)


@torch.no_grad()
def predict_window_probs(encoder, head: nn.Module, joint, *, frames: int = 64, stride: int = 1,
                         batch_size: int = 256, device: torch.device | str = "cpu") -> np.ndarray:
    """(T, num_classes) float32: P[t, ·] of every frame of one video (``joint`` (C, T, V, M)),
    from the window of ``frames`` native frames centred on t (see the module doc for
    ``stride``)."""
    encoder.eval()
    head = head.eval()
    head_device = next(head.parameters()).device
    joint = torch.as_tensor(np.asarray(joint), dtype=torch.float32)
    num_frames = joint.shape[1]
    centres = inference_centres(num_frames, stride)
    out = []
    for lo in range(0, len(centres), batch_size):
        clips = window_clips(joint, centres[lo: lo + batch_size], frames, encoder.frames).to(device)
        feats = encoder.features(clips).float().to(head_device)
        out.append(F.softmax(head(feats), dim=1).cpu())
    probs = torch.cat(out).numpy().astype(np.float32)
    return fill_frames(centres, probs, num_frames)
