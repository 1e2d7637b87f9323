"""Skeleton layouts: the joints a dataset has, their bone tree, and the joints normalisation uses.

A :class:`SkeletonLayout` is everything the pipeline needs to know about a skeleton format:

- ``joint_names``: one name per joint, in the order of the joint axis (V) of the data;
- ``parents``: the 0-based parent of every joint. A root is its own parent (its "bone" is the
  zero vector, exactly as NTU's ``(21, 21)`` pair), so ``bone = joint[v] - joint[parents[v]]``
  keeps V bones for V joints (``skelrep.models.modalities.bone(x, layout.parents)``). Several
  roots (a forest) are allowed; at least one is required and there may be no cycle;
- ``center_joint``: subtracted per frame by the normalisation (NTU: SpineMid);
- ``align_x_pair``: ``joint[pair[0]] - joint[pair[1]]`` is rotated onto +x (NTU: ShoulderRight,
  ShoulderLeft), the convention of :func:`skelrep.data.normalize.pre_normalize`; may be None;
- ``align_z_pair``: ``joint[pair[1]] - joint[pair[0]]`` is rotated onto +z (NTU: SpineBase,
  SpineMid); None for a layout that cannot or should not be z-aligned (every 2-D layout);
- ``persons``: the most persons a sample holds (missing persons are zero-padded);
- ``channels``: 3 for x, y, z or 2 for image-plane x, y.

Layouts are loaded by :func:`load_layout` from a built-in name (``ntu25``, ``kinect_v1_20``,
``coco17``, shipped as YAML files in ``skelrep/data/layouts/``), a path to such a YAML file, or
the same mapping written inline in ``params.yaml``::

    name: my_rig
    joints:                      # in the order of the data's joint axis
      - {name: pelvis, parent: null}       # null: a root
      - {name: spine, parent: pelvis}      # parent by name (or by 0-based index)
      - ...
    center: spine                # joint name or 0-based index
    align_x: [r_shoulder, l_shoulder]      # or null
    align_z: [pelvis, spine]     # or null (always null for channels: 2)
    persons: 1                   # optional, default 1
    channels: 3

or a built-in with a few fields changed: ``{base: coco17, persons: 2}`` (``base`` accepts
``name``, ``center``, ``align_x``, ``align_z`` and ``persons``).

Built-in choices (documented in docs/custom_data.md):

- ``ntu25``: the NTU skeleton, defined once in ``layouts/ntu25.yaml`` (:mod:`skelrep.skeleton` derives its constants
  from it; rooted at SpineShoulder, NTU's bone list).
- ``kinect_v1_20``: the order of the Kinect SDK 1.x joint index (not every Kinect v1 dataset
  stores it: MSR Action3D's files do not), rooted at hip_center; its normalisation joints have
  the same indices as NTU's (spine, shoulders, hip_center).
- ``coco17``: 2-D COCO keypoints, the tree of pyskl/ST-GCN++'s ``coco`` graph (rooted at
  the nose: eyes <- nose, ears <- eyes, shoulders <- nose, hips <- shoulders, limbs outwards).
  COCO has no trunk joint, so the centre is ``left_shoulder`` (found in full-body *and*
  upper-body framings); x-alignment uses left_shoulder - right_shoulder, because image x grows
  to the right, where a performer facing the camera has the *left* shoulder.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import DataError, ParamsError

BUILTIN_LAYOUTS = ("ntu25", "kinect_v1_20", "coco17")

_SPEC_KEYS = ("name", "joints", "center", "align_x", "align_z", "persons", "channels")
_REQUIRED_SPEC_KEYS = ("name", "joints", "center", "channels")
_BASE_OVERRIDES = ("name", "center", "align_x", "align_z", "persons")
MAX_PERSONS = 64


def _int_like(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _coerce_int(value: Any) -> Any:
    """numpy ints -> int; anything else unchanged (validate() reports wrong types)."""
    return int(value) if _int_like(value) else value


def _coerce_pair(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_coerce_int(v) for v in value)
    return value


@dataclass(frozen=True)
class SkeletonLayout:
    """A skeleton format. Construct, then :meth:`validate` (``load_layout`` does both)."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    center_joint: int
    align_x_pair: tuple[int, int] | None
    align_z_pair: tuple[int, int] | None = None
    persons: int = 1
    channels: int = 3

    def __post_init__(self) -> None:
        # Lists from YAML and numpy integers become tuples / ints (hashable, comparable).
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "parents", tuple(_coerce_int(p) for p in self.parents))
        object.__setattr__(self, "center_joint", _coerce_int(self.center_joint))
        object.__setattr__(self, "align_x_pair", _coerce_pair(self.align_x_pair))
        object.__setattr__(self, "align_z_pair", _coerce_pair(self.align_z_pair))
        object.__setattr__(self, "persons", _coerce_int(self.persons))
        object.__setattr__(self, "channels", _coerce_int(self.channels))

    # ----------------------------------------------------------------- derived views

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def roots(self) -> tuple[int, ...]:
        return tuple(v for v, p in enumerate(self.parents) if p == v)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) for every joint, 0-based, roots included as (root, root)."""
        return tuple((v, p) for v, p in enumerate(self.parents))

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """The real bones (child, parent), 0-based, without the roots' self pairs."""
        return tuple((v, p) for v, p in enumerate(self.parents) if p != v)

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"layout {self.name!r} has no joint {name!r}") from None

    def with_persons(self, persons: int) -> SkeletonLayout:
        return dataclasses.replace(self, persons=persons).validate()

    def to_dict(self) -> dict:
        """The layout as a spec mapping (joints by name): ``load_layout(l.to_dict()) == l``."""
        names = self.joint_names

        def pair(p):
            return None if p is None else [names[p[0]], names[p[1]]]

        return {
            "name": self.name,
            "joints": [{"name": n, "parent": None if p == v else names[p]}
                       for v, (n, p) in enumerate(zip(names, self.parents, strict=True))],
            "center": names[self.center_joint],
            "align_x": pair(self.align_x_pair),
            "align_z": pair(self.align_z_pair),
            "persons": self.persons,
            "channels": self.channels,
        }

    # ----------------------------------------------------------------- validation

    def validate(self, prefix: str = "layout") -> SkeletonLayout:
        """Check the layout; raise :class:`ParamsError` naming the field (``layout.parents[5]``)."""
        _check(self, _Keys(prefix, spec_style=False))
        return self


class _Keys:
    """Dotted keys for error messages: dataclass fields, or the spec mapping's fields."""

    def __init__(self, prefix: str, spec_style: bool):
        self.prefix = prefix
        self.spec = spec_style

    def _k(self, tail: str) -> str:
        if not self.prefix:
            return tail
        return f"{self.prefix}{tail}" if tail.startswith("[") else f"{self.prefix}.{tail}"

    def field(self, name: str) -> str:
        spec_names = {"joint_names": "joints", "parents": "joints", "center_joint": "center",
                      "align_x_pair": "align_x", "align_z_pair": "align_z"}
        return self._k(spec_names.get(name, name) if self.spec else name)

    def joint_name(self, i: int) -> str:
        return self._k(f"joints[{i}].name" if self.spec else f"joint_names[{i}]")

    def parent(self, i: int) -> str:
        return self._k(f"joints[{i}].parent" if self.spec else f"parents[{i}]")

    def pair(self, field: str, k: int) -> str:
        return f"{self.field(field)}[{k}]"


def _check(layout: SkeletonLayout, keys: _Keys) -> None:
    if not isinstance(layout.name, str) or not layout.name.strip():
        raise ParamsError(keys.field("name"), f"got {layout.name!r}; expected a non-empty string")
    if layout.channels not in (2, 3) or not _int_like(layout.channels):
        raise ParamsError(keys.field("channels"), f"got {layout.channels!r}; allowed: 2 (image x, y) "
                          "or 3 (x, y, z)")
    if not _int_like(layout.persons) or not 1 <= layout.persons <= MAX_PERSONS:
        raise ParamsError(keys.field("persons"), f"got {layout.persons!r}; expected an integer in "
                          f"[1, {MAX_PERSONS}]")

    names = layout.joint_names
    if not names:
        raise ParamsError(keys.field("joint_names"), "the layout has no joints")
    first_seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(keys.joint_name(i), f"got {name!r}; expected a non-empty joint name")
        if name in first_seen:
            raise ParamsError(keys.joint_name(i), f"duplicate joint name {name!r} (also joint "
                              f"{first_seen[name]}); joint names must be unique")
        first_seen[name] = i

    num = len(names)
    parents = layout.parents
    if len(parents) != num:
        raise ParamsError(keys.field("parents"), f"has {len(parents)} entries for {num} joints; "
                          "give one parent per joint (a root is its own parent)")
    for v, p in enumerate(parents):
        if not _int_like(p):
            raise ParamsError(keys.parent(v), f"joint {v} ({names[v]!r}) has parent {p!r}; expected "
                              "a joint index")
        if not 0 <= p < num:
            raise ParamsError(keys.parent(v), f"joint {v} ({names[v]!r}) has parent {p}, which does "
                              f"not exist (joints are 0..{num - 1})")

    cycle = _find_cycle(parents)
    if not any(p == v for v, p in enumerate(parents)):
        raise ParamsError(keys.field("parents"), "no root joint: a root is its own parent (parent: "
                          "null in a spec); without one the parents form a cycle: "
                          + _describe_cycle(cycle, names))
    if cycle:
        raise ParamsError(keys.parent(min(cycle)), "the parents form a cycle (joint -> its parent): "
                          + _describe_cycle(cycle, names)
                          + " (following parents from every joint must reach a root)")

    _check_joint(layout.center_joint, num, names, keys.field("center_joint"), "center joint")
    for field in ("align_x_pair", "align_z_pair"):
        pair = getattr(layout, field)
        if pair is None:
            continue
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ParamsError(keys.field(field), f"got {pair!r}; expected two joints or null")
        for k, j in enumerate(pair):
            _check_joint(j, num, names, keys.pair(field, k), "alignment joint")
        if pair[0] == pair[1]:
            raise ParamsError(keys.field(field), f"both joints are {names[pair[0]]!r}; an alignment "
                              "vector needs two different joints")
    if layout.channels == 2 and layout.align_z_pair is not None:
        raise ParamsError(keys.field("align_z_pair"), "a 2-D layout (channels: 2) has no z axis to "
                          "align; use null")


def _check_joint(j: Any, num: int, names: Sequence[str], key: str, what: str) -> None:
    if not _int_like(j):
        raise ParamsError(key, f"got {j!r}; expected a joint index")
    if not 0 <= j < num:
        raise ParamsError(key, f"{what} {j} does not exist (joints are 0..{num - 1})")


def _find_cycle(parents: Sequence[int]) -> list[int]:
    """The joints of one cycle in the parent graph (in parent order), or [] if none."""
    state = [0] * len(parents)  # 0 unseen, 1 on the current path, 2 done
    for start in range(len(parents)):
        path: list[int] = []
        v = start
        while state[v] == 0:
            state[v] = 1
            path.append(v)
            p = parents[v]
            if p == v:
                break
            v = p
        else:
            if state[v] == 1:  # came back to the current path
                return path[path.index(v):]
        for u in path:
            state[u] = 2
    return []


def _describe_cycle(cycle: list[int], names: Sequence[str]) -> str:
    if not cycle:
        return "(none found)"
    chain = [f"{names[v]} ({v})" for v in cycle] + [f"{names[cycle[0]]} ({cycle[0]})"]
    return " -> ".join(chain)


# --------------------------------------------------------------------- roles

_HEAD_NAMES = ("head",)
_HIP_NAMES = ("hipcenter", "spinebase", "pelvis", "hips", "midhip", "hip")


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


@dataclass(frozen=True)
class LayoutRoles:
    """The joints the direction checks use, 0-based; None / () where the layout names none."""

    head: int | None
    hip: int | None
    legs: tuple[tuple[int, int], ...]  # (knee, foot)


def layout_roles(layout: SkeletonLayout) -> LayoutRoles:
    """The head, hip and (knee, foot) joints of a layout, found by joint name (case, ``_`` and
    digits ignored): the head is named ``head``; the hip ``hip_center`` / ``SpineBase`` /
    ``pelvis`` / ``hips`` / ``mid_hip`` / ``hip``; feet are the joints named ``*foot*`` (or,
    if none is, ``*ankle*``), each paired with its nearest ancestor named ``*knee*``."""
    keys = [_key(n) for n in layout.joint_names]

    def first(names):
        for wanted in names:
            if wanted in keys:
                return keys.index(wanted)
        return None

    feet = [v for v, k in enumerate(keys) if "foot" in k] or [v for v, k in enumerate(keys) if "ankle" in k]
    legs = []
    for foot in feet:
        v = foot
        while layout.parents[v] != v:
            v = layout.parents[v]
            if "knee" in keys[v]:
                legs.append((v, foot))
                break
    return LayoutRoles(first(_HEAD_NAMES), first(_HIP_NAMES), tuple(legs))


# --------------------------------------------------------------------- loading


def load_layout(spec: Any, key: str = "layout") -> SkeletonLayout:
    """A validated layout from a built-in name, a YAML path, a spec mapping or a layout.

    Errors in params.yaml values are :class:`ParamsError` naming the dotted key under ``key``
    (``generic.layout.joints[5].parent``); errors inside a YAML file are :class:`DataError`
    naming the file and the field (``rig.yaml: joints[5].parent: ...``).
    """
    if isinstance(spec, SkeletonLayout):
        return spec.validate(key)
    if isinstance(spec, Mapping):
        return _from_spec(spec, key)
    if isinstance(spec, Path):
        return _from_file(spec)
    if isinstance(spec, str) and spec:
        if spec in BUILTIN_LAYOUTS:
            return _builtin(spec)
        if spec.endswith((".yaml", ".yml")) or "/" in spec or Path(spec).is_file():
            if not Path(spec).is_file():
                raise ParamsError(key, f"layout file {spec!r} not found")
            return _from_file(Path(spec))
        raise ParamsError(key, f"unknown layout {spec!r}; built-in layouts: "
                          f"{', '.join(BUILTIN_LAYOUTS)}; or give the path of a .yaml layout file, "
                          "or a mapping (see docs/custom_data.md)")
    raise ParamsError(key, f"got {spec!r}; expected a built-in layout name "
                      f"({', '.join(BUILTIN_LAYOUTS)}), a .yaml path or a mapping")


def layout_yaml(layout: SkeletonLayout) -> str:
    """The layout as a YAML layout file (joints by name); :func:`load_layout` reads it back."""
    return yaml.safe_dump(layout.to_dict(), sort_keys=False, default_flow_style=None, width=100)


def layout_spec(value: Any, key: str) -> SkeletonLayout:
    """params validator (see :mod:`skelrep.schema`): a layout spec -> a validated layout."""
    return load_layout(value, key)


def _builtin(name: str) -> SkeletonLayout:
    text = resources.files("skelrep.data").joinpath("layouts", f"{name}.yaml").read_text("utf-8")
    return _from_yaml_text(text, f"skelrep/data/layouts/{name}.yaml", allow_base=False)


def _from_file(path: Path) -> SkeletonLayout:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "layout file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the layout file ({exc})") from None
    return _from_yaml_text(text, str(path), allow_base=True)


def _from_yaml_text(text: str, source: str, allow_base: bool) -> SkeletonLayout:
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(source, f"not valid YAML: {exc}") from None
    if not isinstance(spec, Mapping):
        raise DataError(source, "a layout file must hold a mapping (name, joints, center, ...)")
    if not allow_base and "base" in spec:
        raise DataError(source, "a built-in layout cannot have a base")
    try:
        return _from_spec(spec, "")
    except ParamsError as exc:
        raise DataError(source, f"{exc.key}: {exc.reason}") from None


def _from_spec(spec: Mapping, key: str) -> SkeletonLayout:
    keys = _Keys(key, spec_style=True)
    if "base" in spec:
        return _from_base(spec, key, keys)
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ParamsError(keys._k(str(unknown[0])), f"unknown key; allowed keys: {', '.join(_SPEC_KEYS)} "
                          "(or base plus overrides)")
    for required in _REQUIRED_SPEC_KEYS:
        if required not in spec:
            raise ParamsError(keys._k(required), "missing")
    joints = spec["joints"]
    if not isinstance(joints, (list, tuple)) or not joints:
        raise ParamsError(keys._k("joints"), f"got {joints!r}; expected a non-empty list of "
                          "{name, parent} mappings")
    names: list[Any] = []
    for i, joint in enumerate(joints):
        if not isinstance(joint, Mapping) or set(joint) != {"name", "parent"}:
            raise ParamsError(keys._k(f"joints[{i}]"), f"got {joint!r}; expected a mapping with "
                              "exactly the keys name and parent (parent: null for a root)")
        names.append(joint["name"])
    # Names must be unique before parents can be resolved by name.
    probe = SkeletonLayout(str(spec["name"]), tuple(names), tuple(range(len(names))), 0, None)
    index = _name_index(probe, keys)
    parents = []
    for i, joint in enumerate(joints):
        p = joint["parent"]
        parents.append(i if p is None else _resolve(p, index, keys.parent(i), "parent"))
    layout = SkeletonLayout(
        name=spec["name"], joint_names=tuple(names), parents=tuple(parents),
        center_joint=_resolve(spec["center"], index, keys._k("center"), "center joint"),
        align_x_pair=_resolve_pair(spec.get("align_x"), index, keys, "align_x"),
        align_z_pair=_resolve_pair(spec.get("align_z"), index, keys, "align_z"),
        persons=spec.get("persons", 1), channels=spec["channels"],
    )
    _check(layout, keys)
    return layout


def _from_base(spec: Mapping, key: str, keys: _Keys) -> SkeletonLayout:
    base = spec["base"]
    if base not in BUILTIN_LAYOUTS:
        raise ParamsError(keys._k("base"), f"got {base!r}; allowed: {', '.join(BUILTIN_LAYOUTS)}")
    unknown = sorted(set(spec) - {"base", *_BASE_OVERRIDES})
    if unknown:
        raise ParamsError(keys._k(str(unknown[0])), "cannot be changed on a built-in base; allowed "
                          f"with base: {', '.join(_BASE_OVERRIDES)} (define a full layout to change "
                          "joints or channels)")
    layout = _builtin(base)
    index = {n: i for i, n in enumerate(layout.joint_names)}
    changes: dict[str, Any] = {}
    if "name" in spec:
        changes["name"] = spec["name"]
    if "center" in spec:
        changes["center_joint"] = _resolve(spec["center"], index, keys._k("center"), "center joint")
    for field in ("align_x", "align_z"):
        if field in spec:
            changes[f"{field}_pair"] = _resolve_pair(spec[field], index, keys, field)
    if "persons" in spec:
        changes["persons"] = spec["persons"]
    layout = dataclasses.replace(layout, **changes)
    _check(layout, keys)
    return layout


def _name_index(probe: SkeletonLayout, keys: _Keys) -> dict[str, int]:
    seen: dict[str, int] = {}
    for i, name in enumerate(probe.joint_names):
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(keys.joint_name(i), f"got {name!r}; expected a non-empty joint name")
        if name in seen:
            raise ParamsError(keys.joint_name(i), f"duplicate joint name {name!r} (also joint "
                              f"{seen[name]}); joint names must be unique")
        seen[name] = i
    return seen


def _resolve(ref: Any, index: Mapping[str, int], key: str, what: str) -> Any:
    """A joint given by name or 0-based index -> index (range checked later by _check)."""
    if isinstance(ref, str):
        if ref not in index:
            raise ParamsError(key, f"{what} {ref!r} is not a joint name; joints: {', '.join(index)}")
        return index[ref]
    if _int_like(ref):
        return int(ref)
    raise ParamsError(key, f"got {ref!r}; expected a joint name or a 0-based joint index")


def _resolve_pair(value: Any, index: Mapping[str, int], keys: _Keys, field: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ParamsError(keys._k(field), f"got {value!r}; expected [joint, joint] or null")
    return tuple(_resolve(v, index, f"{keys._k(field)}[{k}]", "alignment joint")
                 for k, v in enumerate(value))


# --------------------------------------------------------------------- normalisation


def pre_normalize_layout(data: np.ndarray, layout: SkeletonLayout, *, z_align: bool,
                         x_align: bool = True, pad_null: bool = True, frames: int | None = None) -> np.ndarray:
    """:func:`~skelrep.data.normalize.pre_normalize` with the layout's joints, for 2-D and 3-D.

    ``data`` is (C, T, V, M) with C = ``layout.channels``. A 2-D sample is given a zero z
    channel for the rotation (which then stays in the image plane) and returned with C = 2.
    Asking for an alignment the layout has no joints for is a :class:`ParamsError`.
    """
    from .normalize import pre_normalize

    if z_align and layout.align_z_pair is None:
        raise ParamsError("preprocess.normalisation", f"z-alignment needs align_z joints, but layout "
                          f"{layout.name!r} has none (2-D or unaligned); use a normalisation "
                          "without z-align (umurl)")
    if x_align and layout.align_x_pair is None:
        raise ParamsError("preprocess.normalisation", f"x-alignment needs align_x joints, but layout "
                          f"{layout.name!r} has none")
    data = np.asarray(data)
    if data.shape[0] != layout.channels or data.shape[2] != layout.num_joints:
        raise ValueError(f"data is {data.shape} (C, T, V, M) but layout {layout.name!r} has "
                         f"C={layout.channels}, V={layout.num_joints}")
    if layout.channels == 2:
        data = np.concatenate([data, np.zeros_like(data[:1])], axis=0)
    out = pre_normalize(data, z_align=z_align, x_align=x_align, pad_null=pad_null, frames=frames,
                        center_joint=layout.center_joint,
                        z_pair=layout.align_z_pair or (0, 0),
                        x_pair=layout.align_x_pair or (0, 0))
    return out[: layout.channels]
