"""The method protocol: everything the pipeline knows about a pretraining method, in one class.

A method is one package under ``skelrep/methods/`` registered by one line in
``skelrep.methods.METHODS`` (docs/adding_a_method.md). It has two halves:

- :class:`MethodInfo`, declared in the package's ``__init__`` and importable without torch:
  what the method *is*. Its display label (benchmark tables, MLflow tags, ``skelrep compare``),
  its name in the published-results CSV, its official downstream inputs (the linear probe's
  train input and the test/KNN input that ``features.train_crop: auto`` and ``features.test_crop:
  auto`` take, :class:`DownstreamCrops`), its paper values (the ``paper`` profile and the benchmark's
  paper size, from the package's ``defaults.py``), and how its ``params.yaml`` section names
  a variant, an input stream and the identifying MLflow params; and its section's schema
  (``schema``, the package's ``schema.py``: ``validate_section``). The report, ``skelrep
  profile`` and the validation of ``params.yaml`` read these without loading torch.
- :class:`Method`, implemented in the package's ``method.py`` as a subclass of its
  ``MethodInfo``: what the method *does*. The constructor validates the section (its schema),
  ``build_model`` builds the pretraining model, ``training_loss`` is one step's loss,
  ``encoder_payload`` is the encoder file and ``encoder`` the frozen feature encoder that the
  evaluation stages rebuild from it. ``MethodInfo.load()`` imports it.

So every per-method fact hangs off the method's class (``USDRL.label``,
``USDRL.downstream_crop``, ``USDRL.encoder``), and nothing outside the method's folder
lists methods but the registry.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..recipes import Recipe

if TYPE_CHECKING:  # annotations only: this module (the torch-free half) never loads torch
    import torch
    from torch import nn

    from ..training.distributed import DistInfo


def resolve(path: str) -> Any:
    """The object named by ``"package.module:Name"``, imported."""
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"expected 'module:Name', got {path!r}")
    return getattr(import_module(module), name)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys, in order: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


CROPS = ("whole", "center", "random")


@dataclass(frozen=True)
class DownstreamInput:
    """One input of the frozen encoder downstream: a crop of the valid sequence (``num_frame``
    frames), resampled to the clip length by linear interpolation (``skelrep.data.augment``).

    - ``whole``: frames 0..n-1 (``ratio`` 1).
    - ``center``: the centre ``ratio`` of the sequence, with the official arithmetic: start
      int((1 - ratio) * n / 2), length n - 2 * start (``augment.center_crop_window``).
    - ``random``: the official random crop, s ~ U(``scale``), length clamp(floor(n * s),
      ``min_frames``, n), uniform start (``augment.random_crop_windows``); a train input only.
    """

    crop: str = "whole"
    ratio: float = 1.0
    scale: tuple[float, float] | None = None  # random only
    min_frames: int | None = None  # random only

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if not 0.0 < self.ratio <= 1.0 or (self.crop != "center" and self.ratio != 1.0):
            raise ValueError(f"ratio {self.ratio} must lie in (0, 1] and be 1.0 unless crop is 'center'")
        if (self.crop == "random") != (self.scale is not None and self.min_frames is not None):
            raise ValueError("scale and min_frames are given for, and only for, crop 'random'")
        if self.scale is not None and not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1, got {self.scale}")
        if self.min_frames is not None and self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames}")

    @property
    def deterministic(self) -> bool:
        return self.crop != "random"

    def describe(self) -> str:
        """E.g. ``whole``, ``centre 95 %``, ``random U(0.5, 1.0), min 64 frames``."""
        if self.crop == "center":
            return f"centre {100 * self.ratio:g} %"
        if self.crop == "random":
            return f"random U({self.scale[0]}, {self.scale[1]}), min {self.min_frames} frames"
        return "whole"


WHOLE = DownstreamInput("whole")


@dataclass(frozen=True)
class DownstreamCrops:
    """A method's official downstream inputs: ``train``, the linear probe's train input; ``test``,
    its test input, which KNN also uses for both gallery (train split) and queries (test split)."""

    train: DownstreamInput = WHOLE
    test: DownstreamInput = WHOLE

    def __post_init__(self) -> None:
        if not self.test.deterministic:
            raise ValueError("the test input must be deterministic (whole or center)")


class FeatureEncoder(Protocol):
    """A frozen encoder as the evaluation stages use it (built from an encoder file)."""

    method: str  # the registry name, set by ``skelrep.methods.build_encoder``
    feature_dim: int
    dense_dim: int  # 0: no per-frame features
    frames: int  # clip length the encoder expects

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        """(N, C, frames, V, M) joint clips -> (N, feature_dim) global features."""

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        """(N, C, frames, V, M) joint clips -> (N, frames, dense_dim) per-frame features."""


class MethodInfo:
    """What a method is: class attributes and class methods, no torch (see the module doc).

    The ``section`` argument of the class methods is the method's ``params.yaml`` section as
    written (not validated: the report describes recorded runs with it).
    """

    name: ClassVar[str]  # the registry key and the params.yaml section
    label: ClassVar[str]  # display name: benchmark tables, MLflow ``variant`` rows, compare
    published_as: ClassVar[str | None] = None  # its ``method`` in published_results.csv (None: no rows)
    # the official downstream inputs (the linear probe's train input; its test input, also KNN's):
    # what ``features.train_crop: auto`` and ``features.test_crop: auto`` use
    downstream_crop: ClassVar[DownstreamCrops] = DownstreamCrops(train=WHOLE, test=WHOLE)
    # the paper recipe (the method's defaults.py): the values a GPU run sets over the committed
    # CPU section, nested like the section; ``skelrep profile paper`` and the benchmark read it
    paper: ClassVar[Mapping[str, Any]] = {}
    paper_source: ClassVar[str] = ""  # where the paper values come from (the benchmark prints it)
    # the rest of the paper recipe (defaults.py too): other params sections it sets (its
    # preprocessing variant, downstream evaluation, ...) and its values per benchmark protocol
    # ({"pku2-xsub": {"pretrain": {...}, "linear": {...}}}); see skelrep.recipes
    paper_sections: ClassVar[Mapping[str, Any]] = {}
    paper_protocols: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    implementation: ClassVar[str]  # "package.module:Class" of its ``Method``
    # "package.module:function" validating its section, torch-free (the package's ``schema.py``)
    schema: ClassVar[str]

    @classmethod
    def validate_section(cls, section: Any) -> dict[str, Any]:
        """The method's ``params.yaml`` section validated by its schema (no torch): the values,
        or ``ParamsError`` naming the dotted key and what is allowed. The ``Method``
        constructor validates with the same schema."""
        return resolve(cls.schema)(section)

    @classmethod
    def load(cls) -> type[Method]:
        """The implementation (imports torch and the method's model code)."""
        impl = resolve(cls.implementation)
        if not (isinstance(impl, type) and issubclass(impl, cls) and issubclass(impl, Method)):
            raise TypeError(f"{cls.implementation} must be a subclass of {cls.__name__} and of Method")
        return impl

    @classmethod
    def paper_overrides(cls) -> dict[str, Any]:
        """The paper values as dotted keys of the section, e.g. ``{"encoder.hidden": 1024}``."""
        return flatten(copy.deepcopy(cls.paper))

    @classmethod
    def paper_recipe(cls, section: Mapping[str, Any]) -> Recipe:
        """The official recipe (``skelrep profile paper``): the section's paper values, the other
        sections and the per-benchmark values. ``section`` (the current params.yaml section)
        lets a method pick a variant's recipe (USDRL's STTR encoder)."""
        return Recipe(cls.paper_source, copy.deepcopy(cls.paper), copy.deepcopy(cls.paper_sections),
                      copy.deepcopy(cls.paper_protocols))

    @classmethod
    def input_modality(cls, section: Mapping[str, Any] | None) -> str | None:
        """The input stream the section trains on (joint, bone, motion), None if the method has
        no single stream: ``train.modality`` unless a method says otherwise."""
        return _mapping(_mapping(section).get("train")).get("modality")

    @classmethod
    def without_input_modality(cls, section: Any) -> Any:
        """A copy of the section with the input stream left out: runs differing only in it
        (the streams of a late fusion) share the MLflow ``skelrep.stream_key``."""
        section = copy.deepcopy(section)
        train = section.get("train") if isinstance(section, dict) else None
        if isinstance(train, dict):
            train.pop("modality", None)
        return section

    @classmethod
    def variant(cls, section: Mapping[str, Any] | None) -> str:
        """What distinguishes the section among the method's published variants, e.g.
        "DSTE, joint"; by default its input stream."""
        return ", ".join(str(p) for p in cls._variant_parts(_mapping(section)) if p)

    @classmethod
    def _variant_parts(cls, section: Mapping[str, Any]) -> list[Any]:
        return [cls.input_modality(section)]

    @classmethod
    def identifying_params(cls, section: Mapping[str, Any] | None) -> dict[str, Any]:
        """A few params (keys relative to the section) that MLflow shows for every run of the
        method, next to ``method`` and the data source; None values are left out."""
        return {"modality": cls.input_modality(section)}


class Method(MethodInfo):
    """What a method does (torch). A method's ``method.py`` subclasses its ``MethodInfo`` and
    this class; the generic pretraining loop, the stages and the benchmark use only this."""

    encoder: ClassVar[type]  # its FeatureEncoder class, constructed from an encoder-file payload
    cfg: Any  # the validated section
    train_cfg: dict  # the validated ``<name>.train`` block (skelrep.training.schema.TRAIN_SCHEMA)
    frames: int  # clip length of the training views
    sync_bn: bool  # convert BatchNorm to SyncBatchNorm under DDP

    def __init__(self, section: Mapping[str, Any]):
        """Validate the method's section (its schema, :meth:`MethodInfo.validate_section`): raise
        ``ParamsError`` naming the dotted key and what is allowed."""
        raise NotImplementedError

    def build_model(self, channels: int, joints: int, persons: int,
                    parents: Sequence[int] | None = None) -> nn.Module:
        """The full pretraining model (backbone + heads) for the data's skeleton: C channels,
        V joints, M persons and the bone tree ``parents`` (its layout's; None: NTU's 25 joints).
        Built under ``skelrep.models.init.portable_init``: module construction order is the
        random-init order."""
        raise NotImplementedError

    def training_loss(self, model: nn.Module, x: torch.Tensor, num_frames: torch.Tensor,
                      generator: torch.Generator, dist: DistInfo) -> dict[str, torch.Tensor]:
        """Loss terms for one batch of raw (N, C, T_max, V, M) sequences; key 'total' is optimised."""
        raise NotImplementedError

    def encoder_payload(self, model: nn.Module) -> dict:
        """Backbone-only content of the encoder file (method, arch, config, state_dict, extra);
        ``encoder(payload)`` rebuilds the frozen encoder from it."""
        raise NotImplementedError

    @property
    def log_params(self) -> dict:
        """The model params logged to MLflow as ``<name>.<key>`` by the pretrain stage."""
        raise NotImplementedError
