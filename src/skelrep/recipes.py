"""Recipes: a method's settings for every benchmark, and how a protocol's stages see params.yaml.

**Per-protocol settings live in params.yaml**, in the protocol's entry::

    protocols:
      pku2-xsub: {dataset: pku2, split: xsub, pretrain: {train: {epochs: 1201}}, features: {},
                  linear: {lr: 0.01}, knn: {}}

``pretrain`` overrides the selected method's section, ``features`` / ``linear`` / ``knn`` the
sections of the same name, for that protocol's stages only: :func:`protocol_params` is
params.yaml as the stages of one protocol see it (the more specific value wins). dvc.yaml makes
each stage depend on its own entry (``protocols.<p>.linear`` for ``linear@<p>``), so a linear
setting of one protocol re-runs nothing else.

**A recipe** (:class:`Recipe`, a method's ``defaults.py``) is a method's settings in one
profile, of the same shape: its section values, the other sections it sets (preprocessing
variant, linear evaluation, ...) and its per-benchmark values. :mod:`skelrep.profiles` applies
one to params.yaml as ``dvc exp run -S`` assignments, so the experiment's params.yaml shows
every value it set. The committed params.yaml is the default (CPU) profile.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ParamsError

# The per-protocol keys of a protocols entry: "pretrain" is the selected method's section.
STAGE_SECTIONS = ("pretrain", "features", "linear", "knn")


@dataclass(frozen=True)
class Recipe:
    """A method's settings in one profile: nested like params.yaml, each part partial."""

    source: str                                             # where the values come from
    method: Mapping[str, Any] = field(default_factory=dict)  # the method's section, every benchmark
    sections: Mapping[str, Any] = field(default_factory=dict)  # other sections: {"linear": {...}}
    # protocol -> {"pretrain" | "features" | "linear" | "knn": {...}}: one benchmark's values
    protocols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merged key by key, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (an empty mapping is a leaf: ``{"a.b": {}}``)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def protocol_entry(params: Mapping[str, Any], protocol: str) -> Mapping[str, Any]:
    section = params.get("protocols") or {}
    entry = section.get(protocol) if isinstance(section, Mapping) else None
    return entry if isinstance(entry, Mapping) else {}


def protocol_params(params: Mapping[str, Any], protocol: str) -> dict:
    """params.yaml as the stages of ``protocol`` see it: the protocol's ``pretrain`` entry over
    the selected method's section, its ``features`` / ``linear`` / ``knn`` over those sections."""
    entry = protocol_entry(params, protocol)
    out = copy.deepcopy(dict(params))
    method = params.get("method")
    for stage in STAGE_SECTIONS:
        own = entry.get(stage)
        if not own:
            continue
        target = method if stage == "pretrain" else stage
        if isinstance(target, str) and isinstance(out.get(target), Mapping):
            out[target] = deep_merge(out[target], own)
    return out


def check_protocol_overrides(params: Mapping[str, Any], protocol: str, validators: Mapping[str, Any]) -> None:
    """Validate what ``protocol``'s entry sets: each merged section with its own validator
    (``validators``: target section -> function(section)), an error in a value the entry set
    naming the entry's key (``protocols.<p>.linear.lr``)."""
    entry = protocol_entry(params, protocol)
    method = params.get("method")
    for stage in STAGE_SECTIONS:
        own = entry.get(stage)
        key = f"protocols.{protocol}.{stage}"
        if own is None:
            continue
        if not isinstance(own, Mapping):
            raise ParamsError(key, f"got {own!r}; expected a mapping of the settings to change ({{}}: none)")
        target = method if stage == "pretrain" else stage
        if not own or target not in validators or not isinstance(params.get(target), Mapping):
            continue
        try:
            validators[target](deep_merge(params[target], own))
        except ParamsError as err:
            renamed = _renamed(err, target, own, key)
            if renamed is err:
                if _section_error(validators[target], params[target]) == (err.key, err.reason):
                    continue  # the section's own error, reported once by the section's validation
                # valid alone, invalid with the entry's values: say which entry
                renamed = ParamsError(err.key, f"{err.reason} (with the settings of {key})")
            raise renamed from None


def _section_error(validator: Any, section: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(key, reason)`` of the error ``section`` has without any protocol's entry, or None."""
    try:
        validator(section)
    except ParamsError as err:
        return err.key, err.reason
    return None


def _renamed(err: ParamsError, target: str, own: Mapping[str, Any], key: str) -> ParamsError:
    """The error of a merged section, named by the protocol entry when the entry set that key."""
    if not err.key.startswith(target + "."):
        return err
    rest = err.key[len(target) + 1:]
    node: Any = own
    for part in rest.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return err
        node = node[part]
    return ParamsError(f"{key}.{rest}", err.reason)
