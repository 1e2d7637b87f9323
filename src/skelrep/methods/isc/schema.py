"""The ``isc`` params section (torch-free): every key required, the paper values in
``defaults.PAPER``.

``eval_encoder`` names a representation of ``pair``, ``aug.views`` is 2, ``moco.k`` a multiple
of ``train.batch_size`` (the global batch) and an image encoder (HCN) needs at least 16
``frames``. :func:`validate_section` is ``ISCInfo.schema``: params validation
(:mod:`skelrep.validation`) runs it without loading torch, and ``moco.validate_isc_config``
builds the model config from its values.
"""

from __future__ import annotations

from typing import Any

from skelrep.data.augment_schema import AUG_SCHEMA, check_aug
from skelrep.errors import ParamsError
from skelrep.models.schema import MODALITIES
from skelrep.schema import boolean, choice, integer, mapping, number, positive, validate
from skelrep.training.schema import TRAIN_SCHEMA

# pair -> (S1 kind, S2 kind), as the official ``skeleton_representation`` names them
PAIRS = {"seq_graph": ("seq", "graph"), "graph_image": ("graph", "image"), "seq_image": ("seq", "image")}
ENCODER_KINDS = ("seq", "graph", "image")  # the representations (heads.ProjectionHead, moco.build_isc_encoder)
GRU_MODES = ("causal_official", "bidirectional")  # gru.IscGRU
KEY_UPDATES = ("ema", "frozen_copy")
VIEWS = 2  # two independently augmented views per sample
HCN_MIN_FRAMES = 16  # four 2x poolings


def _no_shuffle_bn(value: Any, key: str) -> bool:
    if boolean(value, key):
        raise ParamsError(key, "got true; expected false: shuffle-BN is not implemented (ISC uses per-rank BN "
                               "without it, and the official code never shuffles BN either)")
    return value


MOCO_SCHEMA = {"dim": integer(1), "k": integer(1), "m": number(0.0, 1.0), "t": positive(), "mlp": boolean,
               "key_update": choice(*KEY_UPDATES), "shuffle_bn": _no_shuffle_bn}
ISC_SCHEMA = {
    "pair": choice(*PAIRS), "eval_encoder": choice(*ENCODER_KINDS), "frames": integer(1),
    "gru": mapping({"hidden": integer(1), "layers": integer(1), "mode": choice(*GRU_MODES)}),
    "agcn": mapping({"base_channels": integer(1)}),  # the AGCN width (features 4*base_channels)
    "hcn": mapping({"width": integer(2)}),  # the HCN width (features 4*width*(frames/16)^2)
    "moco": mapping(MOCO_SCHEMA), "aug": mapping(AUG_SCHEMA, check_aug),
    "train": mapping({**TRAIN_SCHEMA, "modality": choice(*MODALITIES)}),
}


def _check_isc(v: dict, key: str) -> None:
    pair, kinds = v["pair"], PAIRS[v["pair"]]
    if v["eval_encoder"] not in kinds:
        raise ParamsError(f"{key}.eval_encoder", f"got {v['eval_encoder']!r}; allowed: a representation the pair "
                                                 f"{pair!r} trains ({' or '.join(map(repr, kinds))})")
    if v["aug"]["views"] != VIEWS:
        raise ParamsError(f"{key}.aug.views", f"got {v['aug']['views']}; expected exactly {VIEWS}: ISC uses two views")
    batch, k = v["train"]["batch_size"], v["moco"]["k"]
    if k % batch:
        raise ParamsError(f"{key}.moco.k", f"got {k}; expected a multiple of the global batch "
                                           f"{key}.train.batch_size={batch} (the enqueue must not wrap mid-batch)")
    if "image" in kinds and v["frames"] < HCN_MIN_FRAMES:
        raise ParamsError(f"{key}.frames", f"got {v['frames']}; expected at least {HCN_MIN_FRAMES}: the image "
                                           f"encoder (HCN) of pair {pair!r} pools four times by 2")


def validate_section(section: Any) -> dict[str, Any]:
    """The ``isc`` section's validated values; raises ParamsError naming the dotted key
    (e.g. ``isc.moco.k``) and what is allowed."""
    return validate(section, ISC_SCHEMA, "isc", _check_isc)
