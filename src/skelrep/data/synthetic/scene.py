"""Performers, scene placement, cameras and sensor effects.

Everything random is drawn from a generator seeded by ``(seed, purpose, ids...)`` (see
``rng_for``), so a performer's body, a setup's camera rig or one performance never depend on
the order in which samples are generated. All arithmetic goes through ``skelrep.portable``
(no numpy transcendental, no BLAS), so the same seed gives the same bits on any CPU.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from skelrep import portable
from skelrep.data.synthetic import actions as act
from skelrep.data.synthetic.kinematics import (
    HEAD,
    SPINE_LOW,
    SPINE_UP,
    UPPER_ARM,
    axis_angle_to_matrix,
    body_offsets,
    forward_kinematics,
    rotation_y,
)

# Kinect v2 intrinsics (approximate public values) and the colour camera's lateral offset.
DEPTH_F, DEPTH_C = 365.5, (256.0, 212.0)
COLOR_F, COLOR_C, COLOR_SHIFT_X = 1081.4, (959.5, 539.5), 0.052
FPS = 30.0
DEG = np.pi / 180.0  # degrees -> radians (one correctly rounded multiplication)

# Leaf-ward joints that Kinect most often marks as inferred (hands, thumbs, tips, feet).
_OFTEN_INFERRED = (6, 7, 10, 11, 14, 15, 18, 19, 21, 22, 23, 24)


def rng_for(seed: int, purpose: str, *ids: int) -> portable.Generator:
    """An independent generator for one purpose and id tuple (portable float draws)."""
    key = [seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(purpose.encode()), *ids]
    return portable.Generator(np.random.SeedSequence(key))


@dataclass(frozen=True)
class Performer:
    """Body proportions and movement style of one performer."""

    offsets: np.ndarray   # (25, 3) rest offsets
    amplitude: float      # how far movements go
    tempo: float          # duration multiplier (> 1: slower)
    lean: float           # habitual forward lean (rad)
    arm_rest: float       # habitual arm abduction at rest (rad)
    sway: float           # idle sway scale

    @property
    def pelvis_height(self) -> float:
        """Height of SpineBase above the floor at rest (hip drop + thigh + shin + ankle)."""
        return float(-self.offsets[[12, 13, 14, 15], 1].sum())


def make_performer(seed: int, performer: int) -> Performer:
    rng = rng_for(seed, "performer", performer)
    offsets = body_offsets(height=rng.uniform(0.84, 1.12), arm=rng.uniform(0.92, 1.08),
                           leg=rng.uniform(0.92, 1.08), shoulder=rng.uniform(0.88, 1.12))
    return Performer(offsets, amplitude=rng.uniform(0.65, 1.2), tempo=rng.uniform(0.72, 1.35),
                     lean=rng.uniform(-0.12, 0.08), arm_rest=rng.uniform(0.04, 0.25),
                     sway=rng.uniform(0.5, 1.5))


@dataclass(frozen=True)
class Camera:
    """A Kinect looking at the scene centre from ``yaw`` (rad), ``distance`` and ``height`` (m)."""

    yaw: float
    distance: float
    height: float
    pitch_jitter: float

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation: yaw about the scene centre, then tilt towards it."""
        return portable.matmul(_rotation_x(self._pitch()), rotation_y(-self.yaw))

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (floor y = 0, scene centre at the origin, front camera on -z) to
        Kinect camera space (x to the sensor's left, y up, z = depth)."""
        position = portable.apply(_rotation_x(self._pitch()), np.array([0.0, self.height, -self.distance]))
        return portable.apply(self.rotation(), points) - position

    def _pitch(self) -> float:
        # tilt so that the scene centre at 0.9 m height lies on the optical axis
        return float(portable.atan2(0.9 - self.height, self.distance)) + self.pitch_jitter


def _rotation_x(angle: float) -> np.ndarray:
    return axis_angle_to_matrix(np.array([angle, 0.0, 0.0]))


def make_camera(seed: int, setup: int, yaw_deg: float, key: tuple[int, ...]) -> Camera:
    """Setup-level height/distance plus a per-camera jitter keyed by ``key``."""
    setup_rng = rng_for(seed, "setup", setup)
    height = setup_rng.uniform(0.5, 1.5)
    distance = setup_rng.uniform(2.6, 3.6)
    rng = rng_for(seed, "camera", setup, *key)
    return Camera(yaw=(yaw_deg + rng.normal(0.0, 6.0)) * DEG,
                  distance=distance + rng.uniform(-0.25, 0.25),
                  height=height + rng.uniform(-0.1, 0.1), pitch_jitter=rng.normal(0.0, 0.03))


def idle_motion(rng: portable.Generator, n_frames: int, sway: float) -> np.ndarray:
    """Low-frequency fidgeting ``(n_frames, 27, 3)``: spine, head, arms and weight shift."""
    t = np.arange(n_frames) / FPS
    out = np.zeros((n_frames, act.NUM_DOF, 3))
    targets = [(SPINE_LOW, 0), (SPINE_LOW, 2), (SPINE_UP, 0), (HEAD, 0), (HEAD, 1),
               (UPPER_ARM["L"], 0), (UPPER_ARM["R"], 0), (act.ROOT_POS, 0), (act.ROOT_POS, 2)]
    for dof, axis in targets:
        scale = 0.015 if dof == act.ROOT_POS else 0.04
        for _ in range(2):
            freq = rng.uniform(0.1, 0.6)
            out[:, dof, axis] += sway * scale * rng.uniform(0.3, 1.0) * portable.sin(
                2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return out


def posture(performer: Performer) -> np.ndarray:
    """The performer's habitual rest pose offsets ``(27, 3)``."""
    pose = np.zeros((act.NUM_DOF, 3))
    pose[SPINE_LOW, 0] = performer.lean
    pose[UPPER_ARM["R"], 2] = performer.arm_rest
    pose[UPPER_ARM["L"], 2] = -performer.arm_rest
    return pose


def pose_body(performer: Performer, dof: np.ndarray, origin: np.ndarray,
              facing: float) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions ``(T, 25, 3)`` and bone frames of one body.

    ``dof`` (T, 27, 3) offsets from rest; ``origin`` (x, z) floor position; ``facing`` the yaw
    of the body's initial frame (0 = facing the front camera).
    """
    facing_rot = rotation_y(facing)
    root_pos = portable.apply(facing_rot, dof[:, act.ROOT_POS])
    root_pos += (origin[0], performer.pelvis_height, origin[1])
    root_frame = portable.matmul(facing_rot, axis_angle_to_matrix(dof[:, act.ROOT_ROT]))
    return forward_kinematics(performer.offsets, dof[:, :25], root_pos, root_frame)


def project(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kinect v2 depth and colour pixel coordinates ``(..., 2)`` of camera-space points."""
    z = np.maximum(xyz[..., 2], 0.1)
    depth = np.stack([DEPTH_C[0] + DEPTH_F * xyz[..., 0] / z,
                      DEPTH_C[1] - DEPTH_F * xyz[..., 1] / z], axis=-1)
    color = np.stack([COLOR_C[0] + COLOR_F * (xyz[..., 0] + COLOR_SHIFT_X) / z,
                      COLOR_C[1] - COLOR_F * xyz[..., 1] / z], axis=-1)
    return depth, color


def tracking_noise(rng: portable.Generator, xyz: np.ndarray, noise_m: float,
                   inferred_noise_m: float, inferred_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Add sensor noise; mark short episodes of inferred (state 1, noisier) joints.

    Returns noisy ``xyz`` (T, 25, 3) and tracking states (T, 25) in {1, 2}.
    """
    n_frames = xyz.shape[0]
    state = np.full(xyz.shape[:2], 2, dtype=np.int64)
    n_episodes = rng.poisson(inferred_rate * n_frames / 30.0)
    for _ in range(n_episodes):
        joint = _OFTEN_INFERRED[rng.integers(len(_OFTEN_INFERRED))]
        start = rng.integers(n_frames)
        state[start:start + rng.integers(3, 30), joint] = 1
    noisy = xyz + rng.normal(0.0, noise_m, xyz.shape)
    inferred = state == 1
    # Kinect guesses inferred joints, so they are much noisier
    noisy[inferred] += rng.normal(0.0, inferred_noise_m, (int(inferred.sum()), 3))
    return noisy, state


# ---------------------------------------------------------------------------- per-sample nuisances
# Limb joints that may be lost for long stretches (elbows, wrists, hands, knees, ankles, feet;
# never the spine, shoulders or hips, which preprocessing uses as references).
OCCLUDABLE_JOINTS = (5, 6, 7, 21, 22, 9, 10, 11, 23, 24, 13, 14, 15, 17, 18, 19)


def log_uniform(rng: portable.Generator, lo: float, hi: float, size=None):
    """Draws spread evenly in ratio (as many x0.8 as x1.25 factors)."""
    return rng.log_uniform(lo, hi, size)


def view_distortion(rng: portable.Generator, scale: tuple[float, float], shear: float,
                    tilt_deg: float) -> np.ndarray:
    """A random 3x3 camera-space distortion: per-axis scale @ shear @ tilt (pitch, roll).

    Models body morphology and viewpoint variation that per-frame centring and shoulder
    x-alignment do not undo. Identity when ``scale == (1, 1)`` and ``shear == tilt_deg == 0``.
    """
    matrix = np.diag(log_uniform(rng, scale[0], scale[1], 3))
    shear_matrix = np.eye(3)
    shear_matrix[~np.eye(3, dtype=bool)] = rng.uniform(-shear, shear, 6)
    pitch, roll = rng.uniform(-tilt_deg, tilt_deg, 2) * DEG
    tilt = portable.matmul(axis_angle_to_matrix(np.array([0.0, 0.0, roll])), _rotation_x(pitch))
    return portable.matmul(portable.matmul(matrix, shear_matrix), tilt)


def apply_distortion(xyz: np.ndarray, matrix: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``centre + (xyz - centre) @ matrix.T`` for camera-space points ``(..., 3)``."""
    return centre + portable.apply(matrix, xyz - centre)


def occlude(rng: portable.Generator, xyz: np.ndarray, state: np.ndarray, max_joints: int,
            span: tuple[float, float]) -> None:
    """Lose 0..``max_joints`` limb joints for a contiguous ``span`` fraction of the frames.

    In place on noisy ``xyz`` (T, 25, 3) and tracking states (T, 25). A lost joint is either
    not tracked at all (state 0, position zeroed), frozen where it was last seen, or guessed
    far off with a slowly drifting error (both state 1).
    """
    n_frames = len(xyz)
    count = int(rng.integers(0, max_joints + 1)) if max_joints > 0 else 0
    for joint in rng.choice(OCCLUDABLE_JOINTS, size=count, replace=False):
        length = max(1, int(round(rng.uniform(span[0], span[1]) * n_frames)))
        start = int(rng.integers(0, n_frames - length + 1))
        window = slice(start, start + length)
        mode = rng.integers(3)
        if mode == 0:
            xyz[window, joint] = 0.0
            state[window, joint] = 0
            continue
        if mode == 1:
            xyz[window, joint] = xyz[start, joint]
        else:
            drift = np.cumsum(rng.normal(0.0, 0.012, (length, 3)), axis=0)
            xyz[window, joint] += rng.normal(0.0, 0.08, 3) + drift + rng.normal(0.0, 0.03, (length, 3))
        state[window, joint] = 1
