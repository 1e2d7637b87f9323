"""The ``<method>.train`` block every method's section shares (torch-free).

Each method's schema (``skelrep.methods.<name>.schema``) validates its ``train`` block with
:data:`TRAIN_SCHEMA`, adding its own keys (e.g. ``modality``); the pretraining loop
(:mod:`skelrep.training.pretrain`) reads the validated values.
"""

from __future__ import annotations

from ..schema import choice, integer, list_of, number

# the ``<method>.train`` block every method shares (each adds its own keys, e.g. ``modality``)
TRAIN_SCHEMA = {
    "optimizer": choice("adam", "sgd"),
    "lr": number(0.0),
    "weight_decay": number(0.0),
    "momentum": number(0.0, 1.0),
    "batch_size": integer(2),
    "epochs": integer(1),
    "milestones": list_of(integer(0)),
    "lr_gamma": number(0.0, 1.0),
    "precision": choice("auto", "fp32", "bf16", "fp16"),
    "device": choice("auto", "cpu", "cuda"),
    "ckpt_every": integer(1),
    "workers": integer(0),
    "seed": integer(0),
}
