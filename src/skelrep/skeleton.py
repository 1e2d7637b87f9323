"""The NTU RGB+D / Kinect v2 25-joint skeleton: joint names and the bone tree.

Joint order as in the NTU `.skeleton` files (Kinect v2, 1-based in NTU's documentation); the
bone pairs are the ones CTR-GCN, MS-G3D, ISC, UmURL, USDRL and AimCLR share. Used by the
parsers, the synthetic generator, the bone modality and the GCN adjacency.
"""

from __future__ import annotations

NTU_NUM_JOINTS = 25

NTU_JOINT_NAMES = (
    "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
    "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft",
    "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
    "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
)

# (child, parent), 1-based, in the order every reference code base uses. (21, 21) is the
# zero SpineShoulder "bone" that keeps the bone tensor the same shape as the joint tensor.
# Note the HandTip <- Thumb <- Hand convention: (22, 23), (23, 8) and (24, 25), (25, 12).
NTU_BONE_PAIRS_1BASED = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12),
)

# parent index (0-based) of every joint, for bone = joint[v] - joint[NTU_PARENTS[v]]
NTU_PARENTS = tuple(p - 1 for _, p in sorted(NTU_BONE_PAIRS_1BASED))

# The 24 real edges (without the (21, 21) self pair), 0-based, for graph encoders.
NTU_EDGES = tuple((c - 1, p - 1) for c, p in NTU_BONE_PAIRS_1BASED if c != p)

# Joint indices used by the normalisation family (0-based).
SPINE_BASE, SPINE_MID, SHOULDER_LEFT, SHOULDER_RIGHT = 0, 1, 4, 8
