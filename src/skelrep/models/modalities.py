"""Input modalities (joint, bone, motion) and the two token layouts of the USDRL encoders.

All functions take clips shaped ``(N, C, T, V, M)``: batch, coordinate channels (3, or 2 for
image keypoints), frames, joints, persons. The bone modality follows the
skeleton's tree: ``parents`` from its layout (:mod:`skelrep.data.layout`), NTU's by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from skelrep.models.schema import MODALITIES
from skelrep.skeleton import NTU_NUM_JOINTS, NTU_PARENTS


def _check_clip(x: Tensor) -> None:
    if x.ndim != 5:
        raise ValueError(f"expected a clip shaped (N, C, T, V, M), got shape {tuple(x.shape)}")


def skeleton_parents(joints: int, parents: Sequence[int] | None = None) -> tuple[int, ...]:
    """The bone tree of a ``joints``-joint skeleton: ``parents`` checked, or NTU's when None."""
    if parents is None:
        if joints != NTU_NUM_JOINTS:
            raise ValueError(f"parents must be given for a {joints}-joint skeleton (the default is NTU's "
                             f"{NTU_NUM_JOINTS}-joint tree)")
        return NTU_PARENTS
    parents = tuple(int(p) for p in parents)
    if len(parents) != joints or not all(0 <= p < joints for p in parents):
        raise ValueError(f"parents must list one parent index in [0, {joints}) per joint, got {list(parents)}")
    return parents


def skeleton_edges(parents: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """The real bones ``(child, parent)`` of a tree, without the roots' self pairs (graph encoders)."""
    return tuple((v, int(p)) for v, p in enumerate(parents) if p != v)


def bone(x: Tensor, parents: Sequence[int] = NTU_PARENTS) -> Tensor:
    """bone[v] = x[v] - x[parent(v)]; a joint that is its own parent gives a zero bone."""
    _check_clip(x)
    if len(parents) != x.shape[3]:
        raise ValueError(f"parents lists {len(parents)} joints but the clip has V={x.shape[3]}")
    index = torch.as_tensor(parents, dtype=torch.long, device=x.device)
    return x - x.index_select(3, index)


def motion(x: Tensor) -> Tensor:
    """m[t] = x[t+1] - x[t]; the last frame has no successor and is zero."""
    _check_clip(x)
    out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


def make_modality(x: Tensor, name: str, parents: Sequence[int] = NTU_PARENTS) -> Tensor:
    """Return the ``name`` modality ('joint', 'bone' or 'motion') of a joint clip."""
    if name == "joint":
        _check_clip(x)
        return x
    if name == "bone":
        return bone(x, parents)
    if name == "motion":
        return motion(x)
    raise ValueError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}")


def temporal_tokens(x: Tensor) -> Tensor:
    """One token per frame: ``(N, T, M*V*C)``, features ordered person, joint, xyz."""
    _check_clip(x)
    n, c, t, v, m = x.shape
    return x.permute(0, 2, 4, 3, 1).reshape(n, t, m * v * c)


def spatial_tokens(x: Tensor) -> Tensor:
    """One token per (person, joint) trajectory: ``(N, M*V, T*C)``, features frame then xyz."""
    _check_clip(x)
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 3, 2, 1).reshape(n, m * v, t * c)
