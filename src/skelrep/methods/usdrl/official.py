"""Official USDRL checkpoints (wengwanjiang/USDRL) -> skelrep modules.

Official names, after stripping the DataParallel ``module.`` prefix::

    backbone.ske_emb.{t,s}_embedding.{0,1,3}.*     -> backbone.embed.{temporal,spatial}.*
    backbone.tpe.pe / backbone.spe                -> backbone.temporal_pe.pe / backbone.spatial_pe
    DSTE: backbone.{t,s}_tr{'',1}.CA.attn.*       -> backbone.{t,s}_layers.{0,1}.attn.*
          backbone.{t,s}_tr{'',1}.DSA.attn.*         (the same shared module: checked equal)
          backbone.{t,s}_tr{'',1}.CA.conv1.*      -> ....ca.conv.*
          backbone.{t,s}_tr{'',1}.CA.<rest>       -> ....ca.<rest>
          backbone.{t,s}_tr{'',1}.DSA.<rest>      -> ....dsa.<rest>
    STTR: backbone.{t,s}_tr.layers.<rest>         -> backbone.{t,s}_encoder.layers.<rest>
    {i,t,s}_proj.*, fc.* (downstream head)        -> unchanged
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from skelrep.errors import DataError
from skelrep.io import sha256_file
from skelrep.methods.usdrl.model import BACKBONES, build_backbone
from skelrep.models.encoder_file import save_encoder
from skelrep.models.state_dict import strip_module_prefix

_DSTE_LAYER = re.compile(r"^backbone\.([ts])_tr(\d*)\.(CA|DSA)\.(.+)$")
_STTR_LAYER = re.compile(r"^backbone\.([ts])_tr\.(layers\..+)$")
_FIXED = {
    "backbone.tpe.pe": "backbone.temporal_pe.pe",
    "backbone.spe": "backbone.spatial_pe",
}
_EMBED = {"backbone.ske_emb.t_embedding.": "backbone.embed.temporal.",
          "backbone.ske_emb.s_embedding.": "backbone.embed.spatial."}


def infer_arch(state_dict: Mapping[str, Tensor]) -> str:
    keys = strip_module_prefix(state_dict)
    if any(_DSTE_LAYER.match(k) for k in keys):
        return "dste"
    if any(_STTR_LAYER.match(k) for k in keys):
        return "sttr"
    raise ValueError("cannot tell the architecture: no backbone.{t,s}_tr* layer keys found")


def _map_key(key: str, arch: str) -> str | None:
    if key in _FIXED:
        return _FIXED[key]
    for old, new in _EMBED.items():
        if key.startswith(old):
            return new + key[len(old):]
    if re.match(r"^([its]_proj|fc)\.", key):
        return key
    if arch == "dste" and (m := _DSTE_LAYER.match(key)):
        stream, index, branch, rest = m.groups()
        layer = f"backbone.{stream}_layers.{int(index or 0)}"
        if rest.startswith("attn."):
            return f"{layer}.{rest}"
        if branch == "CA" and rest.startswith("conv1."):
            rest = "conv." + rest[len("conv1."):]
        return f"{layer}.{branch.lower()}.{rest}"
    if arch == "sttr" and (m := _STTR_LAYER.match(key)):
        stream, rest = m.groups()
        return f"backbone.{stream}_encoder.{rest}"
    return None


def map_official_state_dict(state_dict: Mapping[str, Tensor], arch: str | None = None) -> dict[str, Tensor]:
    """Rename an official USDRL state dict to ``USDRLModel`` names.

    The shared CA/DSA attention appears under two official keys; both are accepted, must
    hold equal tensors, and become one entry. Raises ValueError on unknown keys or a
    mismatched pair.
    """
    state_dict = strip_module_prefix(state_dict)
    arch = arch or infer_arch(state_dict)
    if arch not in BACKBONES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(BACKBONES)}")
    mapped: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    unknown = []
    for key, value in state_dict.items():
        new = _map_key(key, arch)
        if new is None:
            unknown.append(key)
        elif new in mapped:
            if not torch.equal(mapped[new], value):
                raise ValueError(
                    f"{source[new]} and {key} are one shared attention but hold different tensors"
                )
        else:
            mapped[new], source[new] = value, key
    if unknown:
        raise ValueError(f"unexpected keys for an official {arch.upper()} checkpoint: {', '.join(unknown[:8])}"
                         + (f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else ""))
    return mapped


def backbone_state_dict(mapped: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The ``backbone.*`` entries of a mapped state dict, prefix removed."""
    return {k.removeprefix("backbone."): v for k, v in mapped.items() if k.startswith("backbone.")}


def infer_backbone_kwargs(backbone: Mapping[str, Tensor], arch: str) -> dict[str, Any]:
    """Backbone constructor arguments read from tensor shapes (mapped, prefix-free names).

    heads, alpha and gap cannot be read from shapes; they take the official values
    (1, 0.5, 4). The split of M*V tokens into persons x joints assumes 25-joint NTU
    skeletons unless overridden.
    """
    hidden = backbone["spatial_pe"].shape[2]
    tokens = backbone["spatial_pe"].shape[1]  # M * V
    t_in = backbone["embed.temporal.0.weight"].shape[1]  # M * V * C
    s_in = backbone["embed.spatial.0.weight"].shape[1]  # T * C
    if t_in % tokens:
        raise ValueError(f"temporal token size {t_in} is not a multiple of the {tokens} spatial tokens")
    channels = t_in // tokens
    if s_in % channels:
        raise ValueError(f"spatial token size {s_in} is not a multiple of {channels} channels")
    joints = 25 if tokens % 25 == 0 else tokens
    prefix = "t_layers" if arch == "dste" else "t_encoder.layers"
    layers = len({k.split(".")[1 if arch == "dste" else 2] for k in backbone if k.startswith(prefix + ".")})
    kwargs: dict[str, Any] = dict(
        frames=s_in // channels, joints=joints, persons=tokens // joints, channels=channels, hidden=hidden,
        heads=1, layers=layers, t_pe_max_len=backbone["temporal_pe.pe"].shape[1],
    )
    if arch == "dste":
        kwargs.update(
            alpha=0.5, gap=4, drop_path=0.1,
            kernel_size=backbone["t_layers.0.ca.conv.weight"].shape[2],
            mlp_ratio=backbone["t_layers.0.ca.mlp.fc1.weight"].shape[0] / hidden,
        )
    else:
        kwargs.update(ffn_ratio=backbone["t_encoder.layers.0.linear1.weight"].shape[0] / hidden)
    return kwargs


def _read_checkpoint(path: Path) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "checkpoint not found") from None
    except Exception as exc:  # torch raises several types for unreadable or unsafe files
        raise DataError(path, f"cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise DataError(path, "expected a state dict or a dict with a 'state_dict' entry")
    return obj


def import_official_usdrl_checkpoint(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    config_overrides: Mapping[str, Any] | None = None,
    arch: str | None = None,
) -> dict[str, Any]:
    """Convert an official ``.pth.tar`` (pretraining or downstream) into an encoder file.

    The architecture is inferred from the keys unless ``arch`` is given; the backbone
    size from tensor shapes, with ``config_overrides`` replacing inferred constructor
    arguments (e.g. ``heads``). The backbone is loaded strictly before anything is written.
    Returns the backbone config written to the file.
    """
    src_path = Path(src_path)
    raw = _read_checkpoint(src_path)
    try:
        arch = arch or infer_arch(raw)
        backbone_sd = backbone_state_dict(map_official_state_dict(raw, arch))
        kwargs = infer_backbone_kwargs(backbone_sd, arch)
    except (ValueError, KeyError) as exc:
        raise DataError(src_path, f"not an official USDRL checkpoint: {exc}") from exc
    unknown = set(config_overrides or {}) - set(kwargs)
    if unknown:
        raise ValueError(f"unknown config_overrides {sorted(unknown)}; allowed: {sorted(kwargs)}")
    kwargs.update(config_overrides or {})
    backbone = build_backbone(arch, kwargs)
    try:
        backbone.load_state_dict(backbone_sd, strict=True)
    except RuntimeError as exc:
        raise DataError(src_path, f"weights do not fit a {arch.upper()} with {kwargs}: {exc}") from exc
    save_encoder(
        dst_path, method="usdrl", arch=arch, config=backbone.config(), state_dict=backbone.state_dict(),
        extra={"source": src_path.name, "source_sha256": sha256_file(src_path)},
    )
    return backbone.config()
