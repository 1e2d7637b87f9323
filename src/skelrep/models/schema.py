"""The torch-free params side of the shared model code: the input-stream names and the check of
a transformer encoder section.

The method schemas (``skelrep.methods.<name>.schema``) use these without loading torch;
:mod:`skelrep.models.modalities` derives the streams and :mod:`skelrep.models.components`
builds the transformers.
"""

from __future__ import annotations

from skelrep.errors import ParamsError

MODALITIES = ("joint", "bone", "motion")  # the input streams (skelrep.models.modalities.make_modality)


def check_transformer(v: dict, key: str) -> None:
    """The schema check of a transformer encoder section (``hidden``, ``heads``, ``t_pe_max_len``,
    ``frames``): the heads split ``hidden``, the positional table covers the clip."""
    if v["hidden"] % v["heads"]:
        raise ParamsError(f"{key}.heads", f"got {v['heads']}; expected a divisor of hidden={v['hidden']}")
    if v["t_pe_max_len"] < v["frames"]:
        raise ParamsError(f"{key}.t_pe_max_len", f"got {v['t_pe_max_len']}; expected >= frames={v['frames']}")
