"""Is the data in the joint order its layout says? A plausibility check run while preprocessing.

A wrong joint order (a dataset whose files list the joints in another order than the layout)
goes through every stage silently: the models learn from the scrambled skeleton, only worse.
This check looks at the normalised samples as they are written (it reads them, it never changes
them) and, per dataset, measures:

- ``head_above_hip``: the fraction of frames in which the head is above the hip joint;
- ``feet_below_knees``: the fraction of (frame, leg) pairs in which the foot (or ankle) is below
  its knee;
- ``bone_length_cv``: per bone of the layout's tree, the coefficient of variation (std / mean)
  of its length over each sequence, medianed over the dataset's sequences. Bones are rigid, so a
  bone that is really two unrelated joints changes length as the body moves.

"Up" is the layout's ``align_z`` vector, ``joint[align_z[1]] - joint[align_z[0]]`` (NTU: SpineBase
to SpineMid, the trunk), measured in each frame. It is the direction the ``isc`` normalisation
rotates onto +z, and with ``umurl`` (no z-alignment) the data keeps its own axes, so no fixed axis
is "up" after normalisation; the trunk is, in every frame and for any coordinate convention (y-up
Kinect, z-up motion capture). Both checks are invariant to the centring and the rotations the
normalisation applies, so they give the same result on raw and on normalised coordinates.

The joints are found by name (:func:`layout_roles`): ``head``; the hip joint (``hip_center``,
``SpineBase``, ``pelvis``, ...); every joint named ``*foot*`` (else ``*ankle*``) with its nearest
ancestor named ``*knee*``. A layout without such names, or without ``align_z``, skips the
direction checks (recorded as skipped); 2-D layouts skip the whole check (projected bone lengths
change with the view). A failed check is a warning naming the dataset, the check, the fraction
and the likely cause, and it is recorded in the preprocess summary; it never stops the stage.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import portable
from .layout import LayoutRoles, SkeletonLayout, layout_roles

log = logging.getLogger(__name__)

MIN_FRACTION = 0.75  # head above hip / feet below knees in at least this share of frames
MAX_BONE_CV = 0.4    # the median (over sequences) length CV of every bone stays below this;
# Kinect v2 thumb - hand bones, a few cm long, reach ~0.3 on the synthetic PKU-MMD data
LIKELY_CAUSE = "joint order does not match the layout?"


@dataclass(frozen=True, eq=False)
class SampleCheck:
    """What one sample adds to a :class:`LayoutCheck` (:meth:`LayoutCheck.measure`): computed
    where the sample is (a pool worker) and merged in sample order by the writing process, with
    the same result as :meth:`LayoutCheck.add` on the sample there."""

    frame: np.ndarray | None  # (V, C) first tracked frame of person 0, None when untracked
    head: tuple[int, int] = (0, 0)  # passing frames, frames
    legs: tuple[int, int] = (0, 0)
    cv: tuple[np.ndarray, ...] = ()  # (E,) CV per bone, one per person-sequence


@dataclass
class LayoutCheck:
    """Accumulates the checks over a dataset's samples: :meth:`add` each normalised sample,
    then :meth:`result` (and :meth:`warn`). Keeps the first sample's first frame for the
    skeleton drawing (:attr:`example`)."""

    dataset: str
    layout: SkeletonLayout
    roles: LayoutRoles = field(init=False)
    example: tuple[str, np.ndarray] | None = None  # (sample name, (V, C) frame of person 0)
    _head: list = field(default_factory=lambda: [0, 0])  # passing frames, frames
    _legs: list = field(default_factory=lambda: [0, 0])
    _cv: list = field(default_factory=list)  # (E,) CV per bone, one row per person-sequence

    def __post_init__(self) -> None:
        self.roles = layout_roles(self.layout)
        self._edges = np.array(self.layout.edges, dtype=np.int64).reshape(-1, 2)

    @property
    def active(self) -> bool:
        return self.layout.channels == 3

    def add(self, name: str, joint: np.ndarray, num_frame: int) -> None:
        """One normalised sample, (C, T, V, M), of which the first ``num_frame`` frames are real."""
        self.merge(name, self.measure(joint, num_frame))

    def measure(self, joint: np.ndarray, num_frame: int) -> SampleCheck:
        """What :meth:`add` would add for this sample, without adding it (reads only the layout)."""
        x = np.asarray(joint[:, :num_frame], dtype=np.float64).transpose(3, 1, 2, 0)  # (M, T, V, C)
        present = np.any(x != 0, axis=(2, 3))  # (M, T): frames where the person is tracked
        frame = x[0, int(np.argmax(present[0]))].astype(np.float32) if present[0].any() else None
        if not self.active:
            return SampleCheck(frame)
        head, legs, cv = [0, 0], [0, 0], []
        for person, frames in zip(x, present, strict=True):
            p = person[frames]  # (N, V, 3)
            if len(p):
                self._directions(p, head, legs)
                cv += self._bones(p)
        return SampleCheck(frame, (head[0], head[1]), (legs[0], legs[1]), tuple(cv))

    def merge(self, name: str, part: SampleCheck) -> None:
        """Add one sample's :meth:`measure` (samples in file order: the first tracked one is the
        drawing's example)."""
        if self.example is None and part.frame is not None:
            self.example = (name, part.frame)
        for total, add in ((self._head, part.head), (self._legs, part.legs)):
            total[0] += add[0]
            total[1] += add[1]
        self._cv.extend(part.cv)

    def _directions(self, p: np.ndarray, head: list, legs: list) -> None:
        pair, roles = self.layout.align_z_pair, self.roles
        if pair is None:
            return
        up = p[:, pair[1]] - p[:, pair[0]]
        norm = portable.norm(up)
        ok = norm > 0
        if not ok.any():
            return
        up = up[ok] / norm[ok, None]
        p = p[ok]
        if roles.head is not None and roles.hip is not None:
            height = portable.dot(p[:, roles.head] - p[:, roles.hip], up)
            head[0] += int((height > 0).sum())
            head[1] += len(height)
        for knee, foot in roles.legs:
            height = portable.dot(p[:, foot] - p[:, knee], up)
            legs[0] += int((height < 0).sum())
            legs[1] += len(height)

    def _bones(self, p: np.ndarray) -> list[np.ndarray]:
        """The person-sequence's CV row, in a list (empty below two frames or without bones)."""
        if len(p) < 2 or not len(self._edges):
            return []
        lengths = portable.norm(p[:, self._edges[:, 0]] - p[:, self._edges[:, 1]])  # (N, E)
        # a joint at exactly 0 other than the centre is untracked (the normalisation keeps it 0)
        missing = np.all(p == 0, axis=2)
        missing[:, self.layout.center_joint] = False
        lengths[missing[:, self._edges[:, 0]] | missing[:, self._edges[:, 1]]] = np.nan
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # bones without a tracked frame
            mean = np.nanmean(lengths, axis=0)
            cv = np.nanstd(lengths, axis=0) / mean
        cv[~(mean > 0) | (np.sum(np.isfinite(lengths), axis=0) < 2)] = np.nan
        return [cv]

    def result(self) -> dict:
        """The checks as a JSON-ready mapping (fractions and CVs rounded to 4 digits)."""
        layout, roles, names = self.layout, self.roles, self.layout.joint_names
        out: dict = {"layout": layout.name, "thresholds": {"min_fraction": MIN_FRACTION,
                                                           "max_bone_cv": MAX_BONE_CV}}
        if not self.active:
            out["skipped"] = "2-D layout: projected bone lengths and heights depend on the view"
            return out
        checks: dict = {}
        z = layout.align_z_pair
        up = None if z is None else f"{names[z[1]]} - {names[z[0]]}"
        out["up"] = up
        if up is None:
            reason = "the layout has no align_z joints to define up"
            checks["head_above_hip"] = {"skipped": reason}
            checks["feet_below_knees"] = {"skipped": reason}
        else:
            if roles.head is None or roles.hip is None:
                checks["head_above_hip"] = {"skipped": "no joint named head and hip (hip_center, "
                                            "SpineBase, pelvis, ...) in the layout"}
            else:
                checks["head_above_hip"] = _fraction(*self._head, [names[roles.head], names[roles.hip]])
            if not roles.legs:
                checks["feet_below_knees"] = {"skipped": "no joints named *foot* / *ankle* below a "
                                              "*knee* in the layout"}
            else:
                checks["feet_below_knees"] = _fraction(*self._legs, [[names[k], names[f]] for k, f in roles.legs])
        checks["bone_length_cv"] = self._cv_result()
        out["checks"] = checks
        out["passed"] = all(c.get("passed", True) for c in checks.values())
        return out

    def _cv_result(self) -> dict:
        if not self._cv:
            return {"skipped": "no sequence with two tracked frames"}
        cv = np.array(self._cv)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bones (never tracked)
            median = np.nanmedian(cv, axis=0)
        names = self.layout.joint_names
        by_bone = {f"{names[c]}-{names[p]}": round(float(m), 4)
                   for (c, p), m in zip(self._edges, median, strict=True) if np.isfinite(m)}
        failing = sorted((b for b, m in by_bone.items() if m > MAX_BONE_CV), key=lambda b: -by_bone[b])
        worst = max(by_bone.values(), default=0.0)
        return {"sequences": len(cv), "max_median_cv": worst, "failing_bones": failing,
                "median_cv_by_bone": by_bone, "passed": not failing}

    def warn(self, result: dict | None = None) -> dict:
        """Log a warning per failed check; return the result."""
        result = self.result() if result is None else result
        for check, r in result.get("checks", {}).items():
            if r.get("passed", True):
                continue
            if check == "bone_length_cv":
                detail = (f"{len(r['failing_bones'])} bone(s) change length over time (median "
                          f"coefficient of variation above {MAX_BONE_CV}; worst "
                          f"{r['failing_bones'][0]}: {r['median_cv_by_bone'][r['failing_bones'][0]]:.2f})")
            else:
                what = "the head is above the hip" if check == "head_above_hip" else "the feet are below the knees"
                detail = (f"{what} in only {r['fraction']:.0%} of {r['frames']} frames (expected at "
                          f"least {MIN_FRACTION:.0%}; up = {result['up']})")
            log.warning("%s: layout check %s failed: %s; %s (layout %s; see the skeleton drawing "
                        "in the preprocess reports)", self.dataset, check, detail, LIKELY_CAUSE,
                        self.layout.name)
        return result


def _fraction(passing: int, frames: int, joints) -> dict:
    if not frames:
        return {"skipped": "no frame with a non-zero up vector", "joints": joints}
    fraction = passing / frames
    return {"fraction": round(fraction, 4), "frames": frames, "joints": joints,
            "passed": fraction >= MIN_FRACTION}
