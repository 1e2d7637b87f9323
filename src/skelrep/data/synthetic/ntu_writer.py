"""Synthetic NTU RGB+D 60/120 stand-ins: `.skeleton` files packed like the official zips.

One *performance* (setup, performer, replication, action) is captured by every camera at
once, as in NTU: the cameras see the same motion from different yaws, with their own sensor
noise. The files follow NTU's official ``.skeleton`` format and ``SsssCcccPpppRrrrAaaa`` names,
packed under ``nturgb+d_skeletons/`` in zips named like the official ones (S001-S017 for
NTU-60, S018-S032 for the NTU-120 extension), so the official splits apply.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from skelrep import portable
from skelrep.data.synthetic import actions as act
from skelrep.data.synthetic import scene
from skelrep.data.synthetic.config import SyntheticNTUConfig
from skelrep.data.synthetic.kinematics import LEAF_JOINTS, matrix_to_quaternion
from skelrep.data.synthetic.zipout import CompressedMember, compress_member, deterministic_zip
from skelrep.errors import ParamsError
from skelrep.workers import ordered_map

NTU60_ARCHIVE = "nturgbd_skeletons_s001_to_s017.zip"
NTU120_ARCHIVE = "nturgbd_skeletons_s018_to_s032.zip"
MEMBER_DIR = "nturgb+d_skeletons"

NTU60_XSUB_TRAIN = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | {
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103}

# Yaw (degrees) of each camera relative to the performer's front, per replication: the
# performer faces a different camera in each replication, as in NTU.
CAMERA_YAW = {1: {1: 45.0, 2: 0.0, 3: -45.0}, 2: {1: -45.0, 2: 45.0, 3: 0.0}}

# Per-dataset (setup, performer, action) ranges, as in NTU's naming, and defaults: performer i
# is recorded in setups[i % len]; the orders mix xsub-train/test performers over even/odd setups
# so every protocol is non-trivial.
_RANGES = {"ntu60": ((1, 17), (1, 40), (1, 60)), "ntu120": ((18, 32), (41, 106), (61, 120))}
_DEFAULT_PERFORMERS = {"ntu60": (1, 2, 3, 6, 4, 7, 5, 10), "ntu120": (45, 46, 41, 42, 47, 43, 49, 44)}
_DEFAULT_SETUPS = {"ntu60": (1, 2, 3, 4), "ntu120": (18, 19, 20, 21)}

_BODY_ID_BASE = 72057594037927936  # 2**56, the high part of every real Kinect body id
_MAX_NOISE_BODY_FRAMES = 11


@dataclass
class BodyTrack:
    """One body of a `.skeleton` file: present on frames [first, first + len(joints))."""

    body_id: int
    first: int
    joints: np.ndarray            # (n, 25, 12) x y z depthX depthY colorX colorY qw qx qy qz state
    info: np.ndarray              # (n, 7) clipedEdges hlc hls hrc hrs leanX leanY


@dataclass
class NTUSample:
    name: str
    frame_count: int
    bodies: list[BodyTrack] = field(default_factory=list)
    crlf: bool = False


def sample_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


def dataset_actions(dataset: str, config: SyntheticNTUConfig) -> list[int]:
    first, last = _RANGES[dataset][2]
    count = last - first + 1 if config.classes is None else config.classes
    return list(range(first, first + count))


def _validate(dataset: str, config: SyntheticNTUConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Resolve defaults and check that every protocol split is non-empty."""
    if dataset not in _RANGES:
        raise ParamsError("synthetic.dataset", f"expected 'ntu60' or 'ntu120', got {dataset!r}")
    (s_lo, s_hi), (p_lo, p_hi), (a_lo, a_hi) = _RANGES[dataset]
    performers = config.performers or _DEFAULT_PERFORMERS[dataset]
    setups = config.setups or _DEFAULT_SETUPS[dataset]
    checks = [
        ("performers", performers, p_lo, p_hi), ("setups", setups, s_lo, s_hi),
        ("cameras", config.cameras, 1, 3), ("replications", config.replications, 1, 2),
    ]
    for key, values, lo, hi in checks:
        if not values or any(not lo <= v <= hi for v in values) or len(set(values)) != len(values):
            raise ParamsError(f"synthetic.ntu.{key}", f"need distinct ids in {lo}..{hi}, got {values}")
    if config.classes is not None and not 1 <= config.classes <= a_hi - a_lo + 1:
        raise ParamsError("synthetic.ntu.classes", f"need 1..{a_hi - a_lo + 1}, got {config.classes}")
    if not 1 <= config.min_frames <= config.max_frames <= 300 or config.max_frames < 40:
        raise ParamsError("synthetic.ntu.max_frames",
                          "need 1 <= min_frames <= max_frames <= 300 and max_frames >= 40")
    check_nuisances("synthetic.ntu", config)
    train = NTU60_XSUB_TRAIN if dataset == "ntu60" else NTU120_XSUB_TRAIN
    used_setups = {setups[i % len(setups)] for i in range(len(performers))}
    # the ntu60 archive is also the first half of NTU-120, so it must serve xset as well
    splits = {"xsub": [p in train for p in performers], "xset": [s % 2 == 0 for s in used_setups]}
    if dataset == "ntu60":
        splits["xview"] = [c != 1 for c in config.cameras]
    for protocol, is_train in splits.items():
        if all(is_train) or not any(is_train):
            raise ParamsError("synthetic.ntu", f"{dataset} {protocol}: train or test split would be empty")
    return performers, setups


def check_nuisances(prefix: str, config) -> None:
    """Reject nuisance settings that cannot be drawn (shared with the PKU writer)."""
    ranges = {"distortion_scale": (config.distortion_scale, 1e-3), "tempo_range": (config.tempo_range, 1e-3),
              "occlusion_span": (config.occlusion_span, 0.0)}
    if hasattr(config, "idle_fraction"):
        ranges["idle_fraction"] = (config.idle_fraction, 0.0)
    for key, (pair, low) in ranges.items():
        if len(pair) != 2 or not low <= pair[0] <= pair[1]:
            raise ParamsError(f"{prefix}.{key}", f"need {low} <= lo <= hi, got {pair}")
    if config.occlusion_span[1] > 1.0:
        raise ParamsError(f"{prefix}.occlusion_span", "fractions must be <= 1")
    if not 0 <= config.occluded_joints <= 16:
        raise ParamsError(f"{prefix}.occluded_joints", f"need 0..16, got {config.occluded_joints}")
    if not (0 <= config.distortion_shear < 0.5 and 0 <= config.tilt_deg <= 90):
        raise ParamsError(prefix, "need 0 <= distortion_shear < 0.5 and 0 <= tilt_deg <= 90")


def _placements(rng: portable.Generator, bodies: int) -> list[tuple[np.ndarray, float]]:
    """Floor position (x, z) and facing yaw of each body; two people face each other."""
    if bodies == 1:
        return [(rng.uniform(-0.3, 0.3, 2), rng.uniform(-0.25, 0.25))]
    gap = rng.uniform(0.9, 1.4)
    side = rng.choice([-1.0, 1.0])  # which side the initiator stands on
    centre = rng.uniform(-0.2, 0.2, 2)
    return [(centre + (-side * gap / 2, 0.0), -side * np.pi / 2 + rng.normal(0, 0.15)),
            (centre + (side * gap / 2, 0.0), side * np.pi / 2 + rng.normal(0, 0.15))]


_DISTRACTORS = ("R_front", "L_front", "R_mouth", "R_ear", "nod", "R_shake", "bow", "R_side",
                "L_side", "R_chest", "twist", "R_knee", "B_chest", "R_side_bend")


def performance(seed: int, setup: int, performer: int, replication: int, action: int,
                config: SyntheticNTUConfig) -> tuple[np.ndarray, np.ndarray]:
    """World joints ``(M, T, 25, 3)`` and bone frames ``(M, T, 25, 3, 3)`` of one take."""
    rng = scene.rng_for(seed, "ntu-performance", setup, performer, replication, action)
    spec = act.CLASSES[action]
    actors = [scene.make_performer(seed, performer)]
    if spec.bodies == 2:
        actors.append(scene.make_performer(seed, 1000 + performer))  # the partner
    # the action occupies a variable part of the take: random tempo, idle before and after;
    # durations are rescaled so that the mean take length does not depend on the idle range
    idle_lo, idle_hi = config.idle_fraction
    tempo = float(scene.log_uniform(rng, *config.tempo_range))
    n_action = spec.base_frames * actors[0].tempo * tempo / (1.0 + idle_lo + idle_hi)
    n_action = int(np.clip(round(n_action), 12, config.max_frames - 4))
    lead = int(rng.integers(2, 13) + round(rng.uniform(idle_lo, idle_hi) * n_action))
    tail = int(rng.integers(2, 13) + round(rng.uniform(idle_lo, idle_hi) * n_action))
    room = config.max_frames - n_action
    if lead + tail > room:  # keep the take within max_frames, shrinking the idle parts
        lead = lead * room // (lead + tail)
        tail = room - lead
    total = max(lead + n_action + tail, config.min_frames)
    amplitude = [a.amplitude * rng.uniform(0.85, 1.15) for a in actors]
    motion = act.class_motion(spec, n_action, np.array(amplitude))
    motion = np.pad(motion, ((0, 0), (lead, total - lead - n_action), (0, 0), (0, 0)), mode="edge")
    if rng.random() < config.distractor_prob:
        # an unrelated small movement anywhere in the take, idle parts included
        start = rng.uniform(0.0, 0.7)
        atom = act.ATOMS[_DISTRACTORS[rng.integers(len(_DISTRACTORS))]]
        extra = (act.Step(atom, start, min(1.0, start + rng.uniform(0.2, 0.35)), "seq",
                          amplitude=rng.uniform(0.2, 0.45)),)
        motion += act.evaluate(extra, np.linspace(0.0, 1.0, total), spec.bodies)
    joints, frames = [], []
    for body, (actor, (origin, facing)) in enumerate(zip(actors, _placements(rng, spec.bodies), strict=True)):
        dof = motion[body] + scene.posture(actor) + scene.idle_motion(rng, total, actor.sway)
        pos, frame = scene.pose_body(actor, dof, origin, facing)
        joints.append(pos)
        frames.append(frame)
    return np.stack(joints), np.stack(frames)


def _distort(seed: int, setup: int, camera: int, performer: int, replication: int, action: int,
             config: SyntheticNTUConfig, xyz: np.ndarray) -> np.ndarray:
    """Apply the sample's view distortion to camera-space joints ``(M, T, 25, 3)`` around the
    bodies' mean SpineMid, so that all bodies of the sample share it."""
    rng = scene.rng_for(seed, "ntu-distortion", setup, camera, performer, replication, action)
    matrix = scene.view_distortion(rng, config.distortion_scale, config.distortion_shear,
                                   config.tilt_deg)
    return scene.apply_distortion(xyz, matrix, xyz[:, :, 1].mean(axis=(0, 1)))


def render_sample(seed: int, setup: int, camera: int, performer: int, replication: int,
                  action: int, config: SyntheticNTUConfig) -> NTUSample:
    """Everything one `.skeleton` file holds, including sensor noise and artefacts."""
    joints, frames = performance(seed, setup, performer, replication, action, config)
    return _render_view(seed, setup, camera, performer, replication, action, config, joints, frames)


def _render_view(seed: int, setup: int, camera: int, performer: int, replication: int, action: int,
                 config: SyntheticNTUConfig, joints: np.ndarray, frames: np.ndarray) -> NTUSample:
    """:func:`render_sample` from the take's ``performance`` (shared by its cameras, not modified)."""
    cam = scene.make_camera(seed, setup, CAMERA_YAW[replication][camera], (camera,))
    rng = scene.rng_for(seed, "ntu-view", setup, camera, performer, replication, action)
    n_frames = joints.shape[1]
    sample = NTUSample(sample_name(setup, camera, performer, replication, action), n_frames,
                       crlf=rng.random() < config.crlf_fraction)
    first = rng.integers(1, 6) if rng.random() < config.empty_frame_fraction else 0
    ids = rng.choice(60000, size=len(joints) + 1, replace=False) + 3000
    order = rng.permutation(len(joints))  # body order in the file is not stable in NTU
    quats = matrix_to_quaternion(portable.matmul(cam.rotation(), frames))
    camera_xyz = _distort(seed, setup, camera, performer, replication, action, config,
                          cam.world_to_camera(joints))
    occlusion_rng = scene.rng_for(seed, "ntu-occlusion", setup, camera, performer, replication, action)
    for body in order:
        noisy, state = scene.tracking_noise(rng, camera_xyz[body], config.noise_m,
                                            config.inferred_noise_m, config.inferred_rate)
        scene.occlude(occlusion_rng, noisy, state, config.occluded_joints, config.occlusion_span)
        sample.bodies.append(_track(rng, _BODY_ID_BASE + int(ids[body]), first,
                                    noisy[first:], quats[body, first:], state[first:]))
    if rng.random() < config.noise_body_fraction:
        sample.bodies.insert(rng.integers(len(sample.bodies) + 1),
                             _noise_body(rng, _BODY_ID_BASE + int(ids[-1]), n_frames))
    return sample


def _track(rng: portable.Generator, body_id: int, first: int, xyz: np.ndarray, quat: np.ndarray,
           state: np.ndarray) -> BodyTrack:
    n = len(xyz)
    depth, color = scene.project(xyz)
    quat = quat.copy()
    quat[:, list(LEAF_JOINTS)] = 0.0
    joints = np.concatenate([xyz, depth, color, quat, state[..., None]], axis=-1)
    u, v = depth[..., 0], depth[..., 1]
    edges = (((u >= 512).any(1) * 1) | ((u < 0).any(1) * 2) | ((v < 0).any(1) * 4)
             | ((v >= 424).any(1) * 8))
    hands = np.empty((n, 4))
    hands[:, 0::2] = rng.integers(0, 2, (n, 2))  # confidences flicker; states are mostly 1
    hands[:, 1::2] = np.where(rng.random((n, 2)) < 0.8, 1, rng.integers(0, 5, (n, 2)))
    spine = xyz[:, 20] - xyz[:, 0]
    spine /= portable.norm(spine, keepdims=True)
    info = np.concatenate([edges[:, None], hands, spine[:, :1], -spine[:, 2:3]], axis=-1)
    return BodyTrack(body_id, first, joints + 0.0, info + 0.0)  # + 0.0 turns -0.0 into 0.0


def _noise_body(rng: portable.Generator, body_id: int, n_frames: int) -> BodyTrack:
    """A spurious short body: a flat, wide blob (an object Kinect mistook for a person)."""
    n = int(rng.integers(1, min(_MAX_NOISE_BODY_FRAMES, n_frames) + 1))
    first = int(rng.integers(0, n_frames - n + 1))
    centre = (rng.uniform(-1.2, 1.2), rng.uniform(-0.6, 0.4), rng.uniform(2.0, 4.5))
    shape = rng.uniform((-0.45, -0.1, -0.1), (0.45, 0.1, 0.1), (25, 3))
    xyz = centre + shape + rng.normal(0.0, 0.01, (n, 25, 3))
    quat = np.zeros((n, 25, 4))
    quat[..., 0] = 1.0
    state = np.where(rng.random((n, 25)) < 0.7, 1, 2)
    return _track(rng, body_id, first, xyz, quat, state)


# printf formats: %d truncates the float body-info fields as the NTU writer's C code does
_BODY_FMT = "%d %d %d %d %d %d 0 %.7g %.7g 2\n"
_JOINT_FMT = " ".join(["%.7g"] * 11) + " %d\n"
_FRAME_FMT = "25\n" + _JOINT_FMT * 25


def format_skeleton(sample: NTUSample) -> bytes:
    """The `.skeleton` text of ``sample``, in NTU's official format."""
    per_frame: list[list[str]] = [[] for _ in range(sample.frame_count)]
    for body in sample.bodies:
        rows = body.joints.reshape(len(body.joints), -1).tolist()
        infos = body.info.tolist()
        for i, (row, info) in enumerate(zip(rows, infos, strict=True)):
            head = _BODY_FMT % (body.body_id, *info)
            per_frame[body.first + i].append(head + _FRAME_FMT % tuple(row))
    parts = [f"{sample.frame_count}\n"]
    for blocks in per_frame:
        parts.append(f"{len(blocks)}\n")
        parts.extend(blocks)
    text = "".join(parts)
    if sample.crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("ascii")


def _render_take(job: tuple[int, tuple[int, int, int, int], tuple[int, ...], SyntheticNTUConfig]
                 ) -> list[CompressedMember]:
    """The members of one take, one per camera in ``cameras`` order, ``.skeleton`` bytes
    already deflated; a pure function of the job.

    The cameras share the take's performance (half of a sample's rendering), so it is
    computed once per take, not once per file. Deflating here, in the worker, leaves the
    writing process only appending bytes: done there, the compression of every member was
    serial and bounded the whole stage.
    """
    seed, (setup, performer, replication, action), cameras, config = job
    joints, frames = performance(seed, setup, performer, replication, action, config)
    joints.flags.writeable = frames.flags.writeable = False  # shared by the cameras' renders
    members = []
    for camera in cameras:
        sample = _render_view(seed, setup, camera, performer, replication, action, config, joints, frames)
        members.append(compress_member(f"{MEMBER_DIR}/{sample.name}.skeleton", format_skeleton(sample)))
    return members


class _Spool:
    """Deflated members kept for later, in order, in ``file`` (a ``SpooledTemporaryFile``:
    memory up to its size, then an anonymous temp file, so memory stays bounded)."""

    def __init__(self, file: IO[bytes]):
        self._file = file
        self._members: list[tuple[CompressedMember, int]] = []  # without data, its length

    def add(self, member: CompressedMember) -> None:
        self._file.write(member.data)
        self._members.append((member._replace(data=b""), len(member.data)))

    def drain(self) -> Iterator[CompressedMember]:
        """The members in the order they came; the spool is empty afterwards."""
        self._file.seek(0)
        for member, length in self._members:
            yield member._replace(data=self._file.read(length))
        self._file.seek(0)
        self._file.truncate()
        self._members.clear()


_SPOOL_MEMORY = 64 << 20  # per spooled camera; the default suite needs ~15 MB


def write_ntu_archives(out_dir: Path, dataset: str, config: SyntheticNTUConfig,
                       seed: int, workers: int = 0) -> list[tuple[Path, str]]:
    """Write the synthetic archive of ``dataset`` into ``out_dir``.

    'ntu60' writes ``nturgbd_skeletons_s001_to_s017.zip``; 'ntu120' writes only the extension
    ``nturgbd_skeletons_s018_to_s032.zip`` (NTU-120 = both archives, as officially).
    Returns ``[(path, 'skeleton')]``. Members are ``nturgb+d_skeletons/<name>.skeleton`` in
    sorted order; the bytes depend only on ``config`` and ``seed``, not on ``workers`` (the
    processes that render samples, 0 = one per core): every sample is a pure function of its
    key, and the results are written in key order.

    Work is split by take (setup, performer, replication, action), whose cameras share the
    performance, while names sort camera before performer: within a setup, the first
    camera's members are written as they come and the other cameras' are spooled until then.
    """
    performers, setups = _validate(dataset, config)
    archive = Path(out_dir) / (NTU60_ARCHIVE if dataset == "ntu60" else NTU120_ARCHIVE)
    cameras = tuple(sorted(config.cameras))
    takes = sorted(
        (setups[i % len(setups)], performer, replication, action)
        for i, performer in enumerate(performers)
        for replication in config.replications for action in dataset_actions(dataset, config))
    jobs = [(seed, take, cameras, config) for take in takes]
    workers = workers or os.cpu_count() or 1
    with deterministic_zip(archive) as out, contextlib.ExitStack() as stack:
        spools = {camera: _Spool(stack.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_MEMORY)))
                  for camera in cameras[1:]}
        # 8 takes (24 files) per task: few round trips; the default ntu60 still makes 60 tasks
        results = stack.enter_context(ordered_map(_render_take, jobs, workers, chunksize=8))
        # a progress bar (stderr): the default NTU-60 suite takes tens of seconds
        progress = stack.enter_context(tqdm(total=len(jobs) * len(cameras), desc=f"synthetic {dataset}",
                                            unit="sample", mininterval=1.0))
        current = None
        for (setup, *_), members in zip(takes, results, strict=True):
            if setup != current:  # the previous setup's other cameras, in camera order
                for spool in spools.values():
                    for member in spool.drain():
                        out.add_compressed(member)
                current = setup
            out.add_compressed(members[0])
            for camera, member in zip(cameras[1:], members[1:], strict=True):
                spools[camera].add(member)
            progress.update(len(cameras))
        for spool in spools.values():
            for member in spool.drain():
                out.add_compressed(member)
    return [(archive, "skeleton")]
