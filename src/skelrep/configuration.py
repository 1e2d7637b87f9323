"""How a pipeline configuration is named, in the benchmark tables and in MLflow tags alike."""

from __future__ import annotations

from typing import Any, Mapping

METHOD_NAMES = {"usdrl": "USDRL", "umurl": "UmURL", "isc": "ISC"}


def configuration(params: Mapping[str, Any]) -> tuple[str, str]:
    """``(method display name, variant)`` of the configured method, e.g. ("USDRL", "DSTE, joint").

    The variant names what distinguishes the method's published variants: the USDRL encoder
    (DSTE / STTR) and input stream, ISC's representation pair and evaluated encoder, UmURL's
    evaluation input when it is not the paper's fused feature.
    """
    method = params.get("method", "")
    section = params.get(method) or {}
    arch = (section.get("encoder") or {}).get("arch")
    parts = [arch.upper() if arch else None, (section.get("train") or {}).get("modality")]
    if section.get("pair"):
        parts += [section["pair"].replace("_", "+"), f"eval {section.get('eval_encoder', 'seq')}"]
    if section.get("eval_input") not in (None, "fused"):
        parts.append(section["eval_input"])
    return METHOD_NAMES.get(method, method), ", ".join(str(x) for x in parts if x)
