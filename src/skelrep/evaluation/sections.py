"""The ``params.yaml`` sections of the evaluation stages: ``features``, ``linear``, ``knn``, ``detection``.

Torch-free, so that :func:`skelrep.validation.validate_all` checks them in milliseconds before
any stage starts; each stage validates its own section with the same schema.
"""

from __future__ import annotations

from ..schema import boolean, choice, integer, list_of, number

DEVICE = choice("auto", "cpu", "cuda")

FEATURES_SCHEMA = {"crop": choice("auto", "whole", "center"), "ratio": number(0.01, 1.0),
                   "batch_size": integer(1), "device": DEVICE,
                   # the hand-crafted baseline: joint coordinates resampled to this many frames
                   "handcrafted_frames": integer(1)}

LINEAR_SCHEMA = {"epochs": integer(1), "lr": number(0.0), "milestones": list_of(integer(0)),
                 "batch_size": integer(1), "momentum": number(0.0, 1.0), "weight_decay": number(0.0),
                 "eval_every": integer(1), "standardize": boolean, "seed": integer(0), "device": DEVICE}

KNN_SCHEMA = {"k": integer(1), "batch_size": integer(1), "device": DEVICE}

DETECTION_SCHEMA = {
    "protocol": choice("dense"), "proposals": choice("thr", "ssd"),
    "thr_class_prob": number(0.0, 1.0), "ssd_smooth_radius": integer(0), "ssd_activity_thr": number(0.0, 1.0),
    "voc_tious": list_of(number(0.0, 1.0), min_len=1), "official_theta": number(0.0, 1.0),
    "num_classes": integer(2), "train_stride": integer(1), "epochs": integer(1), "lr": number(0.0),
    "milestones": list_of(integer(0)), "batch_size": integer(1), "momentum": number(0.0, 1.0),
    "seed": integer(0), "device": DEVICE,
}
