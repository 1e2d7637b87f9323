"""UmURL (Sun et al., ACM MM 2023): per-modality embeddings fused early into one modality-agnostic
spatio-temporal transformer, trained with intra- and inter-modal consistency.

The method, in one folder: ``UmURLInfo`` (here, no torch) says what it is, ``schema.py``
validates its section (no torch), ``method.py`` implements it, ``defaults.py`` holds its paper
values, ``model.py`` is the model and ``official.py`` maps official checkpoint names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skelrep.methods.base import WHOLE, DownstreamCrops, MethodInfo
from skelrep.methods.umurl import defaults


class UmURLInfo(MethodInfo):
    # UmURL trains on all three streams at once: its section has no ``train.modality``, so
    # input_modality is None and every run has the same stream key
    name = "umurl"
    label = "UmURL"
    published_as = "UmURL"
    downstream_crop = DownstreamCrops(train=WHOLE, test=WHOLE)  # the whole valid sequence: linear eval and KNN
    paper = defaults.PAPER
    paper_source = defaults.PAPER_SOURCE
    paper_sections = defaults.PAPER_SECTIONS
    paper_protocols = defaults.PAPER_PROTOCOLS
    implementation = "skelrep.methods.umurl.method:UmURL"
    schema = "skelrep.methods.umurl.schema:validate_section"

    @classmethod
    def _variant_parts(cls, section: Mapping[str, Any]) -> list[Any]:
        parts = super()._variant_parts(section)
        if section.get("eval_input") not in (None, "fused"):  # the paper's feature is the fused one
            parts.append(section["eval_input"])
        return parts
