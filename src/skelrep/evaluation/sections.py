"""The ``params.yaml`` sections of the evaluation stages: ``features``, ``linear``, ``knn``, ``detection``.

Torch-free, so that :func:`skelrep.validation.validate_all` checks them in milliseconds before
any stage starts; each stage validates its own section with the same schema.
"""

from __future__ import annotations

from typing import Any

from ..errors import ParamsError
from ..schema import boolean, choice, integer, list_of, number

DEVICE = choice("auto", "cpu", "cuda")


def _scale_range(value: Any, key: str) -> list[float]:
    """[lo, hi] of U(lo, hi), 0 < lo <= hi <= 1."""
    low, high = list_of(number(0.0, 1.0, open_lo=True), 2, 2)(value, key)
    if low > high:
        raise ParamsError(key, f"got {[low, high]}; expected [lo, hi] with lo <= hi")
    return [low, high]


# The frozen encoder's downstream inputs (skelrep.methods.base.DownstreamInput), each a crop of
# the valid sequence resampled to the clip length. auto: the method's official input
# (MethodInfo.downstream_crop: USDRL/UmURL whole and whole; ISC random U(0.5, 1) min 64 frames
# and centre 95 %), with its own ratio/scale/min length; an explicit crop takes the keys below.
FEATURES_SCHEMA = {
    "train_crop": choice("auto", "whole", "center", "random"),  # the linear probe's train input
    "train_ratio": number(0.01, 1.0),  # train_crop: center, the centred fraction
    "test_crop": choice("auto", "whole", "center"),  # the probe's test input; KNN's, both splits
    "test_ratio": number(0.01, 1.0),  # test_crop: center
    "random_scale": _scale_range,  # train_crop: random, s ~ U(lo, hi) of the valid length
    "random_min_frames": integer(1),  # train_crop: random, the minimum crop length
    "random_crops": integer(1),  # K random train crops cached (one forward of the train set each)
    "seed": integer(0),  # the random train crops' torch.Generator
    "batch_size": integer(1), "device": DEVICE,
    # the hand-crafted baseline: joint coordinates resampled to this many frames
    "handcrafted_frames": integer(1),
}

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
