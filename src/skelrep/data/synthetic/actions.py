"""The synthetic action vocabulary: motion atoms composed into 120 NTU-style classes.

A *pose* is a ``(27, 3)`` array of degree-of-freedom offsets from the rest pose: rows 0-24 are
bone rotations (axis-angle, see ``kinematics``), row ``ROOT_POS`` a root displacement in the
performer's initial body frame (metres) and row ``ROOT_ROT`` a root rotation (axis-angle).

An ``Atom`` is one body-part motion: a target pose reached through an envelope, plus an
optional oscillation while it is held (waving, clapping, nodding, walking). A class is a list
of ``Step``s (atom, time window, envelope kind, which body), optionally time-reversed.

Single-person classes come in families of three variants over the same atoms:
``seq`` (each atom once, fast onset / slow release, atoms in order), ``rev`` (the exact time
reversal of ``seq``: slow onset / fast release, atoms in reverse order; sit down <-> stand up)
and ``rep`` (each atom swung three times). The three share their mean pose, so a classifier
must model time to tell them apart; families share atoms, so classes overlap partially.
Two-person classes pair an initiator programme with a partner reaction, so the second body
matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from skelrep import portable
from skelrep.data.synthetic.kinematics import (
    CLAVICLE,
    FOREARM,
    HEAD,
    NECK,
    SHIN,
    SPINE_LOW,
    SPINE_UP,
    THIGH,
    UPPER_ARM,
)

ROOT_POS, ROOT_ROT, NUM_DOF = 25, 26, 27

NTU60_MUTUAL = range(50, 61)
NTU120_MUTUAL = range(106, 121)
NUM_NTU_CLASSES = 120
NUM_PKU_CLASSES = 51
# PKU-MMD II labels: 41 distinct ids, a fixed subset of Phase I's 1..51 (every fifth id dropped).
PKU2_CLASS_IDS = tuple(k for k in range(1, NUM_PKU_CLASSES + 1) if k % 5 != 4)

Vec = tuple[float, float, float]


def is_mutual(action: int) -> bool:
    """True for the NTU two-person classes A050-A060 and A106-A120."""
    return action in NTU60_MUTUAL or action in NTU120_MUTUAL


def _pose(items: Mapping[int, Vec]) -> np.ndarray:
    pose = np.zeros((NUM_DOF, 3))
    for dof, vec in items.items():
        pose[dof] += vec
    return pose


def _mirror(pose: np.ndarray) -> np.ndarray:
    """Left-right mirror image of a pose (reflection x -> -x)."""
    out = pose.copy()
    swaps = [(CLAVICLE, "L", "R"), (UPPER_ARM, "L", "R"), (FOREARM, "L", "R"),
             (THIGH, "L", "R"), (SHIN, "L", "R")]
    for table, left, right in swaps:
        out[[table[left], table[right]]] = pose[[table[right], table[left]]]
    out[:ROOT_POS] *= (1.0, -1.0, -1.0)   # axis-angle is a pseudovector
    out[ROOT_ROT] *= (1.0, -1.0, -1.0)
    out[ROOT_POS] *= (-1.0, 1.0, 1.0)
    return out


@dataclass(frozen=True)
class Atom:
    """One motion primitive. ``hold='stay'`` atoms end in their target (sit down, turn)."""

    name: str
    pose: np.ndarray
    osc: np.ndarray = field(default_factory=lambda: np.zeros((NUM_DOF, 3)))
    cycles: float = 0.0
    hold: str = "return"

    def mirrored(self, name: str) -> Atom:
        return Atom(name, _mirror(self.pose), _mirror(self.osc), self.cycles, self.hold)

    def plus(self, other: Atom, name: str) -> Atom:
        """Both atoms at once (e.g. both arms)."""
        return Atom(name, self.pose + other.pose, self.osc + other.osc,
                    max(self.cycles, other.cycles), self.hold)


def _right_arm(upper: Vec, fore: Vec = (0.0, 0.0, 0.0)) -> dict[int, Vec]:
    return {UPPER_ARM["R"]: upper, FOREARM["R"]: fore}


def _legs(thigh: Vec, shin: Vec) -> dict[int, Vec]:
    return {THIGH["L"]: thigh, THIGH["R"]: thigh, SHIN["L"]: shin, SHIN["R"]: shin}


def _build_atoms() -> dict[str, Atom]:
    """The atom library. Values are written for the right side; left atoms are mirrors."""
    z = np.zeros((NUM_DOF, 3))
    right = {
        "front": Atom("front", _pose(_right_arm((1.45, 0, 0), (0.25, 0, 0)))),
        "over": Atom("over", _pose(_right_arm((2.8, 0, 0.1), (0.2, 0, 0)))),
        "side": Atom("side", _pose(_right_arm((0, 0, 1.45), (0, 0, 0.1)))),
        "mouth": Atom("mouth", _pose(_right_arm((0.45, 0, -0.25), (2.3, 0, 0)))),
        "ear": Atom("ear", _pose(_right_arm((0.3, 0, 0.7), (2.4, 0, 0)))),
        "chest": Atom("chest", _pose(_right_arm((0.5, 0, -0.35), (1.5, 0, -0.7)))),
        "back": Atom("back", _pose(_right_arm((-0.6, 0, 0.2), (0.9, 0, 0)))),
        "wave": Atom("wave", _pose(_right_arm((2.5, 0, 0.5), (0.3, 0, 0))),
                     _pose({FOREARM["R"]: (0, 0, 0.5)}), 3.0),
        "punch": Atom("punch", _pose(_right_arm((1.0, 0, 0), (1.0, 0, 0))),
                      _pose(_right_arm((0.45, 0, 0), (-0.95, 0, 0))), 2.0),
        "kick": Atom("kick", _pose({THIGH["R"]: (1.2, 0, 0), SHIN["R"]: (-0.2, 0, 0),
                                    SPINE_LOW: (0.15, 0, 0)})),
        "knee": Atom("knee", _pose({THIGH["R"]: (1.5, 0, 0), SHIN["R"]: (-1.8, 0, 0)})),
        "hop": Atom("hop", _pose({THIGH["R"]: (0.6, 0, 0), SHIN["R"]: (-1.2, 0, 0)}),
                    _pose({ROOT_POS: (0, 0.08, 0)}), 3.0),
        "shake": Atom("shake", _pose({HEAD: (0, 0.1, 0)}), _pose({HEAD: (0, 0.6, 0)}), 3.0),
        "side_bend": Atom("side_bend", _pose({SPINE_LOW: (0, 0, 0.3), SPINE_UP: (0, 0, 0.2)})),
    }
    atoms: dict[str, Atom] = {}
    for name, atom in right.items():
        atoms["R_" + name] = atom
        atoms["L_" + name] = atom.mirrored("L_" + name)
    for name in ("front", "over", "side", "mouth", "chest"):
        atoms["B_" + name] = atoms["R_" + name].plus(atoms["L_" + name], "B_" + name)
    atoms["B_clap"] = Atom("B_clap", _pose({**_right_arm((1.2, 0, -0.3), (0.6, 0, 0)),
                                            UPPER_ARM["L"]: (1.2, 0, 0.3), FOREARM["L"]: (0.6, 0, 0)}),
                           _pose({UPPER_ARM["R"]: (0, 0, 0.3), UPPER_ARM["L"]: (0, 0, -0.3)}), 4.0)
    atoms["B_face"] = Atom("B_face", atoms["B_mouth"].pose,
                           _pose({FOREARM["R"]: (0, 0, 0.3), FOREARM["L"]: (0, 0, -0.3)}), 2.0)
    atoms["bow"] = Atom("bow", _pose({SPINE_LOW: (-0.55, 0, 0), SPINE_UP: (-0.35, 0, 0),
                                      NECK: (-0.2, 0, 0)}))
    atoms["lean_back"] = Atom("lean_back", _pose({SPINE_LOW: (0.3, 0, 0), SPINE_UP: (0.2, 0, 0)}))
    atoms["twist"] = Atom("twist", z, _pose({SPINE_LOW: (0, 0.35, 0), SPINE_UP: (0, 0.3, 0)}), 2.0)
    atoms["nod"] = Atom("nod", _pose({HEAD: (-0.1, 0, 0)}),
                        _pose({HEAD: (-0.35, 0, 0), NECK: (-0.1, 0, 0)}), 3.0)
    atoms["sit"] = Atom("sit", _pose({**_legs((1.5, 0, 0), (-1.5, 0, 0)), SPINE_LOW: (-0.25, 0, 0),
                                      ROOT_POS: (0, -0.42, 0.3)}), hold="stay")
    atoms["squat"] = Atom("squat", _pose({**_legs((1.9, 0, 0), (-2.2, 0, 0)),
                                          SPINE_LOW: (-0.5, 0, 0), ROOT_POS: (0, -0.45, 0.1)}))
    atoms["pick"] = Atom("pick", _pose({**_legs((0.6, 0, 0), (-0.9, 0, 0)), **_right_arm((1.0, 0, 0)),
                                        SPINE_LOW: (-0.7, 0, 0), SPINE_UP: (-0.4, 0, 0),
                                        ROOT_POS: (0, -0.15, 0.1)}))
    walk_osc = {THIGH["R"]: (0.45, 0, 0), THIGH["L"]: (-0.45, 0, 0), SHIN["R"]: (-0.3, 0, 0),
                UPPER_ARM["R"]: (-0.35, 0, 0), UPPER_ARM["L"]: (0.35, 0, 0)}
    atoms["walk"] = Atom("walk", _pose({ROOT_POS: (0, 0, -1.0)}), _pose(walk_osc), 2.0, "stay")
    atoms["turn"] = Atom("turn", _pose({ROOT_ROT: (0, np.pi, 0)}),
                         _pose({THIGH["R"]: (0.25, 0, 0), THIGH["L"]: (-0.25, 0, 0)}), 2.0, "stay")
    atoms["jump"] = Atom("jump", _pose({**_legs((0.5, 0, 0), (-0.9, 0, 0)), ROOT_POS: (0, -0.1, 0)}),
                         _pose({**_legs((-0.5, 0, 0), (0.9, 0, 0)), ROOT_POS: (0, 0.2, 0)}), 2.0)
    atoms["fall"] = Atom("fall", _pose({ROOT_ROT: (-1.3, 0, 0), ROOT_POS: (0, -0.75, -0.3),
                                        **_right_arm((1.2, 0, 0)), UPPER_ARM["L"]: (1.2, 0, 0)}),
                         hold="stay")
    atoms["stretch"] = atoms["B_over"].plus(atoms["lean_back"], "stretch")
    # partner-directed atoms for the two-person classes
    atoms["handshake"] = Atom("handshake", _pose(_right_arm((1.0, 0, 0), (0.3, 0, 0))),
                              _pose({FOREARM["R"]: (0.15, 0, 0)}), 3.0)
    atoms["push"] = Atom("push", _pose({**_right_arm((1.4, 0, 0)), UPPER_ARM["L"]: (1.4, 0, 0),
                                        SPINE_LOW: (-0.25, 0, 0), ROOT_POS: (0, 0, -0.2)}))
    atoms["hug"] = Atom("hug", _pose({**_right_arm((1.3, 0, 0.4), (0.6, 0, -0.6)),
                                      UPPER_ARM["L"]: (1.3, 0, -0.4), FOREARM["L"]: (0.6, 0, 0.6),
                                      ROOT_POS: (0, 0, -0.35)}))
    atoms["pat"] = Atom("pat", _pose(_right_arm((2.0, 0, 0), (0.5, 0, 0))),
                        _pose({FOREARM["R"]: (0.3, 0, 0)}), 2.0)
    atoms["approach"] = Atom("approach", _pose({ROOT_POS: (0, 0, -0.5)}), _pose(walk_osc) * 0.7,
                             1.0, "stay")
    atoms["step_back"] = Atom("step_back", _pose({ROOT_POS: (0, 0, 0.4)}), _pose(walk_osc) * -0.5,
                              1.0, "stay")
    atoms["turn_away"] = Atom("turn_away", _pose({ROOT_ROT: (0, 1.2, 0)}), hold="stay")
    return atoms


ATOMS = _build_atoms()

# Atom families of the single-person classes; three variants each (see module docstring).
_FAMILIES = (
    ("R_front",), ("R_wave",), ("R_mouth",), ("R_ear",), ("B_clap",), ("bow",), ("sit",),
    ("R_kick",), ("nod",), ("R_punch",), ("B_over",), ("walk",), ("jump",), ("pick", "R_chest"),
    ("R_back", "R_front"), ("L_front",), ("R_shake",), ("squat",), ("B_face",), ("R_side",),
    ("L_wave",), ("R_knee",), ("twist",), ("turn",), ("B_chest", "nod"), ("L_mouth",),
    ("R_side_bend",), ("R_hop",), ("fall",), ("R_mouth", "R_chest"), ("L_kick",),
    ("B_front", "bow"),
)
_VARIANTS = ("seq", "rev", "rep")

# Two-person classes: initiator atom x partner reaction ("mirror" = the partner does the same).
_INITIATORS = ("handshake", "R_punch", "push", "R_kick", "hug", "pat", "R_front", "approach", "R_wave")
_REACTIONS = ("mirror", "step_back", "lean_back", "still", "turn_away")


@dataclass(frozen=True)
class Step:
    """An atom on one body (0 = initiator, 1 = partner) over a window of normalised time."""

    atom: Atom
    start: float
    end: float
    envelope: str  # "seq" | "rep"
    body: int = 0
    amplitude: float = 1.0


@dataclass(frozen=True)
class ClassSpec:
    """One action class: its steps, whether time is reversed, and a nominal duration."""

    action: int
    name: str
    steps: tuple[Step, ...]
    reverse: bool
    bodies: int
    base_frames: int


def _single_specs() -> list[tuple[str, tuple[Step, ...], bool, int]]:
    specs = []
    for family in _FAMILIES:
        atoms = [ATOMS[name] for name in family]
        n = len(atoms)
        for variant in _VARIANTS:
            envelope = "rep" if variant == "rep" else "seq"
            # neighbouring atoms overlap a little, as real movements blend
            steps = tuple(Step(atom, max(0.0, i / n - 0.08), min(1.0, (i + 1) / n + 0.08), envelope)
                          for i, atom in enumerate(atoms))
            frames = 36 + 28 * n + (18 if variant == "rep" else 0)
            specs.append(("+".join(family) + ":" + variant, steps, variant == "rev", frames))
    return specs


def _mutual_specs() -> list[tuple[str, tuple[Step, ...], bool, int]]:
    combos = sorted(((a, r) for a in range(len(_INITIATORS)) for r in range(len(_REACTIONS))),
                    key=lambda ar: ((ar[0] + 2 * ar[1]) % len(_REACTIONS), ar[0]))
    specs = []
    for a, r in combos:
        initiator = ATOMS[_INITIATORS[a]]
        steps = [Step(initiator, 0.1, 0.8, "seq", body=0)]
        reaction = _REACTIONS[r]
        if reaction == "mirror":
            steps.append(Step(initiator, 0.15, 0.85, "seq", body=1))
        elif reaction == "step_back":
            steps.append(Step(ATOMS["step_back"], 0.4, 0.9, "seq", body=1))
        elif reaction == "lean_back":
            steps.append(Step(ATOMS["lean_back"], 0.35, 0.85, "seq", body=1))
        elif reaction == "turn_away":
            steps.append(Step(ATOMS["turn_away"], 0.45, 0.95, "seq", body=1))
        specs.append((f"{_INITIATORS[a]}>{reaction}", tuple(steps), False, 90))
    return specs


def _class_table() -> dict[int, ClassSpec]:
    single = iter(_single_specs())
    mutual = iter(_mutual_specs())
    table = {}
    for action in range(1, NUM_NTU_CLASSES + 1):
        name, steps, reverse, frames = next(mutual) if is_mutual(action) else next(single)
        table[action] = ClassSpec(action, name, steps, reverse, 2 if is_mutual(action) else 1, frames)
    return table


CLASSES = _class_table()


def pku_to_ntu_class(label: int) -> int:
    """The motion behind PKU-MMD label ``label`` (1..51): 1..41 single, 42..51 interactions."""
    if not 1 <= label <= NUM_PKU_CLASSES:
        raise ValueError(f"PKU label {label} outside 1..{NUM_PKU_CLASSES}")
    return label if label <= 41 else 50 + (label - 42)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(step: Step, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose weight and oscillation weight of ``step`` at normalised times ``u``."""
    s = np.clip((u - step.start) / (step.end - step.start), 0.0, 1.0)
    inside = portable.sin(np.pi * s)
    if step.envelope == "rep":
        weight = 0.5 - 0.5 * portable.cos(2 * np.pi * 3 * s)
        if step.atom.hold == "stay":
            weight = np.where(s >= 1.0, 1.0, weight)
        return weight, weight
    if step.atom.hold == "stay":
        weight = _smoothstep(s / 0.75)
        return weight, inside
    # fast onset (20 %), hold, slow release (the last 40 %)
    weight = _smoothstep(s / 0.2) * (1.0 - _smoothstep((s - 0.6) / 0.4))
    return weight, weight


def evaluate(steps: tuple[Step, ...], u: np.ndarray, bodies: int,
             amplitude: float | np.ndarray = 1.0) -> np.ndarray:
    """DOF offsets ``(bodies, len(u), 27, 3)`` of ``steps`` at normalised times ``u``.

    ``amplitude`` scales each body's motion (performer style), shape ``()`` or ``(bodies,)``.
    """
    out = np.zeros((bodies, len(u), NUM_DOF, 3))
    amp = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), (bodies,))
    for step in steps:
        weight, osc_weight = envelope(step, u)
        s = np.clip((u - step.start) / (step.end - step.start), 0.0, 1.0)
        wave = portable.sin(2 * np.pi * step.atom.cycles * s) * osc_weight
        scale = amp[step.body] * step.amplitude
        # root displacement keeps its size (a walk covers ground whatever the arm style)
        pose = step.atom.pose.copy()
        pose[:ROOT_POS] *= scale
        out[step.body] += weight[:, None, None] * pose + scale * wave[:, None, None] * step.atom.osc
    return out


def class_motion(spec: ClassSpec, n_frames: int, amplitude: float | np.ndarray = 1.0,
                 extra: tuple[Step, ...] = ()) -> np.ndarray:
    """DOF offsets ``(bodies, n_frames, 27, 3)`` of one performance of ``spec``.

    ``extra`` steps (distractor movements) are added after any time reversal.
    """
    u = np.linspace(0.0, 1.0, n_frames)
    motion = evaluate(spec.steps, 1.0 - u if spec.reverse else u, spec.bodies, amplitude)
    if extra:
        motion += evaluate(extra, u, spec.bodies)
    return motion
