"""The ``<method>.train`` block every method's section shares (torch-free).

Each method's schema (``skelrep.methods.<name>.schema``) validates its ``train`` block with
:data:`TRAIN_SCHEMA`, adding its own keys (e.g. ``modality``); the pretraining loop
(:mod:`skelrep.training.pretrain`) reads the validated values, the number of epochs and the
milestones through :func:`train_schedule`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ParamsError
from ..schema import choice, integer, list_of, number


def workers_or_auto(value, key: str):
    """``auto`` or a count of DataLoader worker processes (0: load in the training process)."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamsError(key, f"got {value!r}; allowed: 'auto' or an integer >= 0 (0: load in the "
                               f"training process)")
    return value


# the ``<method>.train`` block every method shares (each adds its own keys, e.g. ``modality``)
TRAIN_SCHEMA = {
    "optimizer": choice("adam", "sgd"),
    "lr": number(0.0),
    "weight_decay": number(0.0),
    "momentum": number(0.0, 1.0),
    "batch_size": integer(2),
    "epochs": integer(1),
    "min_steps": integer(0),  # at least this many optimiser steps: more epochs on a small train split
    "milestones": list_of(integer(0)),
    "lr_gamma": number(0.0, 1.0),
    "precision": choice("auto", "fp32", "bf16", "fp16"),
    "device": choice("auto", "cpu", "cuda"),
    "ckpt_every": integer(1),
    "workers": workers_or_auto,  # auto: none on CPU, up to 8 on a GPU (training.pretrain.loader_workers)
    "seed": integer(0),
}


@dataclass(frozen=True)
class TrainSchedule:
    """The epochs a run trains, decided from the train-split size before training."""

    epochs: int
    milestones: list[int]
    steps_per_epoch: int
    extended: bool  # min_steps raised the epochs above train.epochs

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def train_schedule(train_cfg: Mapping, num_samples: int) -> TrainSchedule:
    """``train.epochs``, or more when that is fewer than ``train.min_steps`` optimiser steps.

    An epoch is ``num_samples // batch_size`` steps (global batches, the last partial one
    dropped). The run trains ``max(epochs, ceil(min_steps / steps_per_epoch))`` epochs; when
    that is more than ``epochs``, every milestone is scaled by the same factor (rounded half up),
    so the learning-rate schedule keeps its shape (the default drops x0.1 for the last sixth).
    ``min_steps: 0`` (the paper recipes) trains exactly ``epochs``. The result depends only on
    the configuration and the split size, so a resumed run decides the same schedule.
    """
    epochs, batch = int(train_cfg["epochs"]), int(train_cfg["batch_size"])
    milestones = [int(m) for m in train_cfg["milestones"]]
    steps_per_epoch = num_samples // batch
    if steps_per_epoch < 1:
        raise ValueError(f"{num_samples} samples are fewer than one batch ({batch})")
    needed = math.ceil(int(train_cfg["min_steps"]) / steps_per_epoch)
    if needed <= epochs:
        return TrainSchedule(epochs, milestones, steps_per_epoch, extended=False)
    scaled = [int(math.floor(m * needed / epochs + 0.5)) for m in milestones]
    return TrainSchedule(needed, scaled, steps_per_epoch, extended=True)
