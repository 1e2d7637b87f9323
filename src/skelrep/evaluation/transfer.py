"""Transfer: an encoder pretrained on one protocol's data, evaluated on another protocol's.

Two evaluations on the target (evaluation.md §5): the **linear probe** (the frozen encoder's
features of the target's train and test halves, with the inputs and probe the target protocol
sets in ``features`` and ``linear``: what ``linear@<target>`` runs on its own encoder) and the
**fine-tune** of encoder and head on every target training label (skelrep.evaluation.finetune).

An encoder reads one skeleton layout: its joint count and order, bone tree, persons and
channels. :func:`check_layouts` refuses a pair of datasets whose layouts differ in any of
those, naming both, before any encoder is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import SkeletonH5Dataset
from ..data.hdf5 import read_layout
from ..data.layout import SkeletonLayout
from ..errors import ParamsError
from ..methods.base import DownstreamCrops
from .features import crop_windows, downstream_inputs, extract_features, extract_window_features
from .linear import LinearProbeResult, standardize_features, train_linear_probe

# what an encoder's input is made of: a difference in any of these and it cannot read the data
MODEL_FIELDS = ("joint_names", "parents", "persons", "channels")


def describe(layout: SkeletonLayout) -> str:
    return (f"{layout.name!r} ({layout.num_joints} joints, {layout.persons} person"
            f"{'s' if layout.persons != 1 else ''}, {layout.channels} channels)")


def layout_differences(source: SkeletonLayout, target: SkeletonLayout) -> list[str]:
    """The fields of :data:`MODEL_FIELDS` in which the two layouts differ."""
    return [f for f in MODEL_FIELDS if getattr(source, f) != getattr(target, f)]


def check_layouts(source_data: str | Path, target_data: str | Path, key: str, source: str, target: str) -> None:
    """ParamsError (``key``, e.g. ``transfer.<name>``) naming both layouts when the skeleton
    layouts of the two dataset files differ in what an encoder reads (:data:`MODEL_FIELDS`)."""
    a, b = read_layout(source_data), read_layout(target_data)
    differ = layout_differences(a, b)
    if differ:
        raise ParamsError(key, f"the source protocol {source} has skeleton layout {describe(a)}, the target "
                          f"{target} has {describe(b)} (they differ in {', '.join(differ)}): an encoder pretrained "
                          "on one layout cannot read the other, so transfer between different layouts is refused")


def probe_features(encoder, train: SkeletonH5Dataset, test: SkeletonH5Dataset, features_cfg: Mapping[str, Any],
                   official: DownstreamCrops, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(train_x, test_x) of the frozen ``encoder`` on the target, as ``features@`` computes them
    with a validated ``features`` section: both halves on the test input; the train half again
    on the probe's train input when it differs (``(K, N, D)``, K seeded crops)."""
    inputs = downstream_inputs(features_cfg, official)
    batch = features_cfg["batch_size"]
    test_x = extract_features(encoder, test, crop=inputs.test.crop, ratio=inputs.test.ratio, batch_size=batch,
                              device=device, desc="transfer test")
    if inputs.train == inputs.test:
        return extract_features(encoder, train, crop=inputs.test.crop, ratio=inputs.test.ratio, batch_size=batch,
                                device=device, desc="transfer train"), test_x
    count = 1 if inputs.train.deterministic else features_cfg["random_crops"]
    starts, lengths = crop_windows(inputs.train, train.num_frame, count, features_cfg["seed"])
    return extract_window_features(encoder, train, starts, lengths, batch_size=batch, device=device,
                                   desc="transfer train crops"), test_x


def linear_transfer(encoder, train: SkeletonH5Dataset, test: SkeletonH5Dataset, *, num_classes: int,
                    features_cfg: Mapping[str, Any], linear_cfg: Mapping[str, Any], official: DownstreamCrops,
                    device: torch.device) -> LinearProbeResult:
    """The linear probe of the frozen ``encoder`` on the target (``linear`` section as validated)."""
    train_x, test_x = probe_features(encoder, train, test, features_cfg, official, device)
    if linear_cfg["standardize"]:
        train_x, test_x = standardize_features(train_x, test_x)
    return train_linear_probe(
        train_x, train.label, test_x, test.label, num_classes=num_classes, epochs=linear_cfg["epochs"],
        lr=linear_cfg["lr"], milestones=linear_cfg["milestones"], batch_size=linear_cfg["batch_size"],
        momentum=linear_cfg["momentum"], weight_decay=linear_cfg["weight_decay"], eval_every=linear_cfg["eval_every"],
        seed=linear_cfg["seed"], device=str(device))
