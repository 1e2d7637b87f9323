"""Synthetic PKU-MMD phase I/II stand-ins: untrimmed skeleton txt, label files, split file.

A *recording* (one performer, optionally a partner) chains several actions separated by idle
and background movement; it is captured from three views (L, M, R) at once, so the three
videos share their labels, as in PKU-MMD. Formats as distributed: one skeleton txt per video
(150 floats per frame), one label file per video (``label,start,end,confidence``, 1-based
labels) and a split file (``Training videos:`` / ``Validataion videos:`` headers, each followed
by a line of comma-separated ids).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from skelrep import portable
from skelrep.data.synthetic import actions as act
from skelrep.data.synthetic import scene
from skelrep.data.synthetic.config import SyntheticPKUConfig
from skelrep.data.synthetic.ntu_writer import check_nuisances
from skelrep.data.synthetic.zipout import CompressedMember, compress_member, deterministic_zip
from skelrep.errors import ParamsError
from skelrep.io import write_text_atomic
from skelrep.workers import ordered_map

# Yaw (degrees) of each view relative to the performer's front.
VIEW_YAW = {"L": 45.0, "M": 0.0, "R": -45.0}

_PHASE1_TEST = range(291, 335)
_PHASE1_MISSING = {1, 247, 248, 249, 250}
_PHASE1_MISSING_VIEWS = {"0060-L"}
_PHASE2_TEST_SUBJECTS = (3, 8, 13)

_LAYOUT = {
    1: ("Skeleton.zip", "PKU_Skeleton_Renew", "Label_PKUMMD.zip", "Train_Label_PKU_final",
        "cross-subject.txt"),
    2: ("Skeleton_v2.zip", "PKU_Skeleton_Renew_v2", "Label_PKUMMD_v2.zip", "Label_PKUMMD_v2",
        "cross_subject_v2.txt"),
}
_BACKGROUND = ("R_front", "L_front", "R_mouth", "nod", "R_shake", "R_side", "twist", "R_chest",
               "bow", "R_ear")


@dataclass(frozen=True)
class Segment:
    """A ground-truth action: label (1-based) on frames [start, end) (0-based, half-open)."""

    label: int
    start: int
    end: int
    confidence: int
    written_reversed: bool

    def label_line(self) -> str:
        first, last = self.start + 1, self.end  # 1-based inclusive on disk
        if self.written_reversed:
            first, last = last, first
        return f"{self.label},{first},{last},{self.confidence}"


@dataclass
class Recording:
    """One recording: its video ids per view, joints per view (T, 150) and ground truth."""

    videos: dict[str, np.ndarray]
    segments: list[Segment]


def phase_classes(phase: int) -> tuple[int, ...]:
    return tuple(range(1, act.NUM_PKU_CLASSES + 1)) if phase == 1 else act.PKU2_CLASS_IDS


def recording_names(phase: int, config: SyntheticPKUConfig) -> tuple[list[str], list[str]]:
    """Base names (without view suffix) of the train and test recordings."""
    if phase == 1:
        train_pool = [i for i in range(2, 365) if i not in _PHASE1_MISSING and i not in _PHASE1_TEST]
        train = _spread(train_pool, config.train_recordings, "train")
        test = _spread(list(_PHASE1_TEST), config.test_recordings, "test")
        return [f"{i:04d}" for i in train], [f"{i:04d}" for i in test]
    train_subjects = [s for s in range(1, 14) if s not in _PHASE2_TEST_SUBJECTS]

    def names(subjects: list[int], count: int) -> list[str]:
        if count > 26 * len(subjects):
            raise ParamsError("synthetic.pku.recordings", f"at most {26 * len(subjects)} per split")
        return [f"A{k // len(subjects) + 1:02d}N{subjects[k % len(subjects)]:02d}" for k in range(count)]

    return (names(train_subjects, config.train_recordings),
            names(list(_PHASE2_TEST_SUBJECTS), config.test_recordings))


def _spread(pool: list[int], count: int, split: str) -> list[int]:
    if not 1 <= count <= len(pool):
        raise ParamsError(f"synthetic.pku.{split}_recordings", f"need 1..{len(pool)}, got {count}")
    return [pool[i] for i in np.linspace(0, len(pool) - 1, count).round().astype(int)]


def _schedules(seed: int, phase: int, names: list[str], config: SyntheticPKUConfig,
               split: str) -> dict[str, list[int]]:
    """Labels of each recording: shuffled rounds over all classes, so every class occurs."""
    classes = phase_classes(phase)
    rng = scene.rng_for(seed, f"pku-schedule-{split}", phase)
    needed = len(names) * config.actions_per_video
    labels: list[int] = []
    while len(labels) < needed:
        labels.extend(int(c) for c in rng.permutation(classes))
    k = config.actions_per_video
    return {name: labels[i * k:(i + 1) * k] for i, name in enumerate(names)}


def render_recording(seed: int, phase: int, name: str, index: int, labels: list[int],
                     config: SyntheticPKUConfig) -> Recording:
    """Synthesize one recording (views L, M, R) performing ``labels`` in order."""
    rng = scene.rng_for(seed, "pku-recording", phase, index)
    actor = scene.make_performer(seed, 10_000 * phase + index)
    partner = scene.make_performer(seed, 10_000 * phase + 5_000 + index)
    # timeline: gap, action, gap, action, ..., gap
    gaps = rng.integers(config.gap_frames[0], config.gap_frames[1] + 1, len(labels) + 1)
    lengths = []
    for label in labels:
        spec = act.CLASSES[act.pku_to_ntu_class(label)]
        tempo = float(scene.log_uniform(rng, *config.tempo_range))
        lengths.append(max(12, int(round(spec.base_frames * actor.tempo * tempo))))
    starts = gaps[0] + np.concatenate([[0], np.cumsum(np.add(lengths[:-1], gaps[1:-1]))]).astype(int)
    total = int(starts[-1] + lengths[-1] + gaps[-1])
    dof = np.zeros((2, total, act.NUM_DOF, 3))
    present = np.zeros((2, total), dtype=bool)
    present[0] = True
    segments = []
    for i, (label, start, n) in enumerate(zip(labels, starts, lengths, strict=True)):
        spec = act.CLASSES[act.pku_to_ntu_class(label)]
        amplitude = np.array([actor.amplitude, partner.amplitude]) * rng.uniform(0.85, 1.15, 2)
        motion = act.class_motion(spec, n, amplitude[:spec.bodies])
        end = start + n
        gap_before, gap_after = int(gaps[i]), int(gaps[i + 1])
        # move from rest into the first pose and back to rest in the neighbouring gaps (a
        # stand-up starts seated, a walk ends elsewhere); each uses at most half of a gap
        settle_in, settle_out = min(gap_before // 2, 25), min(gap_after // 2, 25)
        ramp_in = np.linspace(0.0, 1.0, settle_in + 1)[1:, None, None]
        ramp_out = np.linspace(1.0, 0.0, settle_out + 1)[:-1, None, None]
        for body in range(spec.bodies):
            dof[body, start - settle_in:start] += motion[body, 0] * ramp_in
            dof[body, start:end] += motion[body]
            dof[body, end:end + settle_out] += motion[body, -1] * ramp_out
        if spec.bodies == 2:
            before = min(int(rng.integers(8, 26)), gap_before // 2)
            present[1, start - before:end + min(int(rng.integers(8, 26)), gap_after // 2)] = True
        if rng.random() < config.background_prob and gap_after >= 30:
            atom = act.ATOMS[_BACKGROUND[rng.integers(len(_BACKGROUND))]]
            step = act.Step(atom, 0.0, 1.0, "seq", amplitude=rng.uniform(0.15, 0.3))
            begin, stop = end + settle_out, end + gap_after - gap_after // 4
            dof[0, begin:stop] += act.evaluate((step,), np.linspace(0, 1, stop - begin), 1)[0]
        segments.append(Segment(label, int(start), int(end),
                                1 if rng.random() < config.low_confidence_fraction else 2,
                                bool(rng.random() < config.reversed_label_fraction)))
    facing = rng.uniform(-0.25, 0.25)
    origin = rng.uniform(-0.3, 0.3, 2)
    partner_origin = origin + portable.apply(scene.rotation_y(facing), (0.0, 0.0, -rng.uniform(0.9, 1.4)))[[0, 2]]
    world = []
    for body, (who, at, yaw) in enumerate(((actor, origin, facing),
                                           (partner, partner_origin, facing + np.pi))):
        pose = dof[body] + scene.posture(who) + scene.idle_motion(rng, total, who.sway)
        world.append(scene.pose_body(who, pose, at, yaw)[0])
    rig_rng = scene.rng_for(seed, "pku-rig", phase, index)
    height, distance = rig_rng.uniform(0.6, 1.4), rig_rng.uniform(2.4, 3.4)
    videos = {}
    nuisance_rng = scene.rng_for(seed, "pku-nuisance", phase, index)
    for view, yaw in VIEW_YAW.items():
        if f"{name}-{view}" in _PHASE1_MISSING_VIEWS and phase == 1:
            continue
        cam = scene.Camera((yaw + rig_rng.normal(0, 5)) * scene.DEG, distance + rig_rng.uniform(-0.2, 0.2),
                           height, rig_rng.normal(0, 0.03))
        matrix = scene.view_distortion(nuisance_rng, config.distortion_scale,
                                       config.distortion_shear, config.tilt_deg)
        camera_xyz = np.stack([cam.world_to_camera(w) for w in world])
        camera_xyz = scene.apply_distortion(camera_xyz, matrix, camera_xyz[0, :, 1].mean(axis=0))
        joints = np.zeros((total, 2, 25, 3))
        for body in range(2):
            xyz, state = scene.tracking_noise(rng, camera_xyz[body], config.noise_m,
                                              config.inferred_noise_m, config.inferred_rate)
            for first in range(0, total, config.occlusion_window):
                window = slice(first, first + config.occlusion_window)
                scene.occlude(nuisance_rng, xyz[window], state[window], config.occluded_joints,
                              config.occlusion_span)
            joints[present[body], body] = xyz[present[body]]
        videos[view] = joints.reshape(total, 150)
    return Recording(videos, segments)


_ROW_FMT = " ".join(["%.6f"] * 150) + "\n"


def format_skeleton_txt(joints: np.ndarray) -> bytes:
    """PKU-MMD skeleton text: one line of 150 values per frame, 6 decimals."""
    return "".join(_ROW_FMT % tuple(row) for row in (joints + 0.0).tolist()).encode("ascii")


def format_labels(segments: list[Segment]) -> bytes:
    return "".join(seg.label_line() + "\n" for seg in segments).encode("ascii")


def format_split(train: list[str], test: list[str]) -> str:
    """The official split-file layout, misspelt header and trailing commas included."""
    return (f"Training videos: \n{', '.join(train)}, \n"
            f"Validataion videos: \n{', '.join(test)},\n")


def _render_videos(job: tuple[int, int, str, int, list[int], SyntheticPKUConfig, str, str]
                   ) -> list[tuple[str, CompressedMember, CompressedMember]]:
    """The videos of one recording: ``[(video id, skeleton member, label member)]`` in view
    order, deflated; a pure function of the job (run in a worker, so that recordings render
    and compress in parallel)."""
    seed, phase, name, index, labels, config, skel_dir, label_dir = job
    recording = render_recording(seed, phase, name, index, labels, config)
    label_bytes = format_labels(recording.segments)
    return [(f"{name}-{view}", compress_member(f"{skel_dir}/{name}-{view}.txt", format_skeleton_txt(joints)),
             compress_member(f"{label_dir}/{name}-{view}.txt", label_bytes))
            for view, joints in recording.videos.items()]


def write_pku_archives(out_dir: Path, phase: int, config: SyntheticPKUConfig,
                       seed: int, workers: int = 0) -> list[tuple[Path, str]]:
    """Write the synthetic PKU-MMD ``phase`` (1 or 2) into ``out_dir``.

    Returns ``[(skeleton zip, 'skeleton'), (label zip, 'label'), (split file, 'split')]``:
    phase 1 ``Skeleton.zip`` (``PKU_Skeleton_Renew/<id>.txt``), ``Label_PKUMMD.zip``
    (``Train_Label_PKU_final/<id>.txt``), ``cross-subject.txt``; phase 2 ``Skeleton_v2.zip``
    (``PKU_Skeleton_Renew_v2/``), ``Label_PKUMMD_v2.zip`` (``Label_PKUMMD_v2/``),
    ``cross_subject_v2.txt``. As for NTU, the bytes do not depend on ``workers`` (processes
    that render recordings, 0 = one per core): recordings are written in sorted order.
    """
    if phase not in _LAYOUT:
        raise ParamsError("synthetic.pku.phase", f"expected 1 or 2, got {phase!r}")
    n_classes = len(phase_classes(phase))
    check_nuisances("synthetic.pku", config)
    if config.occlusion_window < 1:
        raise ParamsError("synthetic.pku.occlusion_window", "need >= 1")
    if config.test_recordings * config.actions_per_video < n_classes:
        raise ParamsError("synthetic.pku.test_recordings",
                          f"test_recordings * actions_per_video must cover all {n_classes} classes")
    skel_zip, skel_dir, label_zip, label_dir, split_name = _LAYOUT[phase]
    out_dir = Path(out_dir)
    train, test = recording_names(phase, config)
    labels = {**_schedules(seed, phase, train, config, "train"),
              **_schedules(seed, phase, test, config, "test")}
    index = {name: i for i, name in enumerate(train + test)}
    names = sorted(labels)
    jobs = [(seed, phase, name, index[name], labels[name], config, skel_dir, label_dir) for name in names]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    videos_of: dict[str, list[str]] = {"train": [], "test": []}
    with deterministic_zip(out_dir / skel_zip) as skel_out, \
            deterministic_zip(out_dir / label_zip) as label_out, \
            ordered_map(_render_videos, jobs, workers) as results:  # a recording per task: few, uneven
        for name, videos in tqdm(zip(names, results, strict=True), total=len(jobs),
                                 desc=f"synthetic pku{phase}", unit="recording", mininterval=1.0):
            for video, skeleton, label in videos:
                skel_out.add_compressed(skeleton)
                label_out.add_compressed(label)
                videos_of["train" if name in train else "test"].append(video)
    split_path = out_dir / split_name
    write_text_atomic(split_path, format_split(videos_of["train"], videos_of["test"]))
    return [(out_dir / skel_zip, "skeleton"), (out_dir / label_zip, "label"), (split_path, "split")]
