"""UmURL as a pretraining method.

Four independently augmented joint views per sample: v1 feeds the joint uni-modal path, v2
the bone path, v3 the motion path, and all three modalities of v4 (derived from that same
clip, after crop-resize, inside the backbone) feed the fused path. The six projector outputs
are all-gathered with gradient, as officially (``umurl.loss.gather``), and the loss, in float32
(the official one runs under AMP), is the intra + inter consistency plus ``vc_reg`` on each of
the six. No momentum encoder, queue or stop-gradient.

Downstream: ``umurl.eval_input: fused`` (official ``mm_forward``: joint, bone and motion
of the clip fused) or ``joint_only`` (the joint uni-modal path, labelled extension). Dense
per-frame features are a labelled extension, absent from the official model
(``UmURLBackbone.encode_dense``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from skelrep.errors import ParamsError
from skelrep.losses.umurl_consistency import umurl_loss
from skelrep.methods.base import Method
from skelrep.methods.umurl import UmURLInfo
from skelrep.methods.umurl.model import UmURLBackbone, UmURLModel, validate_umurl_config
from skelrep.training.distributed import DistInfo, gather_with_grad


class MultiViewUmURL(nn.Module):
    """All four views in one forward call, so DDP sees one forward per backward."""

    def __init__(self, net: UmURLModel):
        super().__init__()
        self.net = net

    def forward(self, views: list[torch.Tensor]):
        """``[v_joint, v_bone, v_motion, v_fused]`` -> ``UmURLOutput`` (six z)."""
        return self.net(*views)


class UmURLEncoder(nn.Module):
    """A frozen UmURL backbone as the evaluation stages use it.

    ``features``: y_u of the fused path (``eval_input: fused``, official) or the joint
    uni-modal path (``joint_only``), ``(N, 2*hidden)``. ``dense_features``: the per-frame
    extension (not in the official model) of the same path, ``(N, frames, 2*hidden)``. Input:
    joint clips; bone and motion are derived inside the backbone.
    """

    def __init__(self, payload: dict):
        super().__init__()
        if payload["arch"] != "umurl":
            raise ParamsError("method", f"UmURL encoder file of unknown arch {payload['arch']!r}; expected 'umurl'")
        self.backbone = UmURLBackbone(**payload["config"])
        self.backbone.load_state_dict(payload["state_dict"])
        self.eval_input = payload["extra"].get("eval_input", "fused")
        if self.eval_input not in ("fused", "joint_only"):
            raise ParamsError("umurl.eval_input", f"encoder file has {self.eval_input!r}; "
                                                  "allowed: 'fused', 'joint_only'")
        self.modality = None if self.eval_input == "fused" else "joint"
        self.frames = self.backbone.frames
        self.feature_dim = self.backbone.out_dim
        self.dense_dim = self.backbone.out_dim

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode(clip, self.modality)

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_dense(clip, self.modality)


class UmURL(UmURLInfo, Method):
    encoder = UmURLEncoder

    def __init__(self, section: Mapping[str, Any]):
        cfg = validate_umurl_config(section)
        self.train_cfg = dict(cfg.train)  # UmURL trains on all three modalities: no ``modality`` key
        self.aug = cfg.aug
        self.model_cfg = self.cfg = cfg
        self.eval_input = cfg.eval_input
        self.frames = cfg.encoder.frames
        self.sync_bn = cfg.proj.bn == "sync"

    def build_model(self, channels: int, joints: int, persons: int,
                    parents: Sequence[int] | None = None) -> nn.Module:
        net = UmURLModel(self.model_cfg.encoder, self.model_cfg.proj, joints=joints, persons=persons,
                         channels=channels, parents=parents)
        return MultiViewUmURL(net)

    def training_loss(self, model: nn.Module, x: torch.Tensor, num_frames: torch.Tensor,
                      generator: torch.Generator, dist: DistInfo) -> dict[str, torch.Tensor]:
        views = self.aug.make_views(x, num_frames, self.frames, generator=generator)
        out = model(views)
        loss = self.model_cfg.loss
        if loss.gather:  # statistics over the global batch (official FullGatherLayer)
            out = type(out)(*(gather_with_grad(z, dist) for z in out))
        return umurl_loss(out.uni, out.fused, w_consistency=loss.w_consistency,
                          vac_var_weight=loss.vac_var_weight, vac_cov_weight=loss.vac_cov_weight,
                          var_eps=loss.var_eps, fp32=loss.fp32)

    def encoder_payload(self, model: nn.Module) -> dict:
        backbone = model.net.backbone
        return {"method": self.name, "arch": "umurl", "config": backbone.config(),
                "state_dict": backbone.state_dict(), "extra": {"eval_input": self.eval_input}}

    @property
    def log_params(self) -> dict:
        c = self.model_cfg
        return {"hidden": c.encoder.hidden, "heads": c.encoder.heads, "num_layers": c.encoder.num_layers,
                "ffn": c.encoder.ffn, "frames": c.encoder.frames,
                "proj_dims": ",".join(map(str, c.proj.dims)), "proj_bn": c.proj.bn,
                "w_consistency": c.loss.w_consistency, "vac_var_weight": c.loss.vac_var_weight,
                "vac_cov_weight": c.loss.vac_cov_weight, "gather": c.loss.gather,
                "eval_input": c.eval_input}
