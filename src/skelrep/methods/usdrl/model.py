"""The USDRL pretraining model (backbone + three projectors) and its ``usdrl`` params block.

The block has the sections ``encoder``, ``proj``, ``loss``, ``aug`` and ``train``, every key
required (``schema.USDRL_SCHEMA``, torch-free; the paper values are ``defaults.PAPER``). The
config dataclasses keep the paper configuration as defaults for building models in code, never
for params.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from skelrep.data.augment import AugmentConfig
from skelrep.errors import DataError
from skelrep.losses.mgfd_domains import DEFAULT_DOMAIN_MIX
from skelrep.methods.usdrl.backbone import TwoStreamBackbone, official_init_
from skelrep.methods.usdrl.defaults import PAPER
from skelrep.methods.usdrl.dste import DSTE
from skelrep.methods.usdrl.schema import validate_section
from skelrep.methods.usdrl.sttr import STTR
from skelrep.models.components import pool_streams
from skelrep.models.encoder_file import load_encoder_file
from skelrep.models.modalities import MODALITIES, make_modality, skeleton_parents
from skelrep.models.projector import Projector

BACKBONES: dict[str, type[TwoStreamBackbone]] = {"dste": DSTE, "sttr": STTR}  # schema.ARCHS


@dataclass(frozen=True)
class EncoderConfig:
    arch: str = "dste"
    hidden: int = PAPER["encoder"]["hidden"]
    heads: int = 1
    num_layers: int = PAPER["encoder"]["num_layers"]
    alpha: float = 0.5
    gap: int = 4
    kernel_size: int = 1
    drop_path: float = 0.1
    mlp_ratio: float = 2.0
    t_pe_max_len: int = 200
    frames: int = PAPER["encoder"]["frames"]


@dataclass(frozen=True)
class ProjConfig:
    cp: int = PAPER["proj"]["cp"]
    bn: str = "local"


@dataclass(frozen=True)
class LossConfig:
    w_sim: float = 5.0
    w_vac: float = 1.0
    w_xcorr: float = 0.001
    vac_var_weight: float = 5.0
    vac_cov_weight: float = 1.0
    var_eps: float = 1e-4
    xcorr_offdiag: float = 0.005
    domain_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DOMAIN_MIX))
    fp32: bool = True


@dataclass(frozen=True)
class USDRLConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    proj: ProjConfig = field(default_factory=ProjConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    aug: AugmentConfig = field(default_factory=AugmentConfig)
    train: dict[str, Any] = field(default_factory=dict)  # TRAIN_SCHEMA + modality


def validate_usdrl_config(section: Any) -> USDRLConfig:
    """Validate the ``usdrl`` params block: every key required (paper values: ``defaults.PAPER``).

    Raises ParamsError naming the dotted key (e.g. ``usdrl.encoder.hidden``) and what is allowed.
    """
    v = validate_section(section)
    return USDRLConfig(encoder=EncoderConfig(**v["encoder"]), proj=ProjConfig(**v["proj"]),
                       loss=LossConfig(**v["loss"]), aug=AugmentConfig.from_values(v["aug"]), train=v["train"])


# ---------------------------------------------------------------- model


def backbone_kwargs(encoder: EncoderConfig, *, joints: int = 25, persons: int = 2, channels: int = 3) -> dict[str, Any]:
    """Constructor arguments of the backbone selected by ``encoder.arch``.

    STTR keeps its official feed-forward width (= hidden); the DSTE-only knobs do not apply.
    """
    common = dict(
        frames=encoder.frames, joints=joints, persons=persons, channels=channels, hidden=encoder.hidden,
        heads=encoder.heads, layers=encoder.num_layers, t_pe_max_len=encoder.t_pe_max_len,
    )
    if encoder.arch == "sttr":
        return common
    return dict(
        common, alpha=encoder.alpha, gap=encoder.gap, kernel_size=encoder.kernel_size,
        drop_path=encoder.drop_path, mlp_ratio=encoder.mlp_ratio,
    )


def build_backbone(arch: str, kwargs: Mapping[str, Any]) -> TwoStreamBackbone:
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(BACKBONES)}")
    return BACKBONES[arch](**kwargs)


class USDRLModel(nn.Module):
    """Backbone (DSTE or STTR) + temporal, spatial and instance BN-MLP projectors.

    ``forward(view)`` takes a joint clip ``(N, C, T, V, M)``, derives the configured
    modality (as the official wrapper does, after augmentation; bones along ``parents``, NTU's
    tree by default) and returns the projector outputs ``{'t': z_t, 's': z_s, 'i': z_i}``.
    """

    def __init__(
        self,
        encoder: EncoderConfig | None = None,
        proj: ProjConfig | None = None,
        *,
        modality: str = "joint",
        joints: int = 25,
        persons: int = 2,
        channels: int = 3,
        parents: Sequence[int] | None = None,
    ):
        super().__init__()
        encoder = encoder or EncoderConfig()
        proj = proj or ProjConfig()
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
        self.modality = modality
        self.parents = skeleton_parents(joints, parents)
        self.arch = encoder.arch
        self.backbone = build_backbone(
            encoder.arch, backbone_kwargs(encoder, joints=joints, persons=persons, channels=channels)
        )
        hidden = encoder.hidden
        self.t_proj = Projector(hidden, proj.cp, proj.cp)
        self.s_proj = Projector(hidden, proj.cp, proj.cp)
        self.i_proj = Projector(2 * hidden, proj.cp, 2 * proj.cp)
        for projector in (self.t_proj, self.s_proj, self.i_proj):
            official_init_(projector)

    def forward(self, view: Tensor) -> dict[str, Tensor]:
        y_t, y_s = self.backbone(make_modality(view, self.modality, self.parents))
        return self._project(*pool_streams(y_t, y_s))

    def _project(self, p_t: Tensor, p_s: Tensor) -> dict[str, Tensor]:
        return {"t": self.t_proj(p_t), "s": self.s_proj(p_s), "i": self.i_proj(torch.cat([p_t, p_s], dim=-1))}

    def forward_views(self, views: Tensor, n_views: int) -> dict[str, list[Tensor]]:
        """``forward`` of each of ``n_views`` views stacked view-major in ``views`` (K*N, C, T, V, M).

        The backbone, which treats every sample on its own, runs once on all of them (4x fewer,
        larger operations than a loop over views); the projectors run per view, so their
        BatchNorms normalise over each view's batch, as the official per-view forward does.
        Returns each domain's list of per-view embeddings.
        """
        if views.shape[0] % n_views:
            raise ValueError(f"{views.shape[0]} stacked samples do not split into {n_views} views")
        y_t, y_s = self.backbone(make_modality(views, self.modality, self.parents))
        p_t, p_s = (p.chunk(n_views) for p in pool_streams(y_t, y_s))
        outs = [self._project(t, s) for t, s in zip(p_t, p_s, strict=True)]
        return {d: [o[d] for o in outs] for d in ("t", "s", "i")}


def load_usdrl_encoder(path: str | os.PathLike) -> TwoStreamBackbone:
    """Rebuild a USDRL backbone from an encoder file and load its weights strictly."""
    payload = load_encoder_file(path)
    if payload["method"] != "usdrl":
        raise DataError(path, f"encoder file is for method {payload['method']!r}, not 'usdrl'")
    backbone = build_backbone(payload["arch"], payload["config"])
    backbone.load_state_dict(payload["state_dict"])
    return backbone
