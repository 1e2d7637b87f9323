"""USDRL (Weng et al., AAAI 2025): a dense spatio-temporal encoder (DSTE, or the plain STTR
variant), three projectors and the multi-grained feature decorrelation loss (MG-FD).

The method, in one folder: ``USDRLInfo`` (here, no torch) says what it is, ``schema.py``
validates its section (no torch), ``method.py`` implements it, ``defaults.py`` holds its paper
values, ``model.py``, ``backbone.py``, ``dste.py`` and ``sttr.py`` are the model and
``official.py`` imports official checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skelrep.methods.base import WHOLE, DownstreamCrops, MethodInfo
from skelrep.methods.usdrl import defaults
from skelrep.recipes import Recipe, deep_merge


class USDRLInfo(MethodInfo):
    name = "usdrl"
    label = "USDRL"
    published_as = "USDRL"
    # the whole valid sequence for the linear probe (train and test) and KNN (PKU-MMD II's
    # official centre-50 % train crop, usdrl.md Q11, is a per-benchmark features.train_crop setting)
    downstream_crop = DownstreamCrops(train=WHOLE, test=WHOLE)
    paper = defaults.PAPER
    paper_source = defaults.PAPER_SOURCE
    paper_sections = defaults.PAPER_SECTIONS
    paper_protocols = defaults.PAPER_PROTOCOLS
    implementation = "skelrep.methods.usdrl.method:USDRL"
    schema = "skelrep.methods.usdrl.schema:validate_section"

    @classmethod
    def paper_recipe(cls, section: Mapping[str, Any]) -> Recipe:
        recipe = super().paper_recipe(section)
        if cls.encoder_arch(section) == "sttr":  # its own NTU-60 xsub linear lr
            return Recipe(recipe.source, recipe.method, recipe.sections,
                          deep_merge(recipe.protocols, defaults.STTR_PROTOCOLS))
        return recipe

    @classmethod
    def encoder_arch(cls, section: Mapping[str, Any]) -> str | None:
        """The encoder architecture (dste, sttr) the section names, if any."""
        encoder = section.get("encoder")
        return encoder.get("arch") if isinstance(encoder, Mapping) else None

    @classmethod
    def _variant_parts(cls, section: Mapping[str, Any]) -> list[Any]:
        arch = cls.encoder_arch(section)  # "DSTE, joint"
        return [arch.upper() if arch else None, *super()._variant_parts(section)]

    @classmethod
    def identifying_params(cls, section: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"arch": cls.encoder_arch(section or {}), **super().identifying_params(section)}
