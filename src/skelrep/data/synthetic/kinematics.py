"""Forward kinematics of the 25-joint Kinect v2 skeleton.

Every joint hangs off its kinematic parent by a fixed offset (scaled per performer) that is
rotated by the *bone frame* of that joint: ``G[c] = G[parent] @ R[c]`` and
``p[c] = p[parent] + G[c] @ offset[c]``. Animating only the rotations ``R`` keeps every bone
length constant within a sequence, which is what a real skeleton tracker approximates.

Body frame convention: x = the performer's right, y = up, z = backwards, so a performer with
zero yaw faces -z, i.e. looks at a camera placed on the -z side. Left-side joints have x < 0,
as in the real NTU files (a performer facing the camera has the left shoulder at smaller x).
"""

from __future__ import annotations

import numpy as np

from skelrep import portable
from skelrep.skeleton import NTU_NUM_JOINTS

# Kinematic parent of each joint (0-based), rooted at SpineBase. Same undirected edges as
# NTU_EDGES; only the root differs (NTU's bone list is rooted at SpineShoulder).
FK_PARENT = (
    -1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 22, 7, 24, 11,
)

# Parents before children.
FK_ORDER = (0, 1, 20, 2, 3, 4, 5, 6, 7, 22, 21, 8, 9, 10, 11, 24, 23, 12, 13, 14, 15, 16, 17, 18, 19)

# Bone (= child joint) indices used by the motion library, per side.
SPINE_LOW, SPINE_UP, NECK, HEAD = 1, 20, 2, 3
CLAVICLE = {"L": 4, "R": 8}
UPPER_ARM = {"L": 5, "R": 9}
FOREARM = {"L": 6, "R": 10}
THIGH = {"L": 13, "R": 17}
SHIN = {"L": 14, "R": 18}

# Joints whose Kinect orientation is written as 0 0 0 0 (0-based: 4, 16, 20, 22-25 1-based).
LEAF_JOINTS = (3, 15, 19, 21, 22, 23, 24)

# Rest offsets (metres) of a 1.0-scale adult standing with arms hanging, in the body frame.
_REST = {
    1: (0.0, 0.27, 0.0), 20: (0.0, 0.22, 0.0), 2: (0.0, 0.07, 0.0), 3: (0.0, 0.13, 0.01),
    4: (-0.17, -0.04, 0.0), 5: (0.0, -0.27, 0.0), 6: (0.0, -0.25, 0.0), 7: (0.0, -0.07, 0.0),
    22: (0.01, -0.03, -0.04), 21: (-0.01, -0.06, 0.04),
    12: (-0.085, -0.06, 0.0), 13: (0.0, -0.42, 0.0), 14: (0.0, -0.41, 0.0), 15: (0.0, -0.05, -0.12),
}
# Body parts whose lengths vary independently between performers.
ARM_JOINTS = (5, 6, 7, 21, 22, 9, 10, 11, 23, 24)
LEG_JOINTS = (13, 14, 15, 17, 18, 19)
SHOULDER_JOINTS = (4, 8)


def _rest_offsets() -> np.ndarray:
    offsets = np.zeros((NTU_NUM_JOINTS, 3))
    for joint, vec in _REST.items():
        offsets[joint] = vec
    # right side mirrors the left side across the sagittal plane
    for left, right in ((4, 8), (5, 9), (6, 10), (7, 11), (22, 24), (21, 23),
                        (12, 16), (13, 17), (14, 18), (15, 19)):
        offsets[right] = offsets[left] * (-1.0, 1.0, 1.0)
    return offsets


REST_OFFSETS = _rest_offsets()


def body_offsets(height: float, arm: float, leg: float, shoulder: float) -> np.ndarray:
    """Rest offsets of one performer: overall height factor times per-part factors."""
    offsets = REST_OFFSETS * height
    offsets[list(ARM_JOINTS)] *= arm
    offsets[list(LEG_JOINTS)] *= leg
    offsets[list(SHOULDER_JOINTS)] *= shoulder
    return offsets


def axis_angle_to_matrix(vec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula on ``(..., 3)`` axis-angle vectors -> ``(..., 3, 3)`` rotations."""
    vec = np.asarray(vec, dtype=np.float64)
    angle = portable.norm(vec, keepdims=True)
    axis = vec / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(vec.shape + (3,))
    sin, cos = portable.sin_cos(angle[..., None])
    eye = np.broadcast_to(np.eye(3), cross.shape)
    return eye + sin * cross + (1.0 - cos) * portable.matmul(cross, cross)


def rotation_y(angle: float | np.ndarray) -> np.ndarray:
    """Rotation(s) about the vertical axis; positive angles turn -z towards -x."""
    angle = np.asarray(angle, dtype=np.float64)
    vec = np.zeros(angle.shape + (3,))
    vec[..., 1] = angle
    return axis_angle_to_matrix(vec)


def forward_kinematics(
    offsets: np.ndarray, bone_rot: np.ndarray, root_pos: np.ndarray, root_frame: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions ``(T, 25, 3)`` and bone frames ``(T, 25, 3, 3)``.

    ``bone_rot`` (T, 25, 3) holds each bone's axis-angle rotation relative to its parent's
    frame (entry 0 is ignored); ``root_pos`` (T, 3) and the rotation ``root_frame``
    (T, 3, 3) place SpineBase.
    """
    local = axis_angle_to_matrix(bone_rot)
    frames = np.empty_like(local)
    pos = np.empty(bone_rot.shape)
    frames[:, 0] = root_frame
    pos[:, 0] = root_pos
    for joint in FK_ORDER[1:]:
        parent = FK_PARENT[joint]
        frames[:, joint] = portable.matmul(frames[:, parent], local[:, joint])
        pos[:, joint] = pos[:, parent] + portable.apply(frames[:, joint], offsets[joint])
    return pos, frames


def matrix_to_quaternion(mat: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations -> ``(..., 4)`` unit quaternions (w, x, y, z)."""
    m00, m11, m22 = mat[..., 0, 0], mat[..., 1, 1], mat[..., 2, 2]
    w = 0.5 * np.sqrt(np.maximum(0.0, 1.0 + m00 + m11 + m22))
    x = 0.5 * np.sqrt(np.maximum(0.0, 1.0 + m00 - m11 - m22))
    y = 0.5 * np.sqrt(np.maximum(0.0, 1.0 - m00 + m11 - m22))
    z = 0.5 * np.sqrt(np.maximum(0.0, 1.0 - m00 - m11 + m22))
    x = np.copysign(x, mat[..., 2, 1] - mat[..., 1, 2])
    y = np.copysign(y, mat[..., 0, 2] - mat[..., 2, 0])
    z = np.copysign(z, mat[..., 1, 0] - mat[..., 0, 1])
    quat = np.stack([w, x, y, z], axis=-1)
    return quat / portable.norm(quat, keepdims=True)
