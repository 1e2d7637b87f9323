"""What a pipeline configuration is: its name in the benchmark tables and its MLflow run.

The one place that knows the domain of a run (methods, protocols, datasets): the display name
and variant of the configured method (``configuration``), and the :class:`RunIdentity` of one
protocol's run (``run_identity``: experiment, run key, tags, run name) that ``skelrep.tracking``
opens without knowing what any of it means.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .data.protocols import resolve_protocol
from .methods import METHODS
from .recipes import protocol_params
from .tracking.mlflow_run import CONFIG_KEY_TAG, STREAM_KEY_TAG, RunIdentity, run_key

__all__ = ["RunIdentity", "configuration", "identifying_params", "method_label", "run_identity"]


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


def run_config(params: Mapping[str, Any], protocol: str) -> dict:
    """The parameters that define one pipeline configuration of ``protocol``: what the run key
    hashes (the data sections include a user dataset's split rules). Its keys must not change, or
    every recorded run gets a new key. The sections are the protocol's (its own settings applied),
    so two configurations that run the same settings share a key."""
    params = protocol_params(params, protocol)
    spec = resolve_protocol(params, protocol)
    method = params.get("method")
    config = {"protocol": protocol, "method": method, method: params.get(method),
              "data": {d: params.get("data", {}).get(d) for d in spec.raw_datasets},
              **{k: params.get(k) for k in ("preprocess", "pku", "features", "linear", "knn", "detection")}}
    return config


def input_modality(params: Mapping[str, Any]) -> str | None:
    """The configured method's input stream (joint, bone, motion), if the method has one
    (``MethodInfo.input_modality``)."""
    method = params.get("method")
    info = METHODS.get(method) if isinstance(method, str) else None
    return info.input_modality(params.get(method) or {}) if info is not None else None


def comparison_keys(params: Mapping[str, Any], protocol: str) -> dict[str, str]:
    """Keys that group runs across protocols for ``skelrep compare``.

    ``config_key``: the run key without the protocol and its data, so the runs of one pipeline
    configuration on every benchmark form one table row. ``stream_key``: the same with the
    input modality left out, so runs that differ only in their stream (joint, bone, motion)
    share it: the streams that late fusion combines.
    """
    config = {k: v for k, v in run_config(params, protocol).items() if k not in ("protocol", "data")}
    streamless = copy.deepcopy(config)
    method = params.get("method")
    if isinstance(method, str) and method in METHODS:  # the section without its input stream
        streamless[method] = METHODS[method].without_input_modality(streamless.get(method))
    return {CONFIG_KEY_TAG: run_key(config), STREAM_KEY_TAG: run_key(streamless)}


def identifying_params(params: Mapping[str, Any], protocol: str) -> dict[str, Any]:
    """Method, the method's own identifying params (``MethodInfo.identifying_params``, e.g. the
    USDRL architecture and input stream) and the data source: the MLflow params the pretrain
    stage logs next to its own."""
    method = params.get("method")
    info = METHODS.get(method) if isinstance(method, str) else None
    own = info.identifying_params(params.get(method) or {}) if info is not None else {}
    out = {"method": method, **{f"{method}.{k}": v for k, v in own.items()}}
    dataset = resolve_protocol(params, protocol).dataset
    out[f"data.{dataset}.source"] = ((params.get("data") or {}).get(dataset) or {}).get("source")
    return {k: v for k, v in out.items() if v is not None}


def run_identity(params: Mapping[str, Any], protocol: str) -> RunIdentity:
    """The MLflow run of this configuration on ``protocol``: experiment ``protocol``, the run
    key (hash of ``run_config``), the tags every stage sets (method, variant, protocol, dataset,
    benchmark, data source, input modality, comparison keys) and the run name, all from
    params.yaml as the protocol's stages see it (its own settings applied)."""
    params = protocol_params(params, protocol)
    spec = resolve_protocol(params, protocol)
    method = params.get("method")
    modality = input_modality(params)
    tags = {"method": method, "variant": configuration(params)[1], "protocol": protocol,
            "dataset": spec.dataset, "benchmark": spec.benchmark,
            "data_source": params.get("data", {}).get(spec.dataset, {}).get("source"),
            **({"modality": modality} if modality else {}), **comparison_keys(params, protocol)}
    enabled = bool((params.get("mlflow") or {}).get("enabled", True))
    return RunIdentity(experiment=protocol, run_key=run_key(run_config(params, protocol)), tags=tags,
                       run_name=f"{method}-{protocol}" + (f"-{modality}" if modality else ""), enabled=enabled)
