"""The ``preprocess`` and ``pku`` sections of params.yaml.

Apart from the preprocessing itself so that validating params.yaml, every stage's first step,
does not load it (h5py, the readers, the plausibility check, the figure).
"""

from __future__ import annotations

from ..schema import boolean, choice, integer
from .normalize import NORMALISATIONS

PREPROCESS_SCHEMA = {
    "normalisation": choice(*NORMALISATIONS),
    "denoise": boolean,
    "max_frames": integer(1, 10_000),
    "max_bodies_read": integer(1, 8),
    "bodies_out": integer(1, 4),
    "on_error": choice("fail", "skip"),
    "workers": integer(0, 1024),
}
PKU_SCHEMA = {
    "boundary_convention": choice("one_based_inclusive", "zero_based_half_open"),
    "long_clip_policy": choice("head", "centre"),
    "max_frames": integer(1, 10_000),
}
