"""How a pipeline configuration is named, in the benchmark tables and in MLflow tags alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .methods import METHODS


def method_label(method: str) -> str:
    """The display name of a registered method (``MethodInfo.label``); any other name as it is."""
    info = METHODS.get(method) if isinstance(method, str) else None
    return info.label if info is not None else method


def configuration(params: Mapping[str, Any]) -> tuple[str, str]:
    """``(method display name, variant)`` of the configured method, e.g. ("USDRL", "DSTE, joint").

    The variant names what distinguishes the method's published variants (each method says
    how: ``MethodInfo.variant``): the USDRL encoder (DSTE / STTR) and input stream, ISC's
    representation pair and evaluated encoder, UmURL's evaluation input when it is not the
    paper's fused feature.
    """
    method = params.get("method", "")
    info = METHODS.get(method) if isinstance(method, str) else None
    if info is None:
        return method, ""
    return info.label, info.variant(params.get(method) or {})
