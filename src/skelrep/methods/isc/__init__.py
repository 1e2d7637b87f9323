"""ISC, Skeleton-Contrast (Thoker et al., ACM MM 2021): inter-skeleton contrast between two
representations of a clip (sequence GRU, graph AGCN, image HCN) with MoCo v2 queues.

The method, in one folder: ``ISCInfo`` (here, no torch) says what it is, ``schema.py``
validates its section (no torch), ``method.py`` implements it, ``defaults.py`` holds its paper
values, ``moco.py`` is the pretraining model and ``gru.py``, ``agcn.py``, ``hcn.py``,
``heads.py`` its encoders and heads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skelrep.methods.base import DownstreamCrops, DownstreamInput, MethodInfo
from skelrep.methods.isc import defaults


class ISCInfo(MethodInfo):
    name = "isc"
    label = "ISC"
    published_as = "ISC"
    # linear probe: train on random crops U(0.5, 1) of at least 64 frames, test on the centre 95 %;
    # KNN: the centre 95 % for gallery and queries (isc.md section 7, I13)
    downstream_crop = DownstreamCrops(train=DownstreamInput("random", scale=(0.5, 1.0), min_frames=64),
                                      test=DownstreamInput("center", 0.95))
    paper = defaults.PAPER
    paper_source = defaults.PAPER_SOURCE
    paper_sections = defaults.PAPER_SECTIONS
    paper_protocols = defaults.PAPER_PROTOCOLS
    implementation = "skelrep.methods.isc.method:ISC"
    schema = "skelrep.methods.isc.schema:validate_section"

    @classmethod
    def _variant_parts(cls, section: Mapping[str, Any]) -> list[Any]:
        parts = super()._variant_parts(section)  # "joint, seq+graph, eval seq"
        if section.get("pair"):
            parts += [section["pair"].replace("_", "+"), f"eval {section.get('eval_encoder', 'seq')}"]
        return parts
