"""The ``umurl`` params section (torch-free): every key required, the paper values in
``defaults.PAPER``.

UmURL trains on all three modalities, so its ``train`` block has no ``modality`` key.
:func:`validate_section` is ``UmURLInfo.schema``: params validation (:mod:`skelrep.validation`)
runs it without loading torch, and ``model.validate_umurl_config`` builds the model config from
its values.
"""

from __future__ import annotations

from typing import Any

from skelrep.data.augment_schema import AUG_SCHEMA, check_aug
from skelrep.errors import ParamsError
from skelrep.models.schema import check_transformer
from skelrep.schema import boolean, choice, integer, list_of, mapping, number, optional, positive, validate
from skelrep.training.schema import TRAIN_SCHEMA

PROJECTOR_BN = ("sync", "local")
EVAL_INPUTS = ("fused", "joint_only")
INIT_SCHEMES = ("torch_default",)
VIEWS = 4  # joint, bone, motion (uni-modal), fused


def _check_proj(v: dict, key: str) -> None:
    if v["dims"][0] != v["dims"][1]:
        # the projector has one hidden width, as the official one (2*hidden, twice)
        raise ParamsError(f"{key}.dims", f"got {v['dims']}; expected the two hidden widths equal")


ENCODER_SCHEMA = {
    "hidden": integer(1), "heads": integer(1), "num_layers": integer(1),
    "ffn": optional(integer(1)),  # null: equal to hidden, as the official dim_feedforward
    "t_pe_max_len": integer(1), "frames": integer(1),
}
PROJ_SCHEMA = {"dims": list_of(integer(1), 3, 3), "bn": choice(*PROJECTOR_BN)}
LOSS_SCHEMA = {
    "w_consistency": number(0.0), "vac_var_weight": number(0.0), "vac_cov_weight": number(0.0),
    # sqrt(Var + eps) needs eps > 0 for a finite gradient at zero variance
    "var_eps": positive(), "gather": boolean, "fp32": boolean,
}


def _check_umurl(v: dict, key: str) -> None:
    if v["aug"]["views"] != VIEWS:
        raise ParamsError(f"{key}.aug.views", f"got {v['aug']['views']}; expected exactly {VIEWS}: UmURL "
                                              "uses one view each for joint, bone, motion and fused")


UMURL_SCHEMA = {
    "encoder": mapping(ENCODER_SCHEMA, check_transformer), "proj": mapping(PROJ_SCHEMA, _check_proj),
    "loss": mapping(LOSS_SCHEMA), "aug": mapping(AUG_SCHEMA, check_aug), "train": mapping(TRAIN_SCHEMA),
    "eval_input": choice(*EVAL_INPUTS), "init": choice(*INIT_SCHEMES),
}


def validate_section(section: Any) -> dict[str, Any]:
    """The ``umurl`` section's validated values; raises ParamsError naming the dotted key
    (e.g. ``umurl.encoder.hidden``) and what is allowed."""
    return validate(section, UMURL_SCHEMA, "umurl", _check_umurl)
