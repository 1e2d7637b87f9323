"""Which datasets and protocols exist: the four built-in benchmarks and the user's own.

dvc.yaml builds its stages from params.yaml (which DVC reads for templating): one
``download@<dataset>`` and one ``preprocess@<dataset>`` per key of ``data``, and one
``pretrain@`` / ``features@`` / ``linear@`` / ``knn@<protocol>`` per key of ``protocols``.
Each dataset is parsed once into ``data/processed/<dataset>.h5``, which holds one index set
per named split; a protocol is a dataset and one of its splits. So a new dataset and protocol
are two params.yaml entries and no code:

- **built-in**: the datasets ``ntu60``, ``ntu120``, ``pku1``, ``pku2`` (``source: synthetic |
  official``) and their six protocols (:data:`skelrep.catalog.PROTOCOLS`), whose splits the
  benchmark fixes (``{dataset: ntu60, split: xsub, ...}``): their dataset and split cannot be
  changed.

Every entry also holds the protocol's own settings, ``pretrain``, ``features``, ``linear`` and
``knn`` (``{}``: none), over the sections of params.yaml (:mod:`skelrep.recipes`).
- **user-defined**: any other key of ``data`` is a dataset with ``source: generic``
  (:mod:`skelrep.data.generic`), which names its splits (``data.<dataset>.generic.splits:
  {xsub: <rule>, xview: <rule>}``); any other key of ``protocols`` is ``{dataset: <that
  dataset>, split: <one of its split names>, ...}`` (several protocols on one dataset share its
  single processed file).

``data.<dataset>.base`` is the raw folder a dataset builds on besides its own (NTU-120 = the
NTU-60 archive + the extension archive); dvc.yaml needs it for every dataset, so every other
dataset names itself there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import DATASETS, PROTOCOLS
from ..errors import ParamsError
from ..recipes import STAGE_SECTIONS
from ..schema import string, validate

# Names become stage names (download@<name>), paths and dotted params keys: no '.', '@', '/'.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_NAME_RULE = "letters, digits, '_' and '-' (starting with a letter or digit)"
USER_BENCHMARK = "custom"  # the benchmark of every user-defined protocol (MLflow tags)


def _settings(value: Any, key: str) -> Any:
    # the protocol's own settings; their keys and values are checked against the sections they
    # change (skelrep.recipes.check_protocol_overrides, run by skelrep.validation)
    if not isinstance(value, Mapping):
        raise ParamsError(key, f"got {value!r}; expected a mapping of the settings to change ({{}}: none)")
    return value


# a protocol: a dataset, one of its named splits, and its own settings per stage (skelrep.recipes)
ENTRY_SCHEMA = {"dataset": string, "split": string, **dict.fromkeys(STAGE_SECTIONS, _settings)}


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    split: str                       # the named split of the dataset file it selects
    benchmark: str                   # xsub | xview | xset (built-in) or "custom"
    raw_datasets: tuple[str, ...]    # the datasets whose raw folders its dataset reads

    @property
    def builtin(self) -> bool:
        return self.name in PROTOCOLS


def _builtin(protocol: str) -> Protocol:
    dataset, split = PROTOCOLS[protocol]
    return Protocol(protocol, dataset, split, split, DATASETS[dataset].raw_datasets)


def user_datasets(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The datasets of ``params['data']`` that are not built in (each must be generic)."""
    data = params.get("data")
    if not isinstance(data, Mapping):
        raise ParamsError("data", f"expected a mapping of datasets, got {data!r}")
    return tuple(d for d in data if d not in DATASETS)


def check_dataset_name(dataset: str, key: str) -> None:
    if not isinstance(dataset, str) or not _NAME.fullmatch(dataset):
        raise ParamsError(key, f"dataset name {dataset!r}: use {_NAME_RULE}")


def protocol_names(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Every protocol the pipeline runs: the keys of ``params['protocols']`` (built-ins when absent)."""
    section = params.get("protocols")
    if section is None:
        return tuple(PROTOCOLS)
    if not isinstance(section, Mapping):
        raise ParamsError("protocols", f"expected a mapping of protocol -> {{dataset, base}}, got {section!r}")
    return tuple(section)


def resolve_protocol(params: Mapping[str, Any], name: str) -> Protocol:
    """The protocol ``name`` of params.yaml, validated; ParamsError naming the key otherwise.

    A built-in protocol resolves without a ``protocols`` entry; a user-defined one needs its
    entry and a generic dataset.
    """
    section = params.get("protocols") or {}
    entry = section.get(name) if isinstance(section, Mapping) else None
    key = f"protocols.{name}"
    if name in PROTOCOLS:
        protocol = _builtin(name)
        if entry is not None:
            fields = validate(entry, ENTRY_SCHEMA, key)
            expected = {"dataset": protocol.dataset, "split": protocol.split}
            if {k: fields[k] for k in expected} != expected:
                raise ParamsError(key, f"got {entry!r}; {name} is a built-in benchmark protocol on "
                                  f"{expected} (define a protocol under another name for other data)")
        return protocol
    if entry is None:
        raise ParamsError("protocol", f"unknown protocol {name!r}; params.yaml protocols: "
                          f"{', '.join(protocol_names(params))}")
    if not _NAME.fullmatch(name):
        raise ParamsError(key, f"protocol name {name!r}: use {_NAME_RULE}")
    if not isinstance(entry, Mapping):
        raise ParamsError(key, f"got {entry!r}; expected {{dataset: <name>, split: <split name>, pretrain: {{}}, "
                          "features: {}, linear: {}, knn: {}}")
    fields = validate(entry, ENTRY_SCHEMA, key)
    dataset = fields["dataset"]
    if dataset in DATASETS:
        raise ParamsError(f"{key}.dataset", f"{dataset!r} is a built-in benchmark dataset, whose protocols "
                          f"are fixed ({', '.join(PROTOCOLS)}); a user protocol needs a dataset with "
                          "source: generic")
    if dataset not in user_datasets(params):
        raise ParamsError(f"{key}.dataset", f"no dataset {dataset!r} in params.yaml data; add "
                          f"data.{dataset} with source: generic (docs/custom_data.md)")
    splits = _generic_split_names(params, dataset)
    if splits is not None and fields["split"] not in splits:
        raise ParamsError(f"{key}.split", f"got {fields['split']!r}; data.{dataset}.generic.splits names "
                          f"{', '.join(splits)}")
    return Protocol(name, dataset, fields["split"], USER_BENCHMARK, (dataset,))


def _generic_split_names(params: Mapping[str, Any], dataset: str) -> tuple[str, ...] | None:
    """The split names ``data.<dataset>.generic.splits`` declares (None when that section is not
    a mapping: its own validator reports it)."""
    section = ((params.get("data") or {}).get(dataset) or {})
    splits = (section.get("generic") or {}).get("splits") if isinstance(section, Mapping) else None
    return tuple(splits) if isinstance(splits, Mapping) else None


def resolve_all(params: Mapping[str, Any]) -> dict[str, Protocol]:
    """Every protocol of params.yaml, validated (the check a stage runs before heavy work)."""
    for dataset in user_datasets(params):
        check_dataset_name(dataset, f"data.{dataset}")
    return {name: resolve_protocol(params, name) for name in protocol_names(params)}


