"""The whole of ``params.yaml`` validated at once, before any stage does any work.

Every stage calls :func:`validate_all` right after reading the file, the ``check`` stage of
dvc.yaml (which every other stage depends on) runs it first of all, and ``skelrep check``
runs it for a user. So a typo anywhere (``linear.epochz``, ``method: simclr``, an unknown
top-level section) stops the pipeline before any stage trains, with a message naming the
dotted key and what is allowed.

There is no second schema here: each section is checked by the validator its own code uses
(``data.<dataset>`` by :func:`skelrep.data.sources.validate_data_section`, ``protocols`` by
:func:`skelrep.data.protocols.resolve_all`, ``preprocess``/``pku`` by the preprocessing
schemas, the evaluation sections by :mod:`skelrep.evaluation.sections`, ``mlflow`` by
:data:`skelrep.tracking.mlflow_run.MLFLOW_SCHEMA`, and every method section present, the
selected one and the others alike, by the method's schema, ``METHODS[name].validate_section``
(its ``schema.py``, which the method's constructor validates with too). The method names come
from the registry :data:`skelrep.methods.METHODS`. None of it loads torch or model code, so
the check costs every stage a fraction of a second, the data, evaluation and report stages
included (tests/test_validation.py checks that it stays torch-free).

Validation decides *whether* a stage runs, never *what* it writes (each stage still reads its
values through its own section's validator), so the modules imported here are dependencies
of the ``check`` stage only (tests/stages/test_dvc_deps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import ParamsError
from .schema import validate


def _method_names() -> tuple[str, ...]:
    from .methods import METHODS  # the registry: torch-free

    return tuple(METHODS)


def _method(params: Mapping[str, Any]) -> None:
    method = params["method"]
    if not isinstance(method, str) or method not in _method_names():
        raise ParamsError("method", f"got {method!r}; allowed: {', '.join(_method_names())}")


def _data(params: Mapping[str, Any]) -> None:
    from .data.sources import validate_data_section

    data = params["data"]
    if not isinstance(data, Mapping):
        raise ParamsError("data", f"expected a mapping of datasets, got {data!r}")
    for dataset, section in data.items():
        base = validate_data_section(dataset, section)["base"]
        if base not in data:
            raise ParamsError(f"data.{base}", f"missing (data.{dataset} builds on it: base: {base})")


def _protocols(params: Mapping[str, Any]) -> None:
    from .data.protocols import resolve_all

    data = params.get("data")
    for protocol in resolve_all(params).values():
        for dataset in protocol.raw_datasets:
            if isinstance(data, Mapping) and dataset not in data:
                raise ParamsError(f"data.{dataset}", f"missing (protocol {protocol.name} reads it)")


def _preprocess(params: Mapping[str, Any]) -> None:
    from .data.preprocess_schema import PREPROCESS_SCHEMA

    validate(params["preprocess"], PREPROCESS_SCHEMA, "preprocess")


def _pku(params: Mapping[str, Any]) -> None:
    from .data.preprocess_schema import PKU_SCHEMA

    validate(params["pku"], PKU_SCHEMA, "pku")


def _evaluation(name: str) -> Callable[[Mapping[str, Any]], None]:
    def check(params: Mapping[str, Any]) -> None:
        from .evaluation import sections

        validate(params[name], getattr(sections, f"{name.upper()}_SCHEMA"), name)

    return check


def _protocol_dataset(params: Mapping[str, Any], protocol: Any, key: str) -> str:
    """The dataset of ``protocol`` (a protocol of params.yaml), or ParamsError naming ``key``."""
    from .data.protocols import protocol_names, resolve_protocol

    names = protocol_names(params)
    if protocol not in names:
        raise ParamsError(key, f"got {protocol!r}; not a protocol of params.yaml protocols ({', '.join(names)})")
    return resolve_protocol(params, protocol).dataset


def _detection(params: Mapping[str, Any]) -> None:
    from .evaluation.sections import DETECTION_SCHEMA

    section = validate(params["detection"], DETECTION_SCHEMA, "detection")
    # dvc.yaml reads models/<init_from>/encoder.pt, whether or not dense_finetune runs
    _protocol_dataset(params, section["dense_finetune"]["init_from"], "detection.dense_finetune.init_from")


def _finetune(params: Mapping[str, Any]) -> None:
    from .evaluation.sections import validate_finetune

    section = validate_finetune(params["finetune"])
    for protocol, entry in section["protocols"].items():
        key = f"finetune.protocols.{protocol}"
        dataset = _protocol_dataset(params, protocol, key)
        if entry["dataset"] != dataset:
            raise ParamsError(f"{key}.dataset", f"got {entry['dataset']!r}; protocol {protocol} is on dataset "
                              f"{dataset!r} (dvc.yaml reads data/processed/<dataset>.h5)")


def _transfer(params: Mapping[str, Any]) -> None:
    from .data.protocols import _NAME, _NAME_RULE  # names become stage names and paths
    from .evaluation.sections import validate_transfer

    pairs: dict[tuple[str, str], str] = {}
    for name, entry in validate_transfer(params["transfer"]).items():
        key = f"transfer.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ParamsError(key, f"transfer name {name!r}: use {_NAME_RULE}")
        for end in ("source", "target"):
            dataset = _protocol_dataset(params, entry[end], f"{key}.{end}")
            if entry[f"{end}_dataset"] != dataset:
                raise ParamsError(f"{key}.{end}_dataset", f"got {entry[f'{end}_dataset']!r}; the {end} protocol "
                                  f"{entry[end]} is on dataset {dataset!r} (dvc.yaml reads "
                                  "data/processed/<dataset>.h5)")
        if entry["source"] == entry["target"]:
            raise ParamsError(f"{key}.target", f"got {entry['target']!r}, the source itself: that is the "
                              "protocol's own linear@ and finetune@")
        pair = (entry["source"], entry["target"])
        if pair in pairs:
            raise ParamsError(key, f"{pair[0]} -> {pair[1]} is transfer.{pairs[pair]} already")
        pairs[pair] = name


def _mlflow(params: Mapping[str, Any]) -> None:
    from .tracking.mlflow_run import MLFLOW_SCHEMA

    validate(params["mlflow"], MLFLOW_SCHEMA, "mlflow")


# the sections every params.yaml holds, in the file's order, each with its validator
SECTIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "method": _method,
    "data": _data,
    "protocols": _protocols,
    "preprocess": _preprocess,
    "pku": _pku,
    "features": _evaluation("features"),
    "linear": _evaluation("linear"),
    "knn": _evaluation("knn"),
    "detection": _detection,
    "finetune": _finetune,
    "transfer": _transfer,
    "mlflow": _mlflow,
}
OPTIONAL = ("protocols",)  # absent: the six built-in protocols (older params files)


def allowed_sections() -> tuple[str, ...]:
    """Every section params.yaml may hold, as it orders them: one per registered method after
    the data sections."""
    names = tuple(SECTIONS)
    return (*names[:5], *_method_names(), *names[5:])


def _problems(params: Mapping[str, Any]) -> Iterator[ParamsError]:
    """Each section's first error, the method sections last; lazily, so the first comes fast."""
    from .methods import METHODS  # the registry (no torch)

    allowed = allowed_sections()
    for name in params:
        if name not in allowed:
            yield ParamsError(str(name), f"unknown section; allowed sections: {', '.join(allowed)}")
    for name, check in SECTIONS.items():
        if name not in params:
            if name not in OPTIONAL:
                yield ParamsError(name, "missing")
            continue
        try:
            check(params)
        except ParamsError as err:
            yield err
    selected = params.get("method")
    if isinstance(selected, str) and selected in METHODS and selected not in params:
        yield ParamsError(selected, "missing section for the selected method")
    for name in [m for m in METHODS if m in params]:
        try:
            METHODS[name].validate_section(params[name])  # the method's own schema (no torch)
        except ParamsError as err:
            yield err
    yield from _protocol_settings(params)


def _protocol_settings(params: Mapping[str, Any]) -> Iterator[ParamsError]:
    """Each protocol's own settings (``protocols.<p>.pretrain/features/linear/knn``) merged over
    the sections they change, validated like them; an error names the protocol's key."""
    from .data.protocols import protocol_names
    from .evaluation import sections
    from .methods import METHODS
    from .recipes import check_protocol_overrides

    method = params.get("method")
    validators = {name: (lambda section, name=name: validate(section, getattr(sections, f"{name.upper()}_SCHEMA"),
                                                            name))
                  for name in ("features", "linear", "knn")}
    if isinstance(method, str) and method in METHODS:
        validators[method] = METHODS[method].validate_section
    try:
        names = protocol_names(params)
    except ParamsError:
        return  # reported by the protocols section
    for protocol in names:
        try:
            check_protocol_overrides(params, protocol, validators)
        except ParamsError as err:
            yield err


def params_errors(params: Mapping[str, Any]) -> list[ParamsError]:
    """Every section's first error (an empty list: the whole file is valid)."""
    if not isinstance(params, Mapping):
        return [ParamsError("<file>", "params.yaml must hold a mapping of sections")]
    return list(_problems(params))


def validate_all(params: Mapping[str, Any]) -> None:
    """Raise the first :class:`ParamsError` of any section of ``params`` (see the module doc)."""
    if not isinstance(params, Mapping):
        raise ParamsError("<file>", "params.yaml must hold a mapping of sections")
    for err in _problems(params):
        raise err
