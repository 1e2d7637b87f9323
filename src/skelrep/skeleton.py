"""The NTU RGB+D / Kinect v2 25-joint skeleton as constants: joint names, the bone tree and the
joints the normalisation uses.

Defined once, in the built-in layout file ``skelrep/data/layouts/ntu25.yaml`` (what
``load_layout("ntu25")`` reads); this module derives the constants the parsers, the synthetic
generator, the bone modality and the GCN adjacency use from it. Joint order as in the NTU
``.skeleton`` files; the tree is NTU's bone list, rooted at SpineShoulder (whose bone is the
zero vector), with the HandTip <- Thumb <- Hand convention of every reference code base.
"""

from __future__ import annotations

from importlib import resources

import yaml

_SPEC = yaml.safe_load(resources.files("skelrep.data").joinpath("layouts", "ntu25.yaml").read_text("utf-8"))

NTU_JOINT_NAMES: tuple[str, ...] = tuple(joint["name"] for joint in _SPEC["joints"])
NTU_NUM_JOINTS = len(NTU_JOINT_NAMES)
_INDEX = {name: i for i, name in enumerate(NTU_JOINT_NAMES)}

# parent index (0-based) of every joint, for bone = joint[v] - joint[NTU_PARENTS[v]]; the root's
# parent is itself (its zero "bone" keeps the bone tensor the shape of the joint tensor)
NTU_PARENTS: tuple[int, ...] = tuple(i if joint["parent"] is None else _INDEX[joint["parent"]]
                                     for i, joint in enumerate(_SPEC["joints"]))

# (child, parent), 1-based, in joint order: the list every reference code base writes out
NTU_BONE_PAIRS_1BASED = tuple((c + 1, p + 1) for c, p in enumerate(NTU_PARENTS))

# The 24 real edges (without the root's self pair), 0-based, for graph encoders.
NTU_EDGES = tuple((c, p) for c, p in enumerate(NTU_PARENTS) if c != p)

# Joint indices used by the normalisation family (0-based): the layout's centre (SpineMid), its
# z-alignment pair (SpineBase -> SpineMid) and x-alignment pair (ShoulderRight -> ShoulderLeft).
SPINE_MID = _INDEX[_SPEC["center"]]
SPINE_BASE = _INDEX[_SPEC["align_z"][0]]
SHOULDER_RIGHT, SHOULDER_LEFT = (_INDEX[name] for name in _SPEC["align_x"])
