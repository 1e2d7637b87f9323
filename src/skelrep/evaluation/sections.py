"""The ``params.yaml`` sections of the evaluation stages: ``features``, ``linear``, ``knn``, ``detection``,
``finetune`` and ``transfer``.

Torch-free, so that :func:`skelrep.validation.validate_all` checks them in milliseconds before
any stage starts; each stage validates its own section with the same schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParamsError
from ..schema import boolean, choice, distinct, integer, list_of, mapping, number, string, validate

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

# PKU-MMD I detection (stages/detect.py), evaluation.md §6: the protocols run, each with its own
# metric keys (dense: detect/..., the others: detect/<protocol>/...)
DETECTION_PROTOCOLS = ("dense", "window", "dense_finetune")
# what the logs and the benchmark tables call each (skelrep.report.tables: one row per protocol)
DETECTION_LABELS = {"dense": "frozen dense head", "window": "window (W)",
                    "dense_finetune": "dense fine-tune (D, TPAMI)"}


def detection_metric_prefix(protocol: str, variant: str = "") -> str:
    """The metric keys' prefix of a detection protocol: ``detect`` for the dense protocol (its keys
    predate the others), ``detect/<protocol>`` for the others; a baseline ``variant``
    (``random_init``) comes right after ``detect/``, as every stage names its baselines
    (``detect/random_init/window``)."""
    return "/".join(p for p in ("detect", variant, None if protocol == "dense" else protocol) if p)


def detection_subfolder(protocol: str) -> str:
    """A detection protocol's subfolder of the detect stage's proposals and ``timelines/``: none
    for the dense protocol (its files where they always were), ``<protocol>/`` for the others."""
    return "" if protocol == "dense" else protocol


def detection_protocol_of(key: str) -> tuple[str, str] | None:
    """``(protocol, the key as the dense protocol names it)`` of a detection metric key:
    ``detect/window/mAP_a_tiou0.5`` -> ``("window", "detect/mAP_a_tiou0.5")``; ``detect/...`` ->
    ``("dense", key)``; None for another stage's key."""
    if not key.startswith("detect/"):
        return None
    head, _, rest = key.removeprefix("detect/").partition("/")
    if head in DETECTION_PROTOCOLS and head != "dense" and rest:
        return head, f"detect/{rest}"
    return "dense", key


PROPOSALS = ("thr", "ssd")  # P-THR (TPAMI code), P-SSD (SSD code)


def _window_check(values: dict, prefix: str) -> None:
    if values["nesterov"] and values["momentum"] <= 0:
        raise ParamsError(f"{prefix}.nesterov", "true needs a momentum > 0 (SGD's Nesterov rule)")
    if values["draws"] > values["epochs"]:
        raise ParamsError(f"{prefix}.draws", f"got {values['draws']}; at most epochs ({values['epochs']}): "
                          "each epoch trains on one set of windows")


# protocol W: window classification, frozen encoder (evaluation.md §6.2; SSD's linear detection)
DETECTION_WINDOW_SCHEMA = {
    "proposals": choice(*PROPOSALS),
    # training windows of 16·d native frames, d uniform over these
    "d_choices": distinct(list_of(integer(1), min_len=1), "d", "drawn uniformly"),
    "frames": integer(1),  # the test window centred on each frame, native frames (SSD: 16 at stride 4)
    "samples_per_video": integer(1),  # one epoch = this × the training videos (SSD: 16)
    "draws": integer(1),  # distinct sets of windows, epoch e trains on set (e-1) mod draws; = epochs: the protocol
    "epochs": integer(1), "lr": number(0.0, open_lo=True), "milestones": list_of(integer(1)),
    "batch_size": integer(1), "momentum": number(0.0, 1.0), "weight_decay": number(0.0), "nesterov": boolean,
    "test_stride": integer(1),  # 1: every frame (the protocol); s: every s-th, interpolated (CPU economy)
}

# protocol D: dense per-frame fine-tune (evaluation.md §6.3, the USDRL TPAMI pipeline)
DETECTION_DENSE_FINETUNE_SCHEMA = {
    "proposals": choice(*PROPOSALS),
    "init_from": string,  # the protocol whose encoder is fine-tuned (TPAMI: ntu60-xsub); skelrep.validation
    "finetune": boolean,  # false: the encoder frozen, the head alone trained (a labelled variant)
    "train_clips": choice("sliding", "seg2clip"),
    "train_stride": integer(1),  # sliding: a clip every this many frames
    "epochs": integer(1), "lr": number(0.0, open_lo=True), "batch_size": integer(1),
    "momentum": number(0.0, 1.0), "weight_decay": number(0.0),
    "ckpt_every": integer(1),  # resume checkpoint every this many epochs
}

DETECTION_SCHEMA = {
    "protocols": distinct(list_of(choice(*DETECTION_PROTOCOLS), min_len=1), "protocol"),
    "random_init": boolean,  # every protocol also from the random-init encoder: detect/random_init/...
    # the dense protocol: a per-frame head on the frozen encoder's dense features (skelrep's own)
    "proposals": choice(*PROPOSALS), "thr_class_prob": number(0.0, 1.0), "ssd_smooth_radius": integer(0),
    "ssd_activity_thr": number(0.0, 1.0),
    "voc_tious": list_of(number(0.0, 1.0), min_len=1), "official_theta": number(0.0, 1.0),
    "num_classes": integer(2), "train_stride": integer(1), "epochs": integer(1), "lr": number(0.0),
    "milestones": list_of(integer(0)), "batch_size": integer(1), "momentum": number(0.0, 1.0),
    "seed": integer(0), "device": DEVICE,
    "window": mapping(DETECTION_WINDOW_SCHEMA, _window_check),
    "dense_finetune": mapping(DETECTION_DENSE_FINETUNE_SCHEMA),
}


# ---------------------------------------------------------------------- fine-tuning protocols
# (skelrep.evaluation.finetune; the stages finetune@<protocol> and transfer@<name>)


def fraction_name(fraction: float) -> str:
    """The metric-key name of a label fraction: 0.01 -> ``1pct``, 0.1 -> ``10pct``, 0.005 -> ``0.5pct``."""
    return f"{round(100 * fraction, 6):g}pct"


def _fractions(value: Any, key: str) -> list[float]:
    """Semi-supervised label fractions, each in (0, 1) (1: ``full``), with distinct names."""
    fractions = list_of(number(0.0, 1.0, open_lo=True, open_hi=True))(value, key)
    names = [fraction_name(f) for f in fractions]
    if len(set(names)) != len(names):
        raise ParamsError(key, f"got {value!r}; each fraction once (as metric names: {', '.join(names)})")
    return fractions


def _runs_on(value: Any, key: str) -> dict[str, dict]:
    """``finetune.protocols``: protocol -> ``{dataset: <its dataset>}`` (checked against
    ``protocols`` by skelrep.validation, which sees the whole file)."""
    if not isinstance(value, Mapping):
        raise ParamsError(key, f"got {value!r}; expected a mapping of protocol -> {{dataset: <its dataset>}} "
                          "({}: none)")
    return {name: validate(entry, {"dataset": string}, f"{key}.{name}") for name, entry in value.items()}


TRANSFER_FOLDER = "transfer"  # reports/finetune/transfer/<name>: transfer@'s reports, beside finetune@'s


def _finetune_check(values: dict, prefix: str) -> None:
    if not values["protocols"]:
        raise ParamsError(f"{prefix}.protocols", "empty; list at least one protocol (the report stage reads "
                          "reports/finetune, which finetune@<protocol> writes)")
    if TRANSFER_FOLDER in values["protocols"]:
        raise ParamsError(f"{prefix}.protocols.{TRANSFER_FOLDER}", f"a protocol named {TRANSFER_FOLDER!r} cannot "
                          f"be fine-tuned: reports/finetune/{TRANSFER_FOLDER}/ holds the transfer@ reports")
    if not values["fractions"] and not values["full"]:
        raise ParamsError(f"{prefix}.fractions", "empty while full is false: nothing to fine-tune")


# the recipe of every fine-tuning run (semi-supervised, full, transfer): what FinetuneSettings holds
FINETUNE_TRAIN_KEYS = ("freeze_encoder", "epochs", "min_steps", "lr", "milestones", "batch_size", "momentum",
                       "weight_decay", "train_crop", "train_ratio", "random_scale", "random_min_frames", "test_crop",
                       "test_ratio", "eval_every", "ckpt_every", "seed", "device")

FINETUNE_FIELDS = {
    "protocols": _runs_on,  # finetune@<protocol> runs on these (dvc.yaml's foreach)
    "fractions": _fractions,  # semi-supervised label fractions: semi/<name>/...
    "full": boolean,  # also every training label: finetune/...
    # one labelled subset and one run per seed (mean, std)
    "subset_seeds": distinct(list_of(integer(0), min_len=1), "seed"),
    "random_init": boolean,  # every run again from the random-init encoder: .../random_init/...
    "freeze_encoder": boolean,  # the encoder frozen, the head alone trained: semi_probe/, finetune_probe/
    "epochs": integer(1), "min_steps": integer(0), "lr": number(0.0, open_lo=True),
    "milestones": list_of(integer(1)), "batch_size": integer(1), "momentum": number(0.0, 1.0),
    "weight_decay": number(0.0),
    "train_crop": choice("auto", "whole", "center", "random"),  # the training input (features' crops)
    "train_ratio": number(0.01, 1.0), "random_scale": _scale_range, "random_min_frames": integer(1),
    "test_crop": choice("auto", "whole", "center"), "test_ratio": number(0.01, 1.0),
    "eval_every": integer(1), "ckpt_every": integer(1), "seed": integer(0), "device": DEVICE,
}
assert set(FINETUNE_TRAIN_KEYS) <= set(FINETUNE_FIELDS)


def validate_finetune(section: Any, prefix: str = "finetune") -> dict:
    """The ``finetune`` section, validated (its keys against the other sections: skelrep.validation)."""
    return validate(section, FINETUNE_FIELDS, prefix, _finetune_check)


# transfer@<name>: the encoder of protocol ``source``, evaluated on protocol ``target``; their
# datasets, whose files dvc.yaml reads (the layouts compared, the target's samples), are checked
# against the protocols by skelrep.validation
TRANSFER_ENTRY = {"source": string, "source_dataset": string, "target": string, "target_dataset": string}


def validate_transfer(section: Any, prefix: str = "transfer") -> dict[str, dict]:
    """The ``transfer`` section: name -> {source, source_dataset, target, target_dataset} ({}: none)."""
    if not isinstance(section, Mapping):
        raise ParamsError(prefix, f"got {section!r}; expected a mapping of name -> {{source: <protocol>, "
                          "source_dataset: <its dataset>, target: <protocol>, target_dataset: <its dataset>}} "
                          "({}: none)")
    return {name: mapping(TRANSFER_ENTRY)(entry, f"{prefix}.{name}") for name, entry in section.items()}
