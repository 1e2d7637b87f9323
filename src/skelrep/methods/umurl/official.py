"""Official UmURL checkpoints (the UmURL code's ``umurl.py`` names) -> skelrep names.

Used by the reference-parity tests to load the official weights into ``UmURLModel``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from skelrep.models.state_dict import strip_module_prefix

_MODALITY = {"j": "joint", "b": "bone", "m": "motion"}
_STREAM = {"t": "temporal", "s": "spatial"}
_OFFICIAL_KEYS = (
    # (official pattern, our name built from its groups)
    (re.compile(r"backbone\.([jbm])_emb\.([ts])_embedding\.(.+)"),
     lambda m: f"backbone.embed.{_MODALITY[m[1]]}.{_STREAM[m[2]]}.{m[3]}"),
    (re.compile(r"backbone\.mm_fusion\.([ts])_fusion\.0\.weight"),
     lambda m: f"backbone.fusion.{_STREAM[m[1]]}.weight"),
    (re.compile(r"backbone\.ma_encoder\.pe\.pe"), lambda m: "backbone.encoder.temporal_pe.pe"),
    (re.compile(r"backbone\.ma_encoder\.([ts])_tr\.(layers\..+)"),
     lambda m: f"backbone.encoder.{m[1]}_encoder.{m[2]}"),
    (re.compile(r"([jbm])_projector\.(.+)"), lambda m: f"projectors.{_MODALITY[m[1]]}.{m[2]}"),
    (re.compile(r"fc\..+"), lambda m: m[0]),  # the downstream classifier keeps its name
)


def map_official_umurl_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official UmURL (pretraining or ``Downstream``) state dict to ``UmURLModel`` names.

    ``module.`` prefixes are removed first. Raises ValueError listing unknown keys.
    """
    mapped, unknown = {}, []
    for key, value in strip_module_prefix(state_dict).items():
        for pattern, rename in _OFFICIAL_KEYS:
            if match := pattern.fullmatch(key):
                mapped[rename(match)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"unexpected keys for an official UmURL checkpoint: {', '.join(unknown[:8])}"
                         + (f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else ""))
    return mapped
