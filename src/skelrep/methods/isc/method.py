"""Skeleton-Contrast (ISC, inter-skeleton contrast) as a pretraining method.

Two independently augmented views per sample (temporal crop-resize, then shear or joint
corruption 50/50: the official inter feeder takes shear on the ``< 0.5`` branch, the reverse of
UmURL, but the distribution is the same, so the shared ``AugmentConfig`` serves). Both
representations of a view come from the same augmented clip. ``InterSkeletonMoCo`` does the
rest in one forward: query encoders on view 1, EMA + key encoders on view 2, cross-representation
InfoNCE, and the enqueue of the global batch of keys (all-gathered, no gradient), so DDP sees one
forward per backward. BN stays per rank (no SyncBN, no shuffle-BN), as officially.

The ``isc`` section is validated by ``moco.validate_isc_config`` (``schema.ISC_SCHEMA``, every
key required; the paper values are ``defaults.PAPER``): ``frames`` is the clip length every view
is resampled to (official 64), ``agcn.base_channels`` and ``hcn.width`` the encoder widths
(official 64), ``aug.views`` must be 2, and ``isc.moco.k`` a multiple of
``isc.train.batch_size`` (the global batch), so the enqueue never wraps mid-batch.

Downstream: the encoder file holds the query encoder (no head) of ``isc.eval_encoder``
(headline: the GRU ``encoder_q`` of seq_graph). The official ISC downstream inputs
(``ISCInfo.downstream_crop``), each resampled to the clip length: the linear probe trains on a
**random crop** U(0.5, 1) of at least 64 frames and tests on the **centre 95 %** (start
int(0.05 * n / 2), length n - 2 * start), which KNN uses for gallery and queries. The features
stage takes them with ``features.train_crop: auto`` and ``features.test_crop: auto`` (the
committed values; explicit crops choose otherwise), caching ``features.random_crops`` random train
crops. Dense per-frame features exist only for the
GRU (its per-frame top-layer outputs, a labelled extension); the graph and image encoders have
none, and ``ISCEncoder.dense_features`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from skelrep.errors import SkelrepError
from skelrep.methods.base import Method
from skelrep.methods.isc import ISCInfo
from skelrep.methods.isc.agcn import IscAGCN
from skelrep.methods.isc.gru import IscGRU
from skelrep.methods.isc.hcn import IscHCN
from skelrep.methods.isc.moco import ARCHS, PAIRS, InterSkeletonMoCo, IscFeatureEncoder, validate_isc_config
from skelrep.models.modalities import make_modality, skeleton_edges, skeleton_parents
from skelrep.skeleton import NTU_NUM_JOINTS
from skelrep.training.distributed import DistInfo


class ISCEncoder(IscFeatureEncoder):
    """A frozen ISC query encoder (no head) as the evaluation stages use it.

    ``features``: GRU (N, 2*hidden), AGCN (N, 4*base_channels), HCN (N, 4*width*(frames/16)^2).
    The official downstream inputs: ``ISCInfo.downstream_crop`` (random train crops, centre 95 % test).
    ``dense_features``: GRU only. Both take joint clips
    and derive the encoder's input stream (``isc.train.modality``) first.
    """

    def __init__(self, payload: Mapping[str, Any]):
        super().__init__(payload)
        extra = payload["extra"]
        # files from before these were recorded: joints of NTU's skeleton
        self.modality = extra.get("modality", "joint")
        parents = extra.get("parents")
        self.parents = skeleton_parents(NTU_NUM_JOINTS if parents is None else len(parents), parents)

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return super().features(make_modality(clip, self.modality, self.parents))

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        if self.kind != "seq":
            raise SkelrepError(
                f"the ISC {ARCHS[self.kind]} ({self.kind}) encoder has no per-frame output, so dense "
                f"detection cannot use it; pretrain with isc.eval_encoder: seq (the GRU of a pair with "
                f"a sequence encoder, e.g. seq_graph) to get per-frame features")
        return super().dense_features(make_modality(clip, self.modality, self.parents))


class ISC(ISCInfo, Method):
    encoder = ISCEncoder
    sync_bn = False  # per-rank BN, as the official per-GPU BN (no SyncBN, no shuffle-BN)

    def __init__(self, section: Mapping[str, Any]):
        cfg = validate_isc_config(section)
        train = dict(cfg.train)
        # the input stream: the paper pretrains on joints; bone and motion (labelled extension)
        # give the streams of a three-stream late fusion, as for USDRL
        self.modality = train.pop("modality")
        self.train_cfg = train
        self.parents: tuple[int, ...] | None = None  # the data's bone tree, set by build_model
        self.aug = cfg.aug
        self.frames = cfg.frames
        self.agcn_base_channels = cfg.agcn.base_channels
        self.hcn_width = cfg.hcn.width
        self.model_cfg = self.cfg = cfg

    def _encoder(self, kind: str, channels: int, joints: int, persons: int,
                 parents: tuple[int, ...]) -> nn.Module:
        if kind == "seq":
            g = self.model_cfg.gru
            return IscGRU(channels * joints * persons, g.hidden, g.layers, g.mode)
        if kind == "graph":  # the AGCN's fixed graph is the skeleton's bone tree
            return IscAGCN(num_joints=joints, num_persons=persons, in_channels=channels,
                           base_channels=self.agcn_base_channels, edges=skeleton_edges(parents))
        return IscHCN(in_channels=channels, num_joints=joints, num_persons=persons, width=self.hcn_width,
                      frames=self.frames)

    def build_model(self, channels: int, joints: int, persons: int,
                    parents: Sequence[int] | None = None) -> nn.Module:
        """``InterSkeletonMoCo``: one module whose forward takes both views."""
        cfg, mc = self.model_cfg, self.model_cfg.moco
        s1, s2 = PAIRS[cfg.pair]
        shape = (channels, joints, persons, skeleton_parents(joints, parents))
        self.parents = shape[3]  # the bone modality of training_loss and of the encoder file
        return InterSkeletonMoCo(cfg.pair, self._encoder(s1, *shape), self._encoder(s2, *shape), dim=mc.dim,
                                 k=mc.k, m=mc.m, t=mc.t, mlp=mc.mlp, key_update=mc.key_update)

    def training_loss(self, model: nn.Module, x: torch.Tensor, num_frames: torch.Tensor,
                      generator: torch.Generator, dist: DistInfo) -> dict[str, torch.Tensor]:
        parents = self.parents or skeleton_parents(x.shape[3])
        view1, view2 = (make_modality(v, self.modality, parents)
                        for v in self.aug.make_views(x, num_frames, self.frames, generator=generator))
        return model(view1, view2, dist=dist)

    def encoder_payload(self, model: nn.Module) -> dict:
        payload = model.encoder_payload(self.model_cfg.eval_encoder, self.frames)
        payload["extra"].update(modality=self.modality, parents=list(self.parents))
        return payload

    @property
    def log_params(self) -> dict:
        c = self.model_cfg
        out = {"pair": c.pair, "eval_encoder": c.eval_encoder, "frames": self.frames, "modality": self.modality,
               "moco_dim": c.moco.dim, "moco_k": c.moco.k, "moco_m": c.moco.m, "moco_t": c.moco.t,
               "moco_mlp": c.moco.mlp, "key_update": c.moco.key_update}
        kinds = PAIRS[c.pair]
        if "seq" in kinds:
            out.update(gru_hidden=c.gru.hidden, gru_layers=c.gru.layers, gru_mode=c.gru.mode)
        if "graph" in kinds:
            out["agcn_base_channels"] = self.agcn_base_channels
        if "image" in kinds:
            out["hcn_width"] = self.hcn_width
        return out
