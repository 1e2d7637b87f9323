"""Profiles: a method's recipe applied to params.yaml as ``dvc exp run -S`` assignments, and
what every stage of a protocol then runs (``skelrep profile``, ``skelrep recipe``).

The committed params.yaml is the default (CPU) profile. ``paper`` is each method's official
recipe (:class:`skelrep.recipes.Recipe`, from the method's ``defaults.py``):
:func:`profile_assignments` sets the method, its section, the other sections the recipe names
and, per protocol, the protocol's own settings (emptied first, then the benchmark's values). One
``dvc exp run $(skelrep profile paper)`` runs the recipe on every protocol; a ``-S`` of the
user's after it wins (DVC applies them in order), on the same key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ParamsError
from .recipes import STAGE_SECTIONS, Recipe, flatten, protocol_entry, protocol_params

PROFILES = ("paper",)  # the named profiles besides the committed params.yaml (the default)

# The fine-tuning protocols of the paper profile, the same for every method: none of USDRL, UmURL
# and ISC states a recipe (evaluation.md §4-5), so the released reference, CMD's semi-supervised
# and transfer scripts (derived from ISC): SGD lr 0.01, momentum 0.9, no weight decay, batch 64,
# 80 epochs, x0.1 at 50 and 70, test every 5 epochs, train on a random crop U(0.5, 1) of at least
# 64 frames; label fractions 1, 5, 10 and 20 %, five subsets each; the transfer to PKU-MMD II from
# NTU-60 and NTU-120 (their cross-subject encoders). The test input stays the method's own
# (`auto`, as its linear probe; CMD's is ISC's centre 95 %). A method whose paper states its own
# overrides these in its defaults.py (PAPER_SECTIONS["finetune"]).
PAPER_FINETUNE = {
    "fractions": [0.01, 0.05, 0.1, 0.2], "full": True, "subset_seeds": [0, 1, 2, 3, 4], "random_init": True,
    "freeze_encoder": False, "epochs": 80, "min_steps": 0, "lr": 0.01, "milestones": [50, 70], "batch_size": 64,
    "momentum": 0.9, "weight_decay": 0.0, "train_crop": "random", "random_scale": [0.5, 1.0],
    "random_min_frames": 64, "test_crop": "auto", "eval_every": 5,
}
PAPER_TRANSFERS = (("ntu60-xsub", "pku2-xsub"), ("ntu120-xsub", "pku2-xsub"))  # (source, target)

# PKU-MMD I detection as the papers ran it (evaluation.md §6), the same for every method: protocol W
# with SSD's config (SGD nesterov, lr 0.01, x0.1 at 40, 60 epochs, batch 64, 16 windows per video
# and epoch, every test frame; momentum 0.9 and no weight decay: skelrep's, not recorded), protocol
# D with the TPAMI code's effective settings (the whole network from the NTU-60 xsub encoder, SGD
# 0.9, lr 0.005, batch 512, 150 epochs at a constant lr; sliding 64-frame clips every 32 frames),
# next to skelrep's frozen dense head (its settings unchanged).
PAPER_DETECTION = {
    "protocols": ["dense", "window", "dense_finetune"],
    "window": {"proposals": "ssd", "d_choices": [3, 4, 5], "frames": 64, "samples_per_video": 16, "draws": 60,
               "epochs": 60, "lr": 0.01, "milestones": [40], "batch_size": 64, "momentum": 0.9, "weight_decay": 0.0,
               "nesterov": True, "test_stride": 1},
    "dense_finetune": {"proposals": "thr", "finetune": True, "train_clips": "sliding", "train_stride": 32,
                       "epochs": 150, "lr": 0.005, "batch_size": 512, "momentum": 0.9, "weight_decay": 0.0},
}
PAPER_DETECTION_INIT = "ntu60-xsub"  # protocol D starts from this protocol's encoder, where params.yaml has it


def recipe_for(profile: str, method: str, section: Mapping[str, Any] | None) -> Recipe:
    """The ``profile`` recipe of ``method`` (its ``params.yaml`` section picks variants, e.g.
    USDRL's STTR encoder)."""
    from .methods import METHODS

    if profile not in PROFILES:
        raise ParamsError("profile", f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)} "
                          "(the committed params.yaml is the default)")
    if method not in METHODS:
        raise ParamsError("method", f"got {method!r}; allowed: {', '.join(METHODS)}")
    return METHODS[method].paper_recipe(section or {})


def fine_tuning_assignments(params: Mapping[str, Any], protocols: Iterable[str]) -> list[tuple[str, Any]]:
    """The paper profile's fine-tuning protocols: :data:`PAPER_FINETUNE`, ``finetune@`` on every
    protocol of ``protocols`` and the :data:`PAPER_TRANSFERS` whose protocols params.yaml has."""
    from .data.protocols import resolve_protocol

    out: list[tuple[str, Any]] = [(f"finetune.{k}", v) for k, v in PAPER_FINETUNE.items()]
    out.append(("finetune.protocols", {}))
    out += [(f"finetune.protocols.{p}.dataset", resolve_protocol(params, p).dataset) for p in protocols]
    out.append(("transfer", {}))
    for source, target in PAPER_TRANSFERS:
        if source in protocols and target in protocols:
            name = f"{source}-to-{target}"
            out += [(f"transfer.{name}.source", source),
                    (f"transfer.{name}.source_dataset", resolve_protocol(params, source).dataset),
                    (f"transfer.{name}.target", target),
                    (f"transfer.{name}.target_dataset", resolve_protocol(params, target).dataset)]
    return out


def detection_assignments(protocols: Iterable[str]) -> list[tuple[str, Any]]:
    """The paper profile's detection protocols: :data:`PAPER_DETECTION`, and protocol D from
    :data:`PAPER_DETECTION_INIT`'s encoder when ``protocols`` has it."""
    out = [(f"detection.{k}", v) for k, v in flatten(PAPER_DETECTION).items()]
    if PAPER_DETECTION_INIT in protocols:
        out.append(("detection.dense_finetune.init_from", PAPER_DETECTION_INIT))
    return out


def profile_assignments(profile: str, params: Mapping[str, Any], method: str | None = None,
                        protocols: Iterable[str] | None = None) -> list[tuple[str, Any]]:
    """The ``(dotted key, value)`` assignments of ``profile`` for ``method`` (default: the
    params' method), in order: the method, its section, the fine-tuning protocols on every
    protocol (:func:`fine_tuning_assignments`) and the other sections the recipe sets, then per
    protocol: its four entries emptied, then the recipe's values for that benchmark. A key
    ending in a name absent from params.yaml is created (``++`` in ``-S``)."""
    from .data.protocols import protocol_names

    method = method or params.get("method")
    recipe = recipe_for(profile, method, (params.get(method) if isinstance(method, str) else None))
    protocols = tuple(protocols if protocols is not None else protocol_names(params))
    out: list[tuple[str, Any]] = [("method", method)]
    out += [(f"{method}.{k}", v) for k, v in flatten(recipe.method).items()]
    out += fine_tuning_assignments(params, protocols)
    out += detection_assignments(protocols)
    out += [(k, v) for k, v in flatten(recipe.sections).items()]
    for protocol in protocols:
        own = recipe.protocols.get(protocol, {})
        for stage in STAGE_SECTIONS:
            out.append((f"protocols.{protocol}.{stage}", {}))
            out += [(f"protocols.{protocol}.{stage}.{k}", v) for k, v in flatten(own.get(stage, {})).items()]
    return copy.deepcopy(out)


def apply_assignments(params: Mapping[str, Any], assignments: Iterable[tuple[str, Any]]) -> dict:
    """A copy of ``params`` with the assignments made in order, as ``dvc exp run -S`` makes them."""
    out = copy.deepcopy(dict(params))
    for dotted, value in assignments:
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = copy.deepcopy(value)
    return out


def set_arguments(params: Mapping[str, Any], assignments: Iterable[tuple[str, Any]]) -> list[str]:
    """``-S`` arguments for ``dvc exp run`` in DVC's (Hydra) override grammar: ``key=value`` for
    a key params.yaml has, ``++key=value`` (add or override) for one it gets."""
    current = copy.deepcopy(dict(params))
    args: list[str] = []
    for dotted, value in assignments:
        exists = _has(current, dotted)
        args += ["-S", f"{'' if exists else '++'}{dotted}={_hydra(value)}"]
        current = apply_assignments(current, [(dotted, value)])
    return args


def _has(params: Mapping[str, Any], dotted: str) -> bool:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _hydra(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_hydra(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------ resolved settings

PARAMS_FILE = "params.yaml"


def assigned_params(params: Mapping[str, Any], *, profile: str | None = None, method: str | None = None,
                    sets: Iterable[tuple[str, Any]] = ()) -> tuple[dict, dict[str, str]]:
    """params.yaml after ``-S method=...``, a profile's assignments and the user's ``sets``, as
    ``dvc exp run`` would write it, and the source of every key they set."""
    from .data.protocols import protocol_names

    source: dict[str, str] = {}
    current = copy.deepcopy(dict(params))
    if method is not None:
        current = apply_assignments(current, [("method", method)])
        source["method"] = "-S"
    method = current.get("method")
    if profile is not None:
        assignments = profile_assignments(profile, current, method)
        common = fine_tuning_assignments(current, protocol_names(current))  # every method's
        detection = detection_assignments(protocol_names(current))
        current = apply_assignments(current, assignments)
        for key, value in assignments:
            if key == "method" or value == {}:
                continue
            where = key.split(".")[1] if key.startswith("protocols.") else None
            owner = ("CMD fine-tuning, every method" if (key, value) in common else
                     "detection as the papers ran it, every method" if (key, value) in detection else method)
            source[key] = f"{profile} recipe ({owner}{', ' + where if where else ''})"
    for key, value in sets:
        current = apply_assignments(current, [(key, value)])
        source[key] = "-S"
    return current, source


def resolved_settings(params: Mapping[str, Any], protocol: str, *, profile: str | None = None,
                      method: str | None = None, sets: Iterable[tuple[str, Any]] = ()
                      ) -> dict[str, dict[str, tuple[Any, str]]]:
    """What each stage of ``protocol`` runs, each leaf with where it came from.

    ``params`` is params.yaml; ``method`` selects another method (as ``-S method=...``);
    ``profile`` applies a profile's assignments (as ``dvc exp run $(skelrep profile ...)``);
    ``sets`` are the user's own ``-S`` assignments, made last (:func:`assigned_params`, then
    :func:`stage_settings`).
    """
    current, source = assigned_params(params, profile=profile, method=method, sets=sets)
    return stage_settings(current, source, protocol)


def stage_settings(params: Mapping[str, Any], source: Mapping[str, str], protocol: str
                   ) -> dict[str, dict[str, tuple[Any, str]]]:
    """``{stage: {dotted key: (value, source)}}`` of ``protocol`` in already assigned ``params``
    (``source``: who set which key, from :func:`assigned_params`), for the stages ``preprocess``
    (with ``pku`` for PKU-MMD data), ``pretrain`` (the method's section), ``features``, ``linear``,
    ``knn``, on a dataset with detection videos ``detect``, ``finetune`` when ``finetune.protocols``
    lists it, and ``transfer@<name>`` for each transfer from it (recipe: ``finetune``); sources: ``params.yaml``,
    ``params.yaml: protocols.<p>``, ``<profile> recipe (<method>)``, ``<profile> recipe (<method>,
    <p>)``, ``-S``."""
    from .catalog import DATASETS
    from .data.protocols import resolve_protocol

    spec = resolve_protocol(params, protocol)
    entry = protocol_entry(params, protocol)
    resolved = protocol_params(params, protocol)

    def leaves(section: str, stage_key: str | None) -> dict[str, tuple[Any, str]]:
        own = flatten(entry.get(stage_key) or {}) if stage_key else {}
        out = {}
        for key, value in flatten(resolved[section]).items():
            if key in own:
                full = f"protocols.{protocol}.{stage_key}.{key}"
                out[key] = (value, source.get(full, f"{PARAMS_FILE}: protocols.{protocol}"))
            else:
                out[key] = (value, source.get(f"{section}.{key}", PARAMS_FILE))
        return out

    builtin = DATASETS.get(spec.dataset)
    stages = {"preprocess": leaves("preprocess", None)}
    if builtin is not None and builtin.format == "pku":
        stages["preprocess"].update({f"pku.{k}": v for k, v in leaves("pku", None).items()})
    stages["pretrain"] = leaves(params["method"], "pretrain")
    for stage in ("features", "linear", "knn"):
        stages[stage] = leaves(stage, stage)
    if builtin is not None and builtin.detection:
        stages["detect"] = leaves("detection", None)
    if protocol in ((resolved.get("finetune") or {}).get("protocols") or {}):  # finetune@<protocol>
        stages["finetune"] = {k: v for k, v in leaves("finetune", None).items() if not k.startswith("protocols.")}
    for name, entry in (resolved.get("transfer") or {}).items():  # transfer@<name> of this protocol's encoder
        if isinstance(entry, Mapping) and entry.get("source") == protocol:
            stages[f"transfer@{name}"] = {k: (v, source.get(f"transfer.{name}.{k}", PARAMS_FILE))
                                          for k, v in entry.items()}
    return stages


def render_settings(stages: Mapping[str, Mapping[str, tuple[Any, str]]], header: str = "") -> str:
    """``resolved_settings`` as YAML, one top-level section per stage, each value annotated with
    its source."""
    import yaml

    lines = [f"# {line}" for line in header.splitlines()]
    for stage, values in stages.items():
        lines.append(f"{stage}:")
        opened: list[str] = []
        for dotted, (value, where) in values.items():
            *parents, leaf = dotted.split(".")
            common = 0
            while common < min(len(opened), len(parents)) and opened[common] == parents[common]:
                common += 1
            for depth in range(common, len(parents)):
                lines.append("  " * (depth + 1) + f"{parents[depth]}:")
            opened = parents
            text = yaml.safe_dump([value], default_flow_style=True, width=1000).strip()[1:-1]  # one line
            lines.append("  " * (len(parents) + 1) + f"{leaf}: {text}  # {where}")
    return "\n".join(lines) + "\n"
