"""The USDRL pretraining model (backbone + three projectors) and its ``usdrl`` params block.

The block has the sections ``encoder``, ``proj``, ``loss``, ``aug`` and ``train``, with the paper
configuration as defaults. This module validates ``encoder``, ``proj`` and ``loss``; ``aug``
and ``train`` are carried as plain dicts for their own validators.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from skelrep.errors import DataError, ParamsError
from skelrep.losses.mgfd import DEFAULT_DOMAIN_MIX
from skelrep.methods.usdrl.backbone import TwoStreamBackbone, official_init_
from skelrep.methods.usdrl.defaults import PAPER
from skelrep.methods.usdrl.dste import DSTE
from skelrep.methods.usdrl.sttr import STTR
from skelrep.models.components import pool_streams
from skelrep.models.encoder_file import load_encoder_file
from skelrep.models.modalities import MODALITIES, make_modality, skeleton_parents
from skelrep.models.projector import Projector

BACKBONES: dict[str, type[TwoStreamBackbone]] = {"dste": DSTE, "sttr": STTR}
PROJECTOR_BN = ("local", "sync")


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
    aug: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- validation


def _int(key: str, value: Any, minimum: int = 1) -> int:
    # bool is an int subclass; `hidden: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(key, f"expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ParamsError(key, f"expected an integer >= {minimum}, got {value}")
    return value


def _number(key: str, value: Any, low: float = 0.0, high: float = math.inf, *, open_low: bool = False,
            open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (YAML reads 1e-4 as a string: write 1.0e-4)" if isinstance(value, str) else ""
        raise ParamsError(key, f"expected a number, got {value!r}{hint}")
    value = float(value)
    below = value <= low if open_low else value < low
    above = value >= high if open_high else value > high
    if not math.isfinite(value) or below or above:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high or high == math.inf else ']'}"
        raise ParamsError(key, f"expected a finite number in {interval}, got {value}")
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParamsError(key, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParamsError(key, f"expected a mapping, got {value!r}")
    return value


def _check_keys(prefix: str, section: Mapping[str, Any], allowed: Any) -> None:
    for name in section:
        if name not in allowed:
            raise ParamsError(f"{prefix}.{name}", f"unknown key; allowed keys: {', '.join(sorted(allowed))}")


def _validate_encoder(section: Mapping[str, Any]) -> EncoderConfig:
    p = "usdrl.encoder"
    names = {f.name for f in dataclasses.fields(EncoderConfig)}
    _check_keys(p, section, names)
    v = {**dataclasses.asdict(EncoderConfig()), **section}
    cfg = EncoderConfig(
        arch=_choice(f"{p}.arch", v["arch"], tuple(BACKBONES)),
        hidden=_int(f"{p}.hidden", v["hidden"]),
        heads=_int(f"{p}.heads", v["heads"]),
        num_layers=_int(f"{p}.num_layers", v["num_layers"]),
        alpha=_number(f"{p}.alpha", v["alpha"], 0.0, 1.0),
        gap=_int(f"{p}.gap", v["gap"]),
        kernel_size=_int(f"{p}.kernel_size", v["kernel_size"]),
        drop_path=_number(f"{p}.drop_path", v["drop_path"], 0.0, 1.0, open_high=True),
        mlp_ratio=_number(f"{p}.mlp_ratio", v["mlp_ratio"], 0.0, open_low=True),
        t_pe_max_len=_int(f"{p}.t_pe_max_len", v["t_pe_max_len"]),
        frames=_int(f"{p}.frames", v["frames"]),
    )
    if cfg.hidden % cfg.heads:
        raise ParamsError(f"{p}.heads", f"must divide hidden={cfg.hidden}, got {cfg.heads}")
    if cfg.t_pe_max_len < cfg.frames:
        raise ParamsError(f"{p}.t_pe_max_len", f"must be >= frames={cfg.frames}, got {cfg.t_pe_max_len}")
    return cfg


def _validate_proj(section: Mapping[str, Any]) -> ProjConfig:
    p = "usdrl.proj"
    _check_keys(p, section, {f.name for f in dataclasses.fields(ProjConfig)})
    v = {**dataclasses.asdict(ProjConfig()), **section}
    return ProjConfig(cp=_int(f"{p}.cp", v["cp"]), bn=_choice(f"{p}.bn", v["bn"], PROJECTOR_BN))


def _validate_loss(section: Mapping[str, Any]) -> LossConfig:
    p = "usdrl.loss"
    _check_keys(p, section, {f.name for f in dataclasses.fields(LossConfig)})
    v = {**dataclasses.asdict(LossConfig()), **section}
    mix = _mapping(f"{p}.domain_mix", v["domain_mix"])
    _check_keys(f"{p}.domain_mix", mix, DEFAULT_DOMAIN_MIX)
    mix = {**DEFAULT_DOMAIN_MIX, **mix}
    if not isinstance(v["fp32"], bool):
        raise ParamsError(f"{p}.fp32", f"expected true or false, got {v['fp32']!r}")
    weights = {
        name: _number(f"{p}.{name}", v[name])
        for name in ("w_sim", "w_vac", "w_xcorr", "vac_var_weight", "vac_cov_weight", "xcorr_offdiag")
    }
    return LossConfig(
        **weights,
        var_eps=_number(f"{p}.var_eps", v["var_eps"], 0.0, open_low=True),
        domain_mix={g: _number(f"{p}.domain_mix.{g}", w) for g, w in mix.items()},
        fp32=v["fp32"],
    )


def validate_usdrl_config(section: Mapping[str, Any] | None) -> USDRLConfig:
    """Validate the ``usdrl`` params block; missing keys take the paper defaults.

    Raises ParamsError naming the dotted key (e.g. ``usdrl.encoder.hidden``) and what is allowed.
    """
    section = _mapping("usdrl", section)
    _check_keys("usdrl", section, {f.name for f in dataclasses.fields(USDRLConfig)})
    return USDRLConfig(
        encoder=_validate_encoder(_mapping("usdrl.encoder", section.get("encoder"))),
        proj=_validate_proj(_mapping("usdrl.proj", section.get("proj"))),
        loss=_validate_loss(_mapping("usdrl.loss", section.get("loss"))),
        aug=dict(_mapping("usdrl.aug", section.get("aug"))),
        train=dict(_mapping("usdrl.train", section.get("train"))),
    )


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
        p_t, p_s = pool_streams(y_t, y_s)
        return {"t": self.t_proj(p_t), "s": self.s_proj(p_s), "i": self.i_proj(torch.cat([p_t, p_s], dim=-1))}


def load_usdrl_encoder(path: str | os.PathLike) -> TwoStreamBackbone:
    """Rebuild a USDRL backbone from an encoder file and load its weights strictly."""
    payload = load_encoder_file(path)
    if payload["method"] != "usdrl":
        raise DataError(path, f"encoder file is for method {payload['method']!r}, not 'usdrl'")
    backbone = build_backbone(payload["arch"], payload["config"])
    backbone.load_state_dict(payload["state_dict"])
    return backbone
