"""The ``usdrl`` params section (torch-free): every key required, the paper values in
``defaults.PAPER``.

The section has the blocks ``encoder``, ``proj``, ``loss``, ``aug`` and ``train``
(:data:`USDRL_SCHEMA`). :func:`validate_section` is ``USDRLInfo.schema``: params validation
(:mod:`skelrep.validation`) runs it without loading torch, and ``model.validate_usdrl_config``
builds the model config from its values.
"""

from __future__ import annotations

from typing import Any

from skelrep.data.augment_schema import AUG_SCHEMA, check_aug
from skelrep.losses.mgfd_domains import DEFAULT_DOMAIN_MIX
from skelrep.models.schema import MODALITIES, check_transformer
from skelrep.schema import boolean, choice, integer, mapping, number, positive, validate
from skelrep.training.schema import TRAIN_SCHEMA

ARCHS = ("dste", "sttr")  # the encoder architectures (model.BACKBONES)
PROJECTOR_BN = ("local", "sync")

ENCODER_SCHEMA = {
    "arch": choice(*ARCHS), "hidden": integer(1), "heads": integer(1), "num_layers": integer(1),
    "alpha": number(0.0, 1.0), "gap": integer(1), "kernel_size": integer(1),
    "drop_path": number(0.0, 1.0, open_hi=True), "mlp_ratio": positive(), "t_pe_max_len": integer(1),
    "frames": integer(1),
}
PROJ_SCHEMA = {"cp": integer(1), "bn": choice(*PROJECTOR_BN)}
LOSS_SCHEMA = {
    "w_sim": number(0.0), "w_vac": number(0.0), "w_xcorr": number(0.0), "vac_var_weight": number(0.0),
    "vac_cov_weight": number(0.0), "var_eps": positive(), "xcorr_offdiag": number(0.0),
    "domain_mix": mapping({g: number(0.0) for g in DEFAULT_DOMAIN_MIX}), "fp32": boolean,
}


USDRL_SCHEMA = {
    "encoder": mapping(ENCODER_SCHEMA, check_transformer),
    "proj": mapping(PROJ_SCHEMA),
    "loss": mapping(LOSS_SCHEMA),
    "aug": mapping(AUG_SCHEMA, check_aug),
    "train": mapping({**TRAIN_SCHEMA, "modality": choice(*MODALITIES)}),
}


def validate_section(section: Any) -> dict[str, Any]:
    """The ``usdrl`` section's validated values; raises ParamsError naming the dotted key
    (e.g. ``usdrl.encoder.hidden``) and what is allowed."""
    return validate(section, USDRL_SCHEMA, "usdrl")
