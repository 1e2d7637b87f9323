"""USDRL as a pretraining method: 4 augmented views -> DSTE/STTR + projectors -> MG-FD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from skelrep.losses.mgfd import mgfd_loss
from skelrep.methods.base import Method
from skelrep.methods.usdrl import USDRLInfo
from skelrep.methods.usdrl.model import USDRLModel, build_backbone, validate_usdrl_config
from skelrep.models.modalities import make_modality, skeleton_parents
from skelrep.training.distributed import DistInfo, gather_with_grad


class MultiViewUSDRL(nn.Module):
    """All views in one forward call, so DDP sees one forward per backward (like the
    official wrapper, which takes the four views together).

    ``views``: a list of (N, C, T, V, M) views, or all of them stacked view-major in one
    (K*N, C, T, V, M) tensor with ``n_views`` = K (what ``training_loss`` passes: no copy).
    The backbone runs once on all views (``USDRLModel.forward_views``).
    """

    def __init__(self, net: USDRLModel):
        super().__init__()
        self.net = net

    def forward(self, views: list[torch.Tensor] | torch.Tensor,
                n_views: int | None = None) -> dict[str, list[torch.Tensor]]:
        if isinstance(views, torch.Tensor):
            if n_views is None:
                raise ValueError("n_views is required with stacked views")
            return self.net.forward_views(views, n_views)
        return self.net.forward_views(torch.cat(list(views)), len(views))


class USDRLEncoder(nn.Module):
    """A frozen USDRL backbone as the evaluation stages use it."""

    def __init__(self, payload: dict):
        super().__init__()
        self.backbone = build_backbone(payload["arch"], payload["config"])
        self.backbone.load_state_dict(payload["state_dict"])
        # ``skelrep import-checkpoint`` writes USDRL encoder files without ``modality`` and
        # ``parents`` (only the source name and hash): such files are read as the joint stream
        # with NTU's bone tree
        self.modality = payload["extra"].get("modality", "joint")
        self.parents = skeleton_parents(self.backbone.joints, payload["extra"].get("parents"))
        self.frames = self.backbone.frames
        self.feature_dim = self.backbone.out_dim
        self.dense_dim = self.backbone.out_dim

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode(make_modality(clip, self.modality, self.parents))

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_dense(make_modality(clip, self.modality, self.parents))


class USDRL(USDRLInfo, Method):
    encoder = USDRLEncoder

    def __init__(self, section: Mapping[str, Any]):
        cfg = validate_usdrl_config(section)
        train = dict(cfg.train)
        self.modality = train.pop("modality")
        self.train_cfg = train
        self.aug = cfg.aug
        self.model_cfg = cfg
        self.frames = cfg.encoder.frames
        self.sync_bn = cfg.proj.bn == "sync"

    def build_model(self, channels: int, joints: int, persons: int,
                    parents: Sequence[int] | None = None) -> nn.Module:
        net = USDRLModel(self.model_cfg.encoder, self.model_cfg.proj, modality=self.modality,
                         joints=joints, persons=persons, channels=channels, parents=parents)
        return MultiViewUSDRL(net)

    def training_loss(self, model: nn.Module, x: torch.Tensor, num_frames: torch.Tensor,
                      generator: torch.Generator, dist: DistInfo) -> dict[str, torch.Tensor]:
        views = self.aug.make_views(x, num_frames, self.frames, generator=generator, stacked=True)
        z = model(views, n_views=self.aug.views)
        # statistics over the global batch (official multi-GPU training gathers z)
        z = {d: [gather_with_grad(v, dist) for v in vs] for d, vs in z.items()}
        loss = self.model_cfg.loss
        return mgfd_loss(z, w_sim=loss.w_sim, w_vac=loss.w_vac, w_xcorr=loss.w_xcorr,
                         domain_mix=loss.domain_mix, vac_var_weight=loss.vac_var_weight,
                         vac_cov_weight=loss.vac_cov_weight, var_eps=loss.var_eps,
                         xcorr_offdiag=loss.xcorr_offdiag, fp32=loss.fp32)

    def encoder_payload(self, model: nn.Module) -> dict:
        backbone = model.net.backbone
        return {"method": self.name, "arch": model.net.arch, "config": backbone.config(),
                "state_dict": backbone.state_dict(),
                "extra": {"modality": self.modality, "parents": list(model.net.parents)}}

    @property
    def log_params(self) -> dict:
        c = self.model_cfg
        return {"arch": c.encoder.arch, "hidden": c.encoder.hidden, "frames": c.encoder.frames,
                "modality": self.modality, "w_sim": c.loss.w_sim, "w_vac": c.loss.w_vac,
                "w_xcorr": c.loss.w_xcorr, "proj_cp": c.proj.cp}
