"""What a pipeline configuration is: its name in the benchmark tables and its MLflow run.

The one place that knows the domain of a run (methods, protocols, datasets): the display name
and variant of the configured method (``configuration``), and the :class:`RunIdentity` of one
protocol's run (``run_identity``: experiment, run key, tags, run name, runs-table columns) that
``skelrep.tracking`` opens without knowing what any of it means.

**What a run says it is.** Its name is ``<method> · <stream> · <changes>``, e.g. ``usdrl · joint
· w_xcorr=0``: the parameters of the configuration that differ from *the profile*, the committed
default CPU profile. Precisely: the run's configuration (``run_config``, what the run key hashes,
with the protocol's own settings applied and the input stream left out, as the name shows it)
against the same of ``params.yaml`` as committed at the experiment's baseline commit
(``DVC_EXP_BASELINE_REV`` inside ``dvc exp run``, else ``HEAD``; read with git by
``skelrep.params.committed_params``), with the run's method. That is deterministic for a given
commit and is exactly what ``dvc exp run -S`` (or an uncommitted edit) changed. When the paper
profile (``skelrep profile paper``) explains the run better (fewer changes), the changes are
named against it: ``usdrl · joint · paper``. Tags carry the same: ``changes`` (the short form),
``skelrep.changed_params`` (every changed key, dotted, with its value) and ``skelrep.profile``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .catalog import DATASETS
from .data.protocols import resolve_protocol
from .errors import SkelrepError
from .methods import METHODS
from .recipes import flatten, protocol_params
from .tracking.mlflow_run import CONFIG_KEY_TAG, STREAM_KEY_TAG, RunIdentity, run_key, tracking_enabled

__all__ = ["RunIdentity", "changed_params", "configuration", "describe_changes", "identifying_params",
           "method_label", "run_identity"]


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


def configuration_label(params: Mapping[str, Any]) -> str:
    """The configured method with its variant, as the tables and the report page name it:
    ``USDRL (DSTE, joint)``."""
    method, variant = configuration(params)
    return f"{method} ({variant})" if variant else method


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


# the runs table's columns (tracking.runs_table_view): the headline metrics of every protocol
KEY_METRICS = ("linear/top1_last", "linear/random_init/top1_last", "linear/handcrafted/top1_last", "knn/top1",
               "pretrain/loss_last")
KEY_TAGS = ("changes", "dvc.exp_name")
NAME_CHANGES = 3  # changes named in a run name; the rest counted ("+2 more"), all of them in a tag
_UNSET = object()


def _streamless(params: Mapping[str, Any], protocol: str) -> dict:
    """``run_config`` with the method's input stream left out (the run name shows it first)."""
    config = run_config(params, protocol)
    method = params.get("method")
    if isinstance(method, str) and method in METHODS:
        config[method] = METHODS[method].without_input_modality(copy.deepcopy(config.get(method)))
    return config


def _diff(params: Mapping[str, Any], reference: Mapping[str, Any], protocol: str) -> dict[str, Any]:
    ours, theirs = flatten(_streamless(params, protocol)), flatten(_streamless(reference, protocol))
    keys = list(ours) + [k for k in theirs if k not in ours]
    return {k: ours.get(k, _UNSET) for k in keys
            if k not in ("protocol", "method") and ours.get(k, _UNSET) != theirs.get(k, _UNSET)}


def changed_params(params: Mapping[str, Any], protocol: str, baseline: Mapping[str, Any]
                   ) -> tuple[str, dict[str, Any]] | None:
    """``(profile, {dotted key: value})``: what the configuration of ``protocol`` changes against
    the committed params.yaml ``baseline`` ("default"), or against the baseline with the paper
    recipe of the run's method applied ("paper") when that leaves fewer changes. Keys as in
    params.yaml with the protocol's own settings applied (``linear.lr``, ``usdrl.loss.w_xcorr``,
    ``data.ntu60.source``); a key the run lacks has the value :data:`UNSET`. None when the
    baseline cannot describe the protocol (e.g. a protocol added since the commit)."""
    from .profiles import apply_assignments, profile_assignments

    method = params.get("method")
    reference = {**copy.deepcopy(dict(baseline)), "method": method}
    try:
        best = ("default", _diff(params, reference, protocol))
    except (SkelrepError, KeyError, TypeError, AttributeError):
        return None
    try:  # the paper profile of the run's method (its section picks the variant, e.g. STTR)
        assignments = profile_assignments("paper", {**reference, method: params.get(method)}, method)
        paper = ("paper", _diff(params, apply_assignments(reference, assignments), protocol))
        if len(paper[1]) < len(best[1]):
            best = paper
    except (SkelrepError, KeyError, TypeError, AttributeError):
        pass
    return best


UNSET = _UNSET  # the value of a key the run's params.yaml lacks, in changed_params


def _value(value: Any) -> str:
    if value is _UNSET:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its shortest trailing part that no other key ends with (``w_xcorr``;
    ``train.lr`` next to ``linear.lr``)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(other != key and (other == tail or other.endswith("." + tail)) for other in keys):
                break
        out[key] = tail
    return out


def describe_changes(profile: str, changed: Mapping[str, Any], limit: int = NAME_CHANGES) -> str:
    """The short form of :func:`changed_params`: ``w_xcorr=0``, ``paper``, ``paper, lr=0.1``,
    at most ``limit`` changes named (``+N more``); "" for the default profile unchanged."""
    short = _short_keys(list(changed))
    parts = [f"{short[k]}={_value(v)}" for k, v in changed.items()]
    if len(parts) > limit:
        parts = parts[:limit] + [f"+{len(parts) - limit} more"]
    return ", ".join(([profile] if profile != "default" else []) + parts)


def run_identity(params: Mapping[str, Any], protocol: str, baseline: Mapping[str, Any] | None = None
                 ) -> RunIdentity:
    """The MLflow run of this configuration on ``protocol``: experiment ``protocol``, the run
    key (hash of ``run_config``), the tags every stage sets (method, variant, protocol, dataset,
    benchmark, data source, input modality, comparison keys and, given the committed params.yaml
    ``baseline``, what the configuration changes: the module doc), the run name and the runs
    table's columns, all from params.yaml as the protocol's stages see it (its own settings
    applied). Without a ``baseline`` (no git) the run name and tags say nothing about changes."""
    params = protocol_params(params, protocol)
    spec = resolve_protocol(params, protocol)
    method = params.get("method")
    modality = input_modality(params)
    tags = {"method": method, "variant": configuration(params)[1], "protocol": protocol,
            "dataset": spec.dataset, "benchmark": spec.benchmark,
            "data_source": params.get("data", {}).get(spec.dataset, {}).get("source"),
            **({"modality": modality} if modality else {}), **comparison_keys(params, protocol)}
    changes = changed_params(params, protocol, baseline) if baseline is not None else None
    short = ""
    if changes is not None:
        profile, changed = changes
        short = describe_changes(profile, changed)
        full = "; ".join(f"{k}={_value(v)}" for k, v in changed.items())
        tags.update({"changes": short, "skelrep.profile": profile, "skelrep.changed_params": full[:5000]})
    name = " · ".join(str(p) for p in (method, modality, short) if p)
    theta = ((params.get("detection") or {}).get("official_theta"))
    detection = (f"detect/mAP_action_theta{theta:g}",) if (
        spec.dataset in DATASETS and DATASETS[spec.dataset].detection and isinstance(theta, (int, float))) else ()
    return RunIdentity(experiment=protocol, run_key=run_key(run_config(params, protocol)), tags=tags,
                       run_name=name, enabled=tracking_enabled(params), metric_columns=KEY_METRICS + detection,
                       tag_columns=KEY_TAGS)
