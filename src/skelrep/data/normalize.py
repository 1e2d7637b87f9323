"""Skeleton preprocessing: Family B (2s-AGCN `pre_normalization`) and Family A denoising.

Family B (2s-AGCN / MS-G3D ``ntu_gendata`` + ``pre_normalization``) is what ISC, CMD, UmURL and
USDRL train on: pick the two most energetic body slots, loop-pad null frames, centre on person
0's SpineMid per frame, then rotate the whole sequence so person 0's spine is along +z
(optional) and the shoulders along +x. Family A is the SGN / CTR-GCN bodyID-based denoising
(used by CTR-GCN and MAMP, not by the methods here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from skelrep import portable
from skelrep.data.ntu import NTUSkeleton
from skelrep.skeleton import SHOULDER_LEFT, SHOULDER_RIGHT, SPINE_BASE, SPINE_MID

logger = logging.getLogger(__name__)

# The Family-B variant of each method lineage: UmURL and USDRL comment the z-align step out of
# their pre_normalization, ISC (like CMD and MS-G3D) keeps it.
NORMALISATIONS: dict[str, dict[str, bool]] = {
    "umurl": dict(z_align=False, x_align=True),
    "isc": dict(z_align=True, x_align=True),
}

# 2s-AGCN's tolerance below which a rotation axis or angle counts as degenerate.
_DEGENERATE = 1e-6


def _nonempty_frames(person: np.ndarray) -> np.ndarray:
    """(..., T, V, C) -> (..., T) bool: frames with any non-zero coordinate."""
    return np.any(person != 0, axis=(-2, -1))


def select_bodies_by_energy(slots: np.ndarray, keep: int = 2) -> np.ndarray:
    """Keep the ``keep`` most energetic body slots: (S, T, V, C) -> (C, T, V, keep) float32.

    Energy = sum over coordinates of the std of that coordinate over the slot's non-zero
    frames (all joints pooled). Output is in descending energy; ties keep the lower slot
    first. Missing slots (S < keep) are zero.
    """
    slots = np.asarray(slots)
    num_slots, num_frames, num_joints, channels = slots.shape
    nonempty = _nonempty_frames(slots)
    energy = np.zeros(num_slots)
    for s in range(num_slots):
        frames = slots[s, nonempty[s]].reshape(-1, channels).astype(np.float64)
        if len(frames):
            energy[s] = frames.std(axis=0).sum()
    order = np.argsort(-energy, kind="stable")[:keep]
    out = np.zeros((keep, num_frames, num_joints, channels), dtype=np.float32)
    out[: len(order)] = slots[order]
    return out.transpose(3, 1, 2, 0).copy()


def _compact_null_frames(x: np.ndarray) -> list[int]:
    """In place on (M, T, V, C): shift a person's frames to the start when frame 0 is empty.
    Returns each person's length: its last non-empty frame + 1 (0 for an untracked person)."""
    num_frames = x.shape[1]
    lengths = []
    for person in x:
        nonempty = _nonempty_frames(person)
        if not nonempty.any():
            lengths.append(0)
            continue
        if not nonempty[0]:
            # 2s-AGCN compacts *all* non-empty frames to the front here, so interior empty
            # frames disappear in this case (and only in this case).
            kept = person[nonempty].copy()
            person[:] = 0
            person[: len(kept)] = kept
            nonempty = np.zeros(num_frames, dtype=bool)
            nonempty[: len(kept)] = True
        lengths.append(int(np.flatnonzero(nonempty)[-1]) + 1)
    return lengths


def _loop_fill(x: np.ndarray, lengths: list[int]) -> None:
    """In place on (M, T, V, C): loop-fill each person's all-zero tail with its own frames
    from the start (2s-AGCN's null-frame padding)."""
    num_frames = x.shape[1]
    for person, length in zip(x, lengths, strict=True):
        if 0 < length < num_frames:
            person[length:] = person[np.arange(num_frames - length) % length]


def _tile_frames(y: np.ndarray, frames: int) -> np.ndarray:
    """(C, L, V, M) -> (C, frames, V, M): frame t is y's frame t % L."""
    out = np.empty((y.shape[0], frames, *y.shape[2:]), dtype=y.dtype)
    period = min(y.shape[1], frames)
    out[:, :period] = y[:, :period]
    filled = period  # a multiple of the period: doubling copies keep t -> t % period
    while filled < frames:
        n = min(filled, frames - filled)
        out[:, filled: filled + n] = out[:, :n]
        filled += n
    return out


def _rotation_onto(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation matrix turning ``v`` onto ``target``'s direction about cross(v, target).

    Identity when the axis or the angle is degenerate (2s-AGCN convention), which covers
    a zero vector and a vector (anti)parallel to the target. 2s-AGCN's arccos/sin/cos run
    through ``skelrep.portable`` (arccos(c) = atan2(sqrt(1 - c^2), c)), so the processed
    bytes do not depend on the CPU.
    """
    axis = portable.cross(v, target)
    norm_v = float(portable.norm(v))
    if np.abs(axis).sum() < _DEGENERATE or norm_v == 0:
        return np.eye(3)
    cos = float(np.clip(portable.dot(v, target) / (norm_v * portable.norm(target)), -1.0, 1.0))
    angle = float(portable.atan2(np.sqrt(1.0 - cos * cos), cos))
    if abs(angle) < _DEGENERATE:
        return np.eye(3)
    k = axis / portable.norm(axis)
    cross_k = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    sin_a, cos_a = portable.sin_cos(angle)
    # Rodrigues: counter-clockwise rotation by `angle` about k.
    return np.eye(3) + sin_a * cross_k + (1 - cos_a) * portable.matmul(cross_k, cross_k)


def pre_normalize(data: np.ndarray, *, z_align: bool, x_align: bool = True,
                  pad_null: bool = True, frames: int | None = None, center_joint: int = SPINE_MID,
                  z_pair: tuple[int, int] = (SPINE_BASE, SPINE_MID),
                  x_pair: tuple[int, int] = (SHOULDER_RIGHT, SHOULDER_LEFT)) -> np.ndarray:
    """2s-AGCN `pre_normalization` of one sample (C, T, V, M) -> (C, frames or T, V, M) float32.

    Steps: (0) with ``frames``, cut or zero-pad the sample to that many frames first (what the
    processed file stores); (1) pad null frames per person (``pad_null``); (2) subtract person
    0's ``center_joint`` per frame from every person, keeping all-zero joints zero; (3) if
    ``z_align``, rotate so person 0's joint[z_pair[1]] - joint[z_pair[0]] is along +z;
    (4) if ``x_align``, rotate so person 0's joint[x_pair[0]] - joint[x_pair[1]] is along
    +x. The pair conventions are 2s-AGCN's (`zaxis=[0, 1]`, `xaxis=[8, 4]`).

    Rotations are measured at frame 0, or, with ``pad_null=False`` (untrimmed videos),
    at person 0's first non-empty frame. An all-zero person 0 leaves the data unrotated.

    When every tracked person has the same length L (one person, or people tracked in the same
    frames: nearly every sample), the loop-padded frames are copies of the first L and every
    step after (1) works frame by frame with one rotation, so steps 2-4 run on the L frames and
    the result is tiled: the same bytes as normalising all the padded frames (a typical NTU
    sample has ~100 of its 300 stored frames tracked).
    """
    # (C, M, T, V): each coordinate a contiguous plane, so the rotations below are three
    # scalar-times-plane sums (the same operations, in the same order, as portable.apply)
    x = np.asarray(data).transpose(0, 3, 1, 2)
    if frames is not None:
        x = x[:, :, :frames]
    x = x.astype(np.float64, order="C")
    out_frames = x.shape[2] if frames is None else frames
    period = None  # the common length of the tracked people, when there is one
    if pad_null:
        lengths = _compact_null_frames(x.transpose(1, 2, 3, 0))  # in place, on (M, T, V, C) views
        tracked = set(lengths) - {0}
        if len(tracked) == 1:
            (period,) = tracked
            x = x[:, :, :period]
    if period is None:  # every frame normalised: people of different lengths, none, or no padding
        if out_frames > x.shape[2]:
            x = np.concatenate([x, np.zeros((*x.shape[:2], out_frames - x.shape[2], x.shape[3]))], axis=2)
        if pad_null:
            _loop_fill(x.transpose(1, 2, 3, 0), lengths)

    joint_present = x[0] != 0  # (M, T, V): any coordinate non-zero
    for plane in x[1:]:
        joint_present |= plane != 0
    center = x[:, 0:1, :, center_joint : center_joint + 1]  # (C, 1, T, 1): person 0, per frame
    x = (x - center) * joint_present

    ref = 0
    if not pad_null:
        main_frames = np.flatnonzero(np.any(x[:, 0] != 0, axis=(0, 2)))
        ref = int(main_frames[0]) if main_frames.size else 0
    if z_align:
        spine = x[:, 0, ref, z_pair[1]] - x[:, 0, ref, z_pair[0]]
        x = _rotate(_rotation_onto(spine, np.array([0.0, 0.0, 1.0])), x)
    if x_align:
        shoulders = x[:, 0, ref, x_pair[0]] - x[:, 0, ref, x_pair[1]]
        x = _rotate(_rotation_onto(shoulders, np.array([1.0, 0.0, 0.0])), x)
    # C order: written as it is (the HDF5 chunk, hdf5.encode_sample) without another copy
    y = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)
    return y if period is None or period == out_frames else _tile_frames(y, out_frames)


def _rotate(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``portable.apply(matrix, points)`` for points stored as coordinate planes (3, ...): each
    output plane is ``(m[c, 0] * x[0] + m[c, 1] * x[1]) + m[c, 2] * x[2]``."""
    out = np.empty_like(x)
    for c in range(3):
        plane = matrix[c, 0] * x[0]
        plane += matrix[c, 1] * x[1]
        np.add(plane, matrix[c, 2] * x[2], out=out[c])
    return out


# ------------------------------------------------------------- Family A: SGN denoising

NOISE_LENGTH_MAX = 11  # bodies seen in at most this many frames are noise
NOISE_SPREAD_RATIO = 0.8  # a frame is valid if X-extent <= 0.8 * Y-extent
NOISE_SPREAD_FRACTION = 0.69754  # drop a body whose invalid-frame fraction reaches this


@dataclass
class _Body:
    """One bodyID's track: its valid-frame indices (frames with >= 1 body) and joints."""

    body_id: str
    frames: np.ndarray  # (n,) int, indices into the valid (non-empty) frames
    xyz: np.ndarray  # (n, 25, 3) float64
    motion: float = 0.0


def _motion(xyz: np.ndarray) -> float:
    """Sum over x, y, z of the variance of all joint coordinates (joints and frames pooled)."""
    return float(xyz.reshape(-1, 3).var(axis=0).sum())


def _group_by_body_id(skel: NTUSkeleton) -> list[_Body]:
    """Bodies in order of first appearance; frames without bodies are skipped, not counted."""
    tracks: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    valid = np.flatnonzero(skel.body_count > 0)
    for rank, t in enumerate(valid):
        for b in range(int(skel.body_count[t])):
            frames, joints = tracks.setdefault(str(skel.body_id[t, b]), ([], []))
            frames.append(rank)
            joints.append(skel.joints[t, b, :, :3])
    return [_Body(body_id, np.array(frames), np.array(joints, dtype=np.float64))
            for body_id, (frames, joints) in tracks.items()]


def _spread_valid(xyz: np.ndarray) -> np.ndarray:
    """(n, 25, 3) -> (n,) bool: frames whose X-extent is at most 0.8 x the Y-extent."""
    extent = xyz.max(axis=1) - xyz.min(axis=1)
    return extent[:, 0] <= NOISE_SPREAD_RATIO * extent[:, 1]


def _denoise(bodies: list[_Body]) -> list[_Body]:
    """SGN denoising steps 2.1-2.3: length, spread, then sort by motion (largest first)."""
    # 2.1 Length. The reference crashes when every body is short; keep the longest then.
    long_enough = [b for b in bodies if len(b.frames) > NOISE_LENGTH_MAX]
    if not long_enough:
        longest = max(bodies, key=lambda b: len(b.frames))
        logger.warning("every body is in <= %d frames; keeping the longest, %s",
                       NOISE_LENGTH_MAX, longest.body_id)
        return [longest]
    bodies = long_enough
    if len(bodies) == 1:
        return bodies
    for body in bodies:
        body.motion = _motion(body.xyz)
    # 2.2 Spread, in order of first appearance, never removing the last body left.
    kept = list(bodies)
    for body in bodies:
        if len(kept) == 1:
            break
        valid = _spread_valid(body.xyz)
        if valid.all():
            continue
        if 1 - valid.mean() >= NOISE_SPREAD_FRACTION:
            kept.remove(body)
        else:
            body.motion = min(body.motion, _motion(body.xyz[valid]))
    # 2.3 The motion thresholds are disabled in the reference; only the ordering remains.
    return sorted(kept, key=lambda b: b.motion, reverse=True)  # stable for equal motion


def denoise_bodies_sgn(skel: NTUSkeleton) -> np.ndarray:
    """SGN / CTR-GCN denoising (raw read by bodyID, then the length, spread and actor-assignment
    steps) -> (3, T, 25, 2) float32.

    Bodies are tracked by bodyID, noise bodies removed, and the rest packed into two actor
    slots by non-overlapping frame intervals. Frames with no body, and frames where both
    actors are all zero, are removed; the result is zero-padded to the file's T. No
    translation is applied (that is step 3, done by the caller).
    """
    num_frames = skel.num_frames
    out = np.zeros((3, num_frames, 25, 2), dtype=np.float32)
    bodies = _group_by_body_id(skel)
    if not bodies:
        return out
    bodies = _denoise(bodies)
    num_valid = int(np.count_nonzero(skel.body_count > 0))
    actors = np.zeros((num_valid, 2, 25, 3))
    # 2.4 Actor assignment. Intervals are inclusive [first, last] valid-frame indices and
    # grow to the hull of the bodies placed in that slot. (The reference tests overlap with
    # `min(ends) - max(starts) <= 0`, so a body sharing one frame still counts as disjoint,
    # and seeds actor 2 with a virtual [0, 0]; we use the plain overlap rule instead.)
    intervals: list[tuple[int, int] | None] = [None, None]
    for body in bodies:
        start, end = int(body.frames[0]), int(body.frames[-1])
        for slot, interval in enumerate(intervals):
            if interval is None or end < interval[0] or start > interval[1]:
                actors[body.frames, slot] = body.xyz
                intervals[slot] = (start, end) if interval is None else (
                    min(start, interval[0]), max(end, interval[1]))
                break
        else:
            logger.info("body %s overlaps both actors; discarded", body.body_id)
    actors = actors[np.any(actors != 0, axis=(1, 2, 3))]
    out[:, : len(actors)] = actors.transpose(3, 0, 2, 1)
    return out
