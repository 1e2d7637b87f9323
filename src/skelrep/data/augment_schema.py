"""The ``<method>.aug`` block every method's section shares, and the joint scale of
``corrupt_joints`` (torch-free).

Each method's schema (``skelrep.methods.<name>.schema``) validates its ``aug`` block with
:data:`AUG_SCHEMA` and :func:`check_aug`; :class:`skelrep.data.augment.AugmentConfig` holds the
validated values and makes the views.
"""

from __future__ import annotations

from skelrep.errors import ParamsError
from skelrep.schema import integer, list_of, number

# ``corrupt_joints`` counts joints of NTU's 25-joint skeleton, the one the official value (15,
# i.e. 60 % of the body) was chosen for; other skeletons corrupt the same share of their joints.
REFERENCE_JOINTS = 25


def scaled_joint_count(count: int, num_joints: int) -> int:
    """``count`` joints of a 25-joint skeleton as the same share of a ``num_joints`` skeleton.

    round(count * V / 25), halves up: 15 -> 15 (V=25), 12 (Kinect v1, 20), 10 (COCO, 17),
    20 (MediaPipe, 33), 5 (9 joints).
    """
    return min(num_joints, (2 * count * num_joints + REFERENCE_JOINTS) // (2 * REFERENCE_JOINTS))


AUG_SCHEMA = {
    "crop_scale": list_of(number(0.0, 1.0, open_lo=True), 2, 2),  # [low, high] of U(low, high)
    "min_crop": integer(1),
    "corrupt_joints": integer(0, REFERENCE_JOINTS),  # on NTU's 25-joint scale (scaled_joint_count)
    "p_zero": number(0.0, 1.0),
    "shear_range": number(0.0),
    "p_corrupt": number(0.0, 1.0),
    "views": integer(1),
}


def check_aug(v: dict, key: str) -> None:
    low, high = v["crop_scale"]
    if low > high:
        raise ParamsError(f"{key}.crop_scale", f"got {[low, high]}; expected [low, high] with low <= high")
