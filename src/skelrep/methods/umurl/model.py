"""UmURL: per-modality embeddings, early fusion, and one modality-agnostic
spatio-temporal transformer shared by joint, bone, motion and the fused input.

The official ``umurl.py`` has no initialisation code, so PyTorch module defaults (the only
``umurl.init`` option) are the official scheme. This module builds the model config from the
``umurl`` block, validated by ``schema.UMURL_SCHEMA`` (torch-free, every key required).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from torch import Tensor, nn

from skelrep.data.augment import AugmentConfig
from skelrep.errors import DataError
from skelrep.methods.umurl.defaults import PAPER
from skelrep.methods.umurl.schema import validate_section
from skelrep.models.components import (
    SinusoidalPositionalEncoding,
    SkeletonEmbedding,
    dense_feature,
    instance_feature,
    transformer_encoder,
)
from skelrep.models.encoder_file import load_encoder_file
from skelrep.models.modalities import MODALITIES, make_modality, skeleton_parents, spatial_tokens, temporal_tokens
from skelrep.models.projector import Projector
from skelrep.skeleton import NTU_NUM_JOINTS

# ---------------------------------------------------------------- config


@dataclass(frozen=True)
class UmURLEncoderConfig:
    hidden: int = PAPER["encoder"]["hidden"]
    heads: int = 1
    num_layers: int = 1
    ffn: int | None = None  # None: equal to hidden, as the official dim_feedforward
    t_pe_max_len: int = 200
    frames: int = PAPER["encoder"]["frames"]


@dataclass(frozen=True)
class UmURLProjConfig:
    dims: tuple[int, int, int] = tuple(PAPER["proj"]["dims"])  # widths of the three Linear layers
    bn: str = PAPER["proj"]["bn"]


@dataclass(frozen=True)
class UmURLLossConfig:
    w_consistency: float = 5.0
    vac_var_weight: float = 5.0
    vac_cov_weight: float = 1.0
    var_eps: float = 1e-4
    gather: bool = True
    fp32: bool = True


@dataclass(frozen=True)
class UmURLConfig:
    encoder: UmURLEncoderConfig = field(default_factory=UmURLEncoderConfig)
    proj: UmURLProjConfig = field(default_factory=UmURLProjConfig)
    loss: UmURLLossConfig = field(default_factory=UmURLLossConfig)
    aug: AugmentConfig = field(default_factory=AugmentConfig)
    train: dict[str, Any] = field(default_factory=dict)  # TRAIN_SCHEMA
    eval_input: str = "fused"
    init: str = "torch_default"


def validate_umurl_config(section: Any) -> UmURLConfig:
    """Validate the ``umurl`` params block: every key required (paper values: ``defaults.PAPER``).

    UmURL trains on all three modalities: ``train`` has no ``modality`` key. Raises ParamsError
    naming the dotted key (e.g. ``umurl.encoder.hidden``) and what is allowed.
    """
    v = validate_section(section)
    encoder = {**v["encoder"], "ffn": v["encoder"]["ffn"] or v["encoder"]["hidden"]}
    return UmURLConfig(encoder=UmURLEncoderConfig(**encoder),
                       proj=UmURLProjConfig(dims=tuple(v["proj"]["dims"]), bn=v["proj"]["bn"]),
                       loss=UmURLLossConfig(**v["loss"]), aug=AugmentConfig.from_values(v["aug"]),
                       train=v["train"], eval_input=v["eval_input"], init=v["init"])


# ---------------------------------------------------------------- model


class EmbeddingFusion(nn.Module):
    """``Emb_Fusion``: average the modality embeddings, then one bias-free Linear per stream."""

    def __init__(self, hidden: int):
        super().__init__()
        self.temporal = nn.Linear(hidden, hidden, bias=False)
        self.spatial = nn.Linear(hidden, hidden, bias=False)

    def forward(self, embeddings: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        # sum / count, the official (e_j + e_b + e_m) / 3
        e_t = sum(t for t, _ in embeddings) / len(embeddings)
        e_s = sum(s for _, s in embeddings) / len(embeddings)
        return self.temporal(e_t), self.spatial(e_s)


class ModalityAgnosticEncoder(nn.Module):
    """``ST_TR``: sinusoidal PE added once, then the temporal transformer; the spatial
    transformer has no PE, so joint identity reaches it only through token content."""

    def __init__(self, hidden: int, heads: int, layers: int, ffn: int, t_pe_max_len: int):
        super().__init__()
        self.temporal_pe = SinusoidalPositionalEncoding(hidden, t_pe_max_len)
        self.t_encoder = transformer_encoder(hidden, heads, ffn, layers)
        self.s_encoder = transformer_encoder(hidden, heads, ffn, layers)

    def forward(self, e_t: Tensor, e_s: Tensor) -> tuple[Tensor, Tensor]:
        return self.t_encoder(self.temporal_pe(e_t)), self.s_encoder(e_s)


class UmURLBackbone(nn.Module):
    """``BaseEncoder``: three modality embeddings, the fusion and the shared encoder.

    Every input is a **joint** clip ``(N, C, T, V, M)``; bone and motion are derived here.
    ``modality=None`` selects the fused path (official ``mm_forward``, the downstream
    representation y_u); a modality name selects its uni-modal path (``uni_forward``).
    ``parents`` gives the bone topology; it defaults to NTU's for 25 joints.
    """

    def __init__(
        self,
        *,
        frames: int = 64,
        joints: int = NTU_NUM_JOINTS,
        persons: int = 2,
        channels: int = 3,
        hidden: int = 1024,
        heads: int = 1,
        layers: int = 1,
        ffn: int | None = None,
        t_pe_max_len: int = 200,
        parents: Sequence[int] | None = None,
    ):
        super().__init__()
        if frames > t_pe_max_len:
            raise ValueError(f"frames={frames} exceeds t_pe_max_len={t_pe_max_len}")
        ffn = hidden if ffn is None else ffn
        self.frames, self.joints, self.persons, self.channels, self.hidden = frames, joints, persons, channels, hidden
        self.parents = skeleton_parents(joints, parents)
        self._config = dict(frames=frames, joints=joints, persons=persons, channels=channels, hidden=hidden,
                            heads=heads, layers=layers, ffn=ffn, t_pe_max_len=t_pe_max_len,
                            parents=list(self.parents))
        self.embed = nn.ModuleDict(
            {m: SkeletonEmbedding(persons * joints * channels, frames * channels, hidden) for m in MODALITIES}
        )
        self.fusion = EmbeddingFusion(hidden)
        self.encoder = ModalityAgnosticEncoder(hidden, heads, layers, ffn, t_pe_max_len)

    @property
    def out_dim(self) -> int:
        """Size of the pooled feature (and of the dense per-frame feature)."""
        return 2 * self.hidden

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (plain data) that rebuild this backbone."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}

    def _embed(self, x: Tensor, modality: str) -> tuple[Tensor, Tensor]:
        clip = make_modality(x, modality, self.parents)
        return self.embed[modality](temporal_tokens(clip), spatial_tokens(clip))

    def dense(self, x: Tensor, modality: str | None = None) -> tuple[Tensor, Tensor]:
        """Encoder outputs ``(y_t (N, T, hidden), y_s (N, M*V, hidden))`` of a joint clip."""
        expected = (self.channels, self.frames, self.joints, self.persons)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected a clip shaped (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if modality is None:
            e_t, e_s = self.fusion([self._embed(x, m) for m in MODALITIES])
        elif modality in MODALITIES:
            e_t, e_s = self._embed(x, modality)
        else:
            raise ValueError(f"unknown modality {modality!r}; expected None (fused) or one of {', '.join(MODALITIES)}")
        return self.encoder(e_t, e_s)

    def encode(self, x: Tensor, modality: str | None = None) -> Tensor:
        """Max-pooled streams, concatenated: ``(N, 2*hidden)``; fused y_u when ``modality`` is None."""
        return instance_feature(*self.dense(x, modality))

    def mm_forward(self, x: Tensor) -> Tensor:
        """y_u: all three modalities of ``x`` fused at the embedding level, one encoder pass."""
        return self.encode(x)

    def uni_forward(self, x: Tensor, modality: str) -> Tensor:
        """y_j, y_b or y_m: the ``modality`` of ``x`` through its own embedding and the shared encoder."""
        return self.encode(x, modality)

    def encode_dense(self, x: Tensor, modality: str | None = None, dense_spatial: str = "pool_tokens") -> Tensor:
        """Per-frame features ``(N, T, 2*hidden)`` (labelled extension; the official model has none): temporal tokens
        concatenated with the spatial tokens average-pooled M*V -> T along the token axis."""
        return dense_feature(*self.dense(x, modality), dense_spatial=dense_spatial)


def umurl_backbone_kwargs(
    encoder: UmURLEncoderConfig, *, joints: int = NTU_NUM_JOINTS, persons: int = 2, channels: int = 3,
    parents: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``UmURLBackbone`` arguments from the encoder section and the data's skeleton layout."""
    return dict(frames=encoder.frames, joints=joints, persons=persons, channels=channels, hidden=encoder.hidden,
                heads=encoder.heads, layers=encoder.num_layers, ffn=encoder.ffn, t_pe_max_len=encoder.t_pe_max_len,
                parents=parents)


class UmURLOutput(NamedTuple):
    """The six projector outputs, in the official order."""

    z_j: Tensor
    z_b: Tensor
    z_m: Tensor
    z_uj: Tensor
    z_ub: Tensor
    z_um: Tensor

    @property
    def uni(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.z_j, self.z_b, self.z_m

    @property
    def fused(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.z_uj, self.z_ub, self.z_um


class UmURLModel(nn.Module):
    """Backbone + the modality-aware projectors P_joint, P_bone, P_motion."""

    def __init__(
        self,
        encoder: UmURLEncoderConfig | None = None,
        proj: UmURLProjConfig | None = None,
        *,
        joints: int = NTU_NUM_JOINTS,
        persons: int = 2,
        channels: int = 3,
        parents: Sequence[int] | None = None,
    ):
        super().__init__()
        encoder = encoder or UmURLEncoderConfig()
        proj = proj or UmURLProjConfig()
        self.backbone = UmURLBackbone(
            **umurl_backbone_kwargs(encoder, joints=joints, persons=persons, channels=channels, parents=parents)
        )
        hidden, _, out = proj.dims
        self.projectors = nn.ModuleDict({m: Projector(self.backbone.out_dim, hidden, out) for m in MODALITIES})

    def forward(self, joint_view: Tensor, bone_view: Tensor, motion_view: Tensor, fused_view: Tensor) -> UmURLOutput:
        """Four augmented joint clips -> ``(z_j, z_b, z_m, z_uj, z_ub, z_um)``.

        The first three views feed the uni-modal paths of joint, bone and motion; all three
        modalities of ``fused_view`` feed the fused path, whose y_u each projector decomposes.
        The fused path runs first, as officially, so BN running statistics evolve the same.
        """
        y_u = self.backbone.mm_forward(fused_view)
        fused = [self.projectors[m](y_u) for m in MODALITIES]
        uni = [self.projectors[m](self.backbone.uni_forward(view, m))
               for m, view in zip(MODALITIES, (joint_view, bone_view, motion_view), strict=True)]
        return UmURLOutput(*uni, *fused)


def load_umurl_encoder(path: str | os.PathLike) -> UmURLBackbone:
    """Rebuild a UmURL backbone from an encoder file and load its weights strictly."""
    payload = load_encoder_file(path)
    if payload["method"] != "umurl":
        raise DataError(path, f"encoder file is for method {payload['method']!r}, not 'umurl'")
    backbone = UmURLBackbone(**payload["config"])
    backbone.load_state_dict(payload["state_dict"])
    return backbone
