"""The detection protocols of the ``detect`` stage, from videos to per-frame probabilities.

Each protocol of ``detection.protocols`` (evaluation.md §6) gives P[t, c] for every frame of
every test video; the stage then turns them into proposals (:func:`proposals_for`) and metrics:

- ``dense``: skelrep's frozen dense head. A per-frame linear head on the frozen encoder's dense
  features (training clips every ``train_stride`` frames; the top-level keys of the section).
  Metric keys ``detect/<metric>``.
- ``window``: protocol W, window classification with the frozen encoder (:mod:`.window`;
  ``detection.window``). Keys ``detect/window/<metric>``.
- ``dense_finetune``: protocol D, the USDRL TPAMI pipeline: the whole network fine-tuned from
  another protocol's encoder (``detection.dense_finetune.init_from``; :mod:`.dense_finetune`).
  Keys ``detect/dense_finetune/<metric>``.

With ``detection.random_init`` each protocol runs again from the random-init encoder (for D:
``init_from``'s, the supervised-from-scratch baseline), keys ``detect/random_init/...``
(:func:`skelrep.evaluation.sections.detection_metric_prefix`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ...io import sha256_file
from ...training.checkpoint import run_fingerprint
from ..features import load_frozen_encoder
from .dense import video_frame_features
from .dense_finetune import DenseFinetuneSettings, TrainVideo, finetune_dense_detector, predict_dense_probs
from .framewise import predict_frame_probs, train_frame_classifier
from .proposal_io import file_to_inclusive
from .proposals import Proposal, proposals_ssd, proposals_thr
from .window import WindowSettings, predict_window_probs, train_window_classifier


def proposals_for(probs: np.ndarray, generator: str, cfg: Mapping[str, Any]) -> list[Proposal]:
    """P-THR (``thr``) or P-SSD (``ssd``) with the section's thresholds."""
    if generator == "thr":
        return proposals_thr(probs, cfg["thr_class_prob"])
    if generator == "ssd":
        return proposals_ssd(probs, cfg["ssd_smooth_radius"], cfg["ssd_activity_thr"])
    raise ValueError(f"unknown proposal generator {generator!r}")


def generator_of(protocol: str, cfg: Mapping[str, Any]) -> str:
    """The proposal generator a validated ``detection`` section gives ``protocol``."""
    return cfg["proposals"] if protocol == "dense" else cfg[protocol]["proposals"]


Videos = Sequence[Mapping[str, Any]]  # skelrep.data.hdf5.read_detection: id, joint, frame_label, gt


def dense_probs(encoder_path: str | Path, train: Videos, test: Videos, cfg: Mapping[str, Any],
                device: torch.device) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The ``dense`` protocol: the frozen encoder's dense features, a per-frame linear head."""
    encoder = load_frozen_encoder(encoder_path, device)
    feats, labels = [], []
    for v in tqdm(train, desc="dense features (train)", unit="video", mininterval=2.0):
        f, idx = video_frame_features(encoder, v["joint"], stride=cfg["train_stride"], device=device)
        feats.append(f)
        labels.append(v["frame_label"][idx])
    head, history = train_frame_classifier(feats, labels, num_classes=cfg["num_classes"], epochs=cfg["epochs"],
                                           lr=cfg["lr"], batch_size=cfg["batch_size"], momentum=cfg["momentum"],
                                           milestones=cfg["milestones"], seed=cfg["seed"], device=str(device))
    probs = {}
    for v in tqdm(test, desc="dense (test)", unit="video", mininterval=2.0):
        f, idx = video_frame_features(encoder, v["joint"], device=device)
        probs[v["id"]] = predict_frame_probs(head, f[np.argsort(idx, kind="stable")])
    return probs, history


def window_settings(cfg: Mapping[str, Any]) -> WindowSettings:
    w = cfg["window"]
    return WindowSettings(epochs=w["epochs"], lr=w["lr"], batch_size=w["batch_size"],
                          milestones=tuple(w["milestones"]), momentum=w["momentum"], weight_decay=w["weight_decay"],
                          nesterov=w["nesterov"], d_choices=tuple(w["d_choices"]), frames=w["frames"],
                          samples_per_video=w["samples_per_video"], test_stride=w["test_stride"], draws=w["draws"],
                          seed=cfg["seed"])


def window_probs(encoder_path: str | Path, train: Videos, test: Videos, cfg: Mapping[str, Any],
                 device: torch.device) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Protocol W: a linear head on the frozen encoder's global feature of windows centred on
    each frame."""
    settings = window_settings(cfg)
    encoder = load_frozen_encoder(encoder_path, device)
    batch = max(256, settings.batch_size)
    head, history = train_window_classifier(encoder, [v["joint"] for v in train], [v["frame_label"] for v in train],
                                            num_classes=cfg["num_classes"], settings=settings, device=device,
                                            feature_batch=batch, progress=True)
    probs = {v["id"]: predict_window_probs(encoder, head, v["joint"], frames=settings.frames,
                                           stride=settings.test_stride, batch_size=batch, device=device)
             for v in tqdm(test, desc="window (test)", unit="video", mininterval=2.0)}
    return probs, history


def dense_finetune_settings(cfg: Mapping[str, Any]) -> DenseFinetuneSettings:
    d = cfg["dense_finetune"]
    return DenseFinetuneSettings(epochs=d["epochs"], lr=d["lr"], batch_size=d["batch_size"], momentum=d["momentum"],
                                 weight_decay=d["weight_decay"], finetune=d["finetune"], train_clips=d["train_clips"],
                                 train_stride=d["train_stride"], seed=cfg["seed"], ckpt_every=d["ckpt_every"])


def train_videos(videos: Videos, convention: str) -> list[TrainVideo]:
    """The training videos with their ground-truth segments as internal ``(label, start, end)``,
    [start, end) 0-based (the GT rows are in the file ``convention``)."""
    out = []
    for v in videos:
        gt = np.asarray(v["gt"], dtype=np.int64)
        gt = gt.reshape(len(gt), -1) if gt.size else np.zeros((0, 3), np.int64)  # label, start, end[, ...]
        first, last = file_to_inclusive(gt[:, 1], gt[:, 2], convention)
        num_frames = v["joint"].shape[1]
        segments = tuple((int(label), int(max(s, 0)), int(min(e + 1, num_frames)))
                         for label, s, e in zip(gt[:, 0], first, last, strict=True) if min(e + 1, num_frames) > s)
        out.append(TrainVideo(np.asarray(v["joint"], dtype=np.float32), np.asarray(v["frame_label"]), segments))
    return out


def dense_finetune_probs(init_path: str | Path, train: Videos, test: Videos, cfg: Mapping[str, Any],
                         convention: str, device: torch.device, resume_dir: str | Path | None = None,
                         ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Protocol D: the encoder of ``init_path`` and a per-frame head trained end to end (or the
    head alone, ``dense_finetune.finetune: false``). With ``resume_dir``, an interrupted training
    resumes there; the run's identity is the encoder file's hash, the recipe and the data."""
    settings = dense_finetune_settings(cfg)
    encoder = load_frozen_encoder(init_path, device)  # made trainable by the fine-tune when it should be
    ident = None if resume_dir is None else run_fingerprint({  # hashing the encoder only when resumable
        "encoder": sha256_file(init_path), "settings": asdict(settings), "num_classes": cfg["num_classes"],
        "convention": convention, "train": [(v["id"], int(np.shape(v["joint"])[1])) for v in train]})
    model, history = finetune_dense_detector(encoder, train_videos(train, convention), num_classes=cfg["num_classes"],
                                             settings=settings, device=device, progress=True,
                                             ckpt_dir=resume_dir, fingerprint=ident)
    probs = {v["id"]: predict_dense_probs(model, v["joint"], batch_size=max(64, settings.batch_size), device=device)
             for v in tqdm(test, desc="dense fine-tune (test)", unit="video", mininterval=2.0)}
    return probs, history
