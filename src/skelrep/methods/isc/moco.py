"""Inter-skeleton contrast (ISC, the official ``moco/builder_inter.py``): two representations, MoCo v2.

Query encoders ``encoder_q`` (representation S1) and ``encoder_r`` (S2) with their heads;
momentum key encoders ``encoder_k`` / ``encoder_l`` (exact copies, no gradient); one queue of
L2-normalised keys per representation. The positive of a query is the *other*
representation's key of the other view; its negatives are the other representation's queue.

Unlike the official DataParallel code, where on more than one GPU the momentum update is a no-op
and (likely) only device 0's keys reach the queue, the EMA really happens on every rank and the
full global batch of keys is enqueued (all-gathered), so queues, pointers and key encoders stay
identical across ranks.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skelrep.data.augment import AugmentConfig
from skelrep.errors import DataError
from skelrep.losses.info_nce import moco_info_nce
from skelrep.methods.isc.agcn import IscAGCN
from skelrep.methods.isc.defaults import PAPER
from skelrep.methods.isc.gru import IscGRU
from skelrep.methods.isc.hcn import IscHCN
from skelrep.methods.isc.heads import ProjectionHead
from skelrep.methods.isc.schema import ENCODER_KINDS, KEY_UPDATES, PAIRS, VIEWS, validate_section
from skelrep.models.encoder_file import load_encoder_file
from skelrep.models.init import unit_rows
from skelrep.training.distributed import DistInfo, gather_no_grad

ARCHS = {"seq": "isc_gru", "graph": "isc_agcn", "image": "isc_hcn"}
ENCODER_CLASSES: dict[str, type[nn.Module]] = {"isc_gru": IscGRU, "isc_agcn": IscAGCN, "isc_hcn": IscHCN}


# ---------------------------------------------------------------- representations (all of the same clip)


def seq_tokens(clip: Tensor) -> Tensor:
    """(N, C, T, V, M) -> (N, T, V*C*M): one vector per frame in the ISC (V, C, M) order."""
    n, c, t, v, m = clip.shape
    return clip.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)


def graph_input(clip: Tensor) -> Tensor:
    """AGCN reads the clip as it is: (N, C, T, V, M)."""
    return clip


def image_input(clip: Tensor) -> Tensor:
    """HCN reads the clip as it is: (N, C, T, V, M)."""
    return clip


REPRESENTATIONS = {"seq": seq_tokens, "graph": graph_input, "image": image_input}


# ---------------------------------------------------------------- config (the ``isc`` params block)


@dataclass(frozen=True)
class GruConfig:
    hidden: int = PAPER["gru"]["hidden"]
    layers: int = PAPER["gru"]["layers"]
    mode: str = "causal_official"


@dataclass(frozen=True)
class AgcnConfig:
    base_channels: int = PAPER["agcn"]["base_channels"]


@dataclass(frozen=True)
class HcnConfig:
    width: int = PAPER["hcn"]["width"]


@dataclass(frozen=True)
class MocoConfig:
    dim: int = 128
    k: int = PAPER["moco"]["k"]
    m: float = PAPER["moco"]["m"]
    t: float = 0.07
    mlp: bool = True
    key_update: str = "ema"
    shuffle_bn: bool = False


@dataclass(frozen=True)
class IscConfig:
    pair: str = "seq_graph"
    eval_encoder: str = "seq"
    frames: int = PAPER["frames"]  # the clip length every view is resampled to
    gru: GruConfig = field(default_factory=GruConfig)
    agcn: AgcnConfig = field(default_factory=AgcnConfig)
    hcn: HcnConfig = field(default_factory=HcnConfig)
    moco: MocoConfig = field(default_factory=MocoConfig)
    aug: AugmentConfig = field(default_factory=lambda: AugmentConfig(views=VIEWS))
    train: dict[str, Any] = field(default_factory=dict)  # TRAIN_SCHEMA + modality


def validate_isc_config(section: Any) -> IscConfig:
    """Validate the ``isc`` params block: every key required (paper values: ``defaults.PAPER``).

    ``eval_encoder`` names a representation of ``pair`` (``seq`` -> the GRU ``encoder_q`` of
    seq_graph, the headline setting); ``moco.k`` is a multiple of ``train.batch_size``.
    """
    v = validate_section(section)
    return IscConfig(pair=v["pair"], eval_encoder=v["eval_encoder"], frames=v["frames"], gru=GruConfig(**v["gru"]),
                     agcn=AgcnConfig(**v["agcn"]), hcn=HcnConfig(**v["hcn"]), moco=MocoConfig(**v["moco"]),
                     aug=AugmentConfig.from_values(v["aug"]), train=v["train"])


# ---------------------------------------------------------------- encoders


def build_isc_encoder(kind: str, gru: GruConfig = GruConfig(), *, channels: int = 3, joints: int = 25,
                      persons: int = 2, frames: int = 64) -> nn.Module:
    """The paper-size encoder of one representation for clips (N, channels, frames, joints, persons)."""
    if kind == "seq":
        return IscGRU(channels * joints * persons, gru.hidden, gru.layers, gru.mode)
    if kind == "graph":
        return IscAGCN(num_joints=joints, num_persons=persons, in_channels=channels)
    if kind == "image":
        return IscHCN(in_channels=channels, num_joints=joints, num_persons=persons, frames=frames)
    raise ValueError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")


class IscBranch(nn.Module):
    """One representation: clip -> representation -> encoder -> projection head."""

    def __init__(self, kind: str, encoder: nn.Module, dim: int = 128, mlp: bool = True):
        super().__init__()
        self.kind = kind
        self.encoder = encoder
        self.head = ProjectionHead(encoder.feature_dim, dim, mlp, kind)

    def features(self, clip: Tensor) -> Tensor:
        return self.encoder(REPRESENTATIONS[self.kind](clip))

    def forward(self, clip: Tensor) -> Tensor:
        return self.head(self.features(clip))


# ---------------------------------------------------------------- MoCo


class InterSkeletonMoCo(nn.Module):
    def __init__(self, pair: str, encoder_s1: nn.Module, encoder_s2: nn.Module, *, dim: int = 128,
                 k: int = 16384, m: float = 0.999, t: float = 0.07, mlp: bool = True,
                 key_update: str = "ema"):
        super().__init__()
        if pair not in PAIRS:
            raise ValueError(f"unknown pair {pair!r}; expected one of {', '.join(PAIRS)}")
        if key_update not in KEY_UPDATES:
            raise ValueError(f"unknown key_update {key_update!r}; expected one of {', '.join(KEY_UPDATES)}")
        self.pair, self.k, self.m, self.t, self.key_update = pair, k, m, t, key_update
        kind_s1, kind_s2 = PAIRS[pair]
        self.encoder_q = IscBranch(kind_s1, encoder_s1, dim, mlp)
        self.encoder_r = IscBranch(kind_s2, encoder_s2, dim, mlp)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        self.encoder_l = copy.deepcopy(self.encoder_r)
        for p in (*self.encoder_k.parameters(), *self.encoder_l.parameters()):
            p.requires_grad_(False)
        self.register_buffer("queue_s1", unit_rows(torch.randn(k, dim)))
        self.register_buffer("queue_s2", unit_rows(torch.randn(k, dim)))
        self.register_buffer("queue_ptr_s1", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_ptr_s2", torch.zeros((), dtype=torch.long))

    def key_pairs(self) -> tuple[tuple[nn.Module, nn.Module], ...]:
        """(key branch, query branch) pairs."""
        return (self.encoder_k, self.encoder_q), (self.encoder_l, self.encoder_r)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """theta_k <- m*theta_k + (1-m)*theta_q for every parameter, heads included."""
        for key, query in self.key_pairs():
            for p_k, p_q in zip(key.parameters(), query.parameters(), strict=True):
                p_k.mul_(self.m).add_(p_q.detach() * (1.0 - self.m))

    @torch.no_grad()
    def _enqueue(self, queue: Tensor, pointer: Tensor, keys: Tensor) -> None:
        """Write ``keys`` at the queue's pointer and advance it. The rows are addressed with a
        device index (the pointer is never read on the host: no sync per step on a GPU); ``k``
        is a multiple of the global batch (checked in ``forward``), so they never wrap."""
        rows = pointer + torch.arange(keys.shape[0], device=pointer.device)
        queue.index_copy_(0, rows, keys.to(queue.dtype))
        pointer.add_(keys.shape[0]).remainder_(self.k)

    def forward(self, view1: Tensor, view2: Tensor, dist: DistInfo = DistInfo()) -> dict[str, Tensor]:
        """Loss terms for one batch of two augmented views (N, C, T, V, M) of each sample."""
        global_batch = view1.shape[0] * dist.world_size
        if self.k % global_batch:
            raise ValueError(f"the queue size moco.k={self.k} must be a multiple of the global batch "
                             f"{global_batch} (= {view1.shape[0]} per rank x {dist.world_size} ranks) so "
                             f"the enqueue never wraps mid-batch")
        q = F.normalize(self.encoder_q(view1), dim=1)
        r = F.normalize(self.encoder_r(view1), dim=1)
        with torch.no_grad():
            if self.key_update == "ema":
                self.momentum_update()
            k = F.normalize(self.encoder_k(view2), dim=1)
            key_l = F.normalize(self.encoder_l(view2), dim=1)
        # clones: the queues are overwritten in place below but are still needed for backward
        ce_q, logits_q = moco_info_nce(q, key_l, self.queue_s2.clone(), self.t)
        ce_r, logits_r = moco_info_nce(r, k, self.queue_s1.clone(), self.t)
        self._enqueue(self.queue_s1, self.queue_ptr_s1, gather_no_grad(k, dist))
        self._enqueue(self.queue_s2, self.queue_ptr_s2, gather_no_grad(key_l, dist))
        with torch.no_grad():
            acc_q = (logits_q.argmax(dim=1) == 0).float().mean()
            acc_r = (logits_r.argmax(dim=1) == 0).float().mean()
        return {"total": ce_q + ce_r, "ce_q": ce_q, "ce_r": ce_r, "acc_q": acc_q, "acc_r": acc_r}

    def query_branch(self, kind: str) -> IscBranch:
        """The query encoder of representation ``kind`` (the downstream encoder, loaded without its head)."""
        for branch in (self.encoder_q, self.encoder_r):
            if branch.kind == kind:
                return branch
        raise ValueError(f"the pair {self.pair!r} has no {kind!r} encoder")

    def encoder_payload(self, kind: str, frames: int) -> dict:
        """Encoder-file content (without head) of the query encoder of ``kind``."""
        encoder = self.query_branch(kind).encoder
        return {"method": "isc", "arch": ARCHS[kind], "config": encoder.config(),
                "state_dict": encoder.state_dict(), "extra": {"kind": kind, "pair": self.pair, "frames": frames}}


def build_isc_moco(cfg: IscConfig, *, channels: int = 3, joints: int = 25, persons: int = 2,
                   frames: int = 64) -> InterSkeletonMoCo:
    """The pretraining model of a validated ``isc`` block, paper-size encoders."""
    dims = dict(channels=channels, joints=joints, persons=persons, frames=frames)
    kind_s1, kind_s2 = PAIRS[cfg.pair]
    mc = cfg.moco
    return InterSkeletonMoCo(cfg.pair, build_isc_encoder(kind_s1, cfg.gru, **dims),
                             build_isc_encoder(kind_s2, cfg.gru, **dims), dim=mc.dim, k=mc.k, m=mc.m,
                             t=mc.t, mlp=mc.mlp, key_update=mc.key_update)


# ---------------------------------------------------------------- downstream


class IscFeatureEncoder(nn.Module):
    """A pretrained ISC encoder as the evaluation stages use it (``methods.base.FeatureEncoder``).

    ``features``: GRU 2*hidden, AGCN 4*base_channels, HCN 4*width*(frames/16)^2.
    ``dense_features``: the GRU's per-frame top-layer outputs (N, T, 2*hidden); the graph
    and image encoders have no per-frame output.
    """

    def __init__(self, payload: Mapping[str, Any]):
        super().__init__()
        arch = payload["arch"]
        if arch not in ENCODER_CLASSES:
            raise ValueError(f"unknown ISC arch {arch!r}; expected one of {', '.join(ENCODER_CLASSES)}")
        self.kind = payload["extra"]["kind"]
        self.frames = int(payload["extra"]["frames"])
        self.encoder = ENCODER_CLASSES[arch](**payload["config"])
        self.encoder.load_state_dict(payload["state_dict"])
        self.feature_dim = self.encoder.feature_dim
        self.dense_dim = self.feature_dim if self.kind == "seq" else 0

    def features(self, clip: Tensor) -> Tensor:
        return self.encoder(REPRESENTATIONS[self.kind](clip))

    def dense_features(self, clip: Tensor) -> Tensor:
        if self.kind != "seq":
            raise ValueError(f"dense per-frame features exist only for the ISC GRU, not {ARCHS[self.kind]}")
        return self.encoder.frame_features(seq_tokens(clip))


def load_isc_encoder(path: str | os.PathLike) -> IscFeatureEncoder:
    payload = load_encoder_file(path)
    if payload["method"] != "isc":
        raise DataError(path, f"encoder file is for method {payload['method']!r}, not 'isc'")
    return IscFeatureEncoder(payload)
