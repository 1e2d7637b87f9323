"""The synthetic benchmark suite: determinism, kinematics, formats, protocols, calibration."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from skelrep.data import ntu, pku
from skelrep.data.synthetic import (
    CLASSES,
    PKU2_CLASS_IDS,
    SyntheticNTUConfig,
    SyntheticPKUConfig,
    format_skeleton,
    is_mutual,
    ntu_writer,
    render_recording,
    render_sample,
    scene,
    write_ntu_archives,
    write_pku_archives,
)
from skelrep.data.synthetic.kinematics import FK_PARENT, LEAF_JOINTS
from skelrep.data.synthetic.pku_writer import format_labels, format_skeleton_txt, recording_names
from skelrep.errors import ParamsError
from skelrep.skeleton import NTU_EDGES, NTU_PARENTS

TINY_NTU = SyntheticNTUConfig(performers=(1, 3), setups=(1, 2), cameras=(1, 2), classes=2)


def _members(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def generate_sequence(action: int, performer: int, camera: int, setup: int, seed: int = 0,
                      replication: int = 1, config: SyntheticNTUConfig | None = None,
                      distort: bool = False) -> np.ndarray:
    """Noise-free camera-space joints ``(T, M, 25, 3)`` of one sample (M = 1 or 2 bodies), the
    first steps of ``render_sample``.

    Without ``distort`` these are the forward-kinematics skeletons (constant bone lengths);
    with it, the sample's view distortion (``distortion_*``, ``tilt_deg``) is applied too
    (before sensor noise and occlusion).
    """
    config = config or SyntheticNTUConfig()
    joints, _ = ntu_writer.performance(seed, setup, performer, replication, action, config)
    cam = scene.make_camera(seed, setup, ntu_writer.CAMERA_YAW[replication][camera], (camera,))
    xyz = cam.world_to_camera(joints)
    if distort:
        xyz = ntu_writer._distort(seed, setup, camera, performer, replication, action, config, xyz)
    return xyz.transpose(1, 0, 2, 3)


# ------------------------------------------------------------------------------ kinematics

def test_kinematic_tree_has_the_ntu_edges():
    fk_edges = {frozenset((c, p)) for c, p in enumerate(FK_PARENT) if p >= 0}
    assert fk_edges == {frozenset(edge) for edge in NTU_EDGES}


@pytest.mark.parametrize("action", [1, 7, 12, 29, 55, 110])
def test_bone_lengths_are_constant_within_a_sequence(action):
    seq = generate_sequence(action, performer=3, camera=1, setup=2, seed=5)
    assert seq.shape[1] == (2 if is_mutual(action) else 1) and seq.shape[2:] == (25, 3)
    bones = np.linalg.norm(seq - seq[:, :, list(NTU_PARENTS)], axis=-1)
    assert np.abs(bones - bones[:1]).max() < 1e-9
    assert seq[..., 2].min() > 1.5 and seq[..., 2].max() < 5.0  # Kinect depth range
    assert seq.std(axis=0).max() > 0.05  # something moves


def test_view_distortion_is_one_affine_map_of_the_fk_skeleton():
    # bone lengths hold for the forward-kinematics skeleton; the per-sample view distortion is
    # applied afterwards to the rendered coordinates, as one affine map shared by all bodies
    clean = generate_sequence(55, performer=3, camera=2, setup=2, seed=5).reshape(-1, 3)
    seq = generate_sequence(55, performer=3, camera=2, setup=2, seed=5, distort=True)
    design = np.concatenate([clean, np.ones((len(clean), 1))], axis=1)
    fit, *_ = np.linalg.lstsq(design, seq.reshape(-1, 3), rcond=None)
    assert np.abs(design @ fit - seq.reshape(-1, 3)).max() < 1e-9
    assert np.abs(fit[:3] - np.eye(3)).max() > 0.05  # not a no-op
    off = SyntheticNTUConfig(distortion_scale=(1.0, 1.0), distortion_shear=0.0, tilt_deg=0.0)
    np.testing.assert_allclose(generate_sequence(55, 3, 2, 2, seed=5, config=off, distort=True),
                               generate_sequence(55, 3, 2, 2, seed=5, config=off), atol=1e-12)


def test_class_table():
    assert len(CLASSES) == 120
    assert [a for a in CLASSES if CLASSES[a].bodies == 2] == [*range(50, 61), *range(106, 121)]
    assert len({spec.name for spec in CLASSES.values()}) == 120  # distinct motions
    assert len(PKU2_CLASS_IDS) == 41 and set(PKU2_CLASS_IDS) <= set(range(1, 52))


# ------------------------------------------------------------------------------ NTU archives

def test_ntu_archives_are_byte_identical_per_seed(tmp_path):
    """... and whatever the number of rendering processes."""
    first = write_ntu_archives(tmp_path / "a", "ntu60", TINY_NTU, seed=1, workers=1)
    again = write_ntu_archives(tmp_path / "b", "ntu60", TINY_NTU, seed=1, workers=2)
    other = write_ntu_archives(tmp_path / "c", "ntu60", TINY_NTU, seed=2)
    (path, role), = first
    assert role == "skeleton" and path.name == "nturgbd_skeletons_s001_to_s017.zip"
    assert path.read_bytes() == again[0][0].read_bytes()
    assert path.read_bytes() != other[0][0].read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))
    names = list(_members(path))
    assert names == sorted(names) and len(names) == 2 * 2 * 2
    assert all(n.startswith("nturgb+d_skeletons/") and n.endswith(".skeleton") for n in names)


def test_ntu_archive_takes_spooled_to_disk_and_camera_order(tmp_path, monkeypatch):
    """Takes render all their cameras at once and later cameras wait in spools: a spool that
    spills to disk, and cameras listed in another order, give the same bytes, and each
    member equals the file ``render_sample`` gives on its own."""
    config = SyntheticNTUConfig(performers=(1, 3, 2), setups=(1, 2), cameras=(1, 2, 3), classes=2)
    (reference, _), = write_ntu_archives(tmp_path / "a", "ntu60", config, seed=5, workers=1)
    monkeypatch.setattr(ntu_writer, "_SPOOL_MEMORY", 1)
    reordered = SyntheticNTUConfig(performers=(1, 3, 2), setups=(1, 2), cameras=(3, 1, 2), classes=2)
    (spilled, _), = write_ntu_archives(tmp_path / "b", "ntu60", reordered, seed=5, workers=2)
    assert spilled.read_bytes() == reference.read_bytes()
    members = _members(reference)
    assert len(members) == 3 * 3 * 2
    for key in [(1, 3, 1, 1, 2), (2, 2, 3, 1, 1), (1, 1, 2, 1, 1)]:
        sample = render_sample(5, *key, config)
        assert members[f"nturgb+d_skeletons/{sample.name}.skeleton"] == format_skeleton(sample)


def test_ntu_protocols_cover_every_class(tmp_path):
    config = SyntheticNTUConfig(classes=2)
    archives = {ds: write_ntu_archives(tmp_path, ds, config, seed=0)[0][0] for ds in ("ntu60", "ntu120")}
    assert archives["ntu120"].name == "nturgbd_skeletons_s018_to_s032.zip"
    stems = {ds: [Path(n).stem for n in _members(p)] for ds, p in archives.items()}
    datasets = {"ntu60": stems["ntu60"], "ntu120": stems["ntu60"] + stems["ntu120"]}
    for dataset, names in datasets.items():
        parsed = [ntu.parse_ntu_name(s) for s in names]
        assert all(ntu.in_dataset(n, dataset) for n in parsed)
        classes = {n.action for n in parsed}
        assert len(classes) == (2 if dataset == "ntu60" else 4)
        for benchmark in ntu.BENCHMARKS[dataset]:
            for split in ("train", "test"):
                covered = {n.action for n in parsed if ntu.ntu_split(n, dataset, benchmark) == split}
                assert covered == classes, (dataset, benchmark, split)


def test_ntu_config_that_empties_a_split_is_rejected(tmp_path):
    with pytest.raises(ParamsError, match="xsub"):
        write_ntu_archives(tmp_path, "ntu60", SyntheticNTUConfig(performers=(1, 2), classes=1), 0)
    with pytest.raises(ParamsError, match="xview"):
        write_ntu_archives(tmp_path, "ntu60", SyntheticNTUConfig(cameras=(2, 3), classes=1), 0)
    assert not list(tmp_path.iterdir())


def test_skeleton_file_round_trips_through_the_parser():
    # force every artefact so that each one is exercised
    config = SyntheticNTUConfig(crlf_fraction=1.0, empty_frame_fraction=1.0, noise_body_fraction=1.0)
    for action in (4, 52):
        sample = render_sample(3, 1, 2, 1, 1, action, config)
        data = format_skeleton(sample)
        assert b"\r\n" in data
        skel = ntu.parse_skeleton(data, sample.name)
        assert skel.num_frames == sample.frame_count
        assert skel.body_count[0] == 0  # empty leading frame
        real_bodies = 2 if is_mutual(action) else 1
        assert skel.body_count.max() == real_bodies + 1  # plus the spurious body
        noise = [b for b in sample.bodies if len(b.joints) <= 11]
        assert len(noise) == 1
        for body in sample.bodies:
            assert body.body_id > 2**31
            rows = np.arange(body.first, body.first + len(body.joints))
            slots = np.array([list(skel.body_id[t]).index(str(body.body_id)) for t in rows])
            parsed = skel.joints[rows, slots]
            np.testing.assert_allclose(parsed, body.joints, rtol=2e-6, atol=2e-6)
            assert set(np.unique(parsed[..., 11])) <= {0.0, 1.0, 2.0}
            lost = parsed[..., 11] == 0  # untracked (occluded) joints are written as zeros
            assert (parsed[..., :3][lost] == 0).all()
        tracked = sample.bodies[0].joints
        assert (tracked[:, list(LEAF_JOINTS), 7:11] == 0).all()
        assert np.allclose(np.linalg.norm(tracked[:, 0, 7:11], axis=-1), 1.0, atol=1e-6)


# ------------------------------------------------------------------------------ calibration

def _features(sample, n_time: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Static (mean pose) and temporal (resampled trajectory + velocity) features."""
    bodies = sorted((b for b in sample.bodies if len(b.joints) > 11), key=lambda b: -len(b.joints))
    seq = np.zeros((sample.frame_count, 2, 25, 3))
    for slot, body in enumerate(bodies[:2]):
        seq[body.first:body.first + len(body.joints), slot] = body.joints[..., :3]
    seq = seq[np.abs(seq[:, 0]).sum(axis=(1, 2)) > 0]
    seq = seq - seq[:1, :1, :1]  # relative to the first SpineBase
    static = (seq - seq[:, :1, :1]).mean(axis=0).ravel()
    traj = seq[np.linspace(0, len(seq) - 1, n_time).round().astype(int)]
    return static, np.concatenate([traj.ravel(), np.diff(traj, axis=0).ravel()])


def _ridge_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, n_classes: int) -> float:
    """Least-squares linear classifier (kernel form: few samples, many features)."""
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    gram = x[train] @ x[train].T
    alpha = np.linalg.solve(gram + 0.1 * np.trace(gram) / len(gram) * np.eye(len(gram)),
                            np.eye(n_classes)[y[train]])
    pred = (x[~train] @ x[train].T @ alpha).argmax(1)
    return float((pred == y[~train]).mean())


NO_NUISANCE = SyntheticNTUConfig(distortion_scale=(1.0, 1.0), distortion_shear=0.0, tilt_deg=0.0,
                                 occluded_joints=0, idle_fraction=(0.0, 0.0), tempo_range=(1.0, 1.0))


def _xsub_accuracies(config: SyntheticNTUConfig, n_classes: int) -> tuple[float, float]:
    performers, setups = (1, 2, 3, 6, 4, 7, 5, 10), (1, 2, 3, 4)
    static, temporal, labels, train = [], [], [], []
    for i, performer in enumerate(performers):
        for camera in (1, 2):
            for action in range(1, n_classes + 1):
                sample = render_sample(0, setups[i % 4], camera, performer, 1, action, config)
                s, t = _features(sample)
                static.append(s)
                temporal.append(t)
                labels.append(action - 1)
                train.append(performer in ntu.XSUB_TRAIN_SUBJECTS["ntu60"])
    labels, train = np.array(labels), np.array(train)
    return (_ridge_accuracy(np.array(static), labels, train, n_classes),
            _ridge_accuracy(np.array(temporal), labels, train, n_classes))


def test_calibration_static_cues_are_far_below_temporal_ones():
    # Fixed, untrained features (a stand-in for a randomly initialised encoder) must stay far
    # from the ceiling: the per-sample nuisances (view distortion, occlusion, idle and tempo)
    # hide the motion from them. Without the nuisances the same motions are easy, so the class
    # identity is intact and an encoder that learns the invariances can recover it.
    n_classes = 24  # 8 families x 3 variants that share their mean pose
    chance = 1 / n_classes
    acc_static, acc_temporal = _xsub_accuracies(SyntheticNTUConfig(), n_classes)
    clean_static, clean_temporal = _xsub_accuracies(NO_NUISANCE, n_classes)
    print(f"xsub linear accuracy: static {acc_static:.3f}, temporal {acc_temporal:.3f}; "
          f"without nuisances: static {clean_static:.3f}, temporal {clean_temporal:.3f}")
    assert 2 * chance < acc_static < 0.3
    assert acc_temporal > 1.5 * acc_static  # time matters more than the mean pose
    assert acc_temporal < 0.5  # far from saturated: fixed features are hurt by the nuisances
    assert clean_static < 0.5 and clean_temporal > acc_temporal + 0.3  # the motion is intact
    assert clean_temporal < 0.95


# ------------------------------------------------------------------------------ PKU-MMD

def test_pku_recording_ground_truth_is_exact():
    config = SyntheticPKUConfig()
    labels = [42, 7, 51, 3, 30]
    rec = render_recording(0, 1, "0100", 0, labels, config)
    assert [s.label for s in rec.segments] == labels
    for view, joints in rec.videos.items():
        assert joints.shape[1] == 150
        parsed = pku.parse_pku_skeleton(format_skeleton_txt(joints), view)
        np.testing.assert_allclose(parsed.reshape(len(joints), 150), joints, atol=1e-6)
    total = len(rec.videos["M"])
    previous_end = 0
    for seg in rec.segments:
        assert previous_end < seg.start < seg.end < total  # inside, ordered, with gaps
        previous_end = seg.end
    body2 = np.abs(rec.videos["M"][:, 75:]).sum(1) > 0
    for seg in rec.segments:  # the partner is there exactly around interactions
        assert body2[seg.start:seg.end].all() == (seg.label >= 42)
    rows = pku.parse_pku_labels(format_labels(rec.segments), "labels")
    assert [tuple(r) for r in rows] == [(s.label, s.start + 1, s.end, s.confidence)
                                        for s in rec.segments]


def test_pku_archives_layout_splits_and_determinism(tmp_path):
    config = SyntheticPKUConfig(train_recordings=1, test_recordings=1, actions_per_video=41,
                                gap_frames=(20, 30), reversed_label_fraction=0.1)
    out = write_pku_archives(tmp_path / "a", 2, config, seed=4)
    assert [(p.name, role) for p, role in out] == [
        ("Skeleton_v2.zip", "skeleton"), ("Label_PKUMMD_v2.zip", "label"),
        ("cross_subject_v2.txt", "split")]
    again = write_pku_archives(tmp_path / "b", 2, config, seed=4)
    assert all(p.read_bytes() == q.read_bytes() for (p, _), (q, _) in zip(out, again, strict=True))
    skeletons, labels = _members(out[0][0]), _members(out[1][0])
    split_text = out[2][0].read_text()
    assert split_text.splitlines()[0] == "Training videos: "
    assert split_text.splitlines()[2] == "Validataion videos: "
    train, test = pku.parse_pku_split(split_text, "split")
    assert len(train) == len(test) == 3
    assert sorted(Path(n).stem for n in skeletons) == sorted(train + test)
    assert [Path(n).stem for n in labels] == [Path(n).stem for n in skeletons]
    assert all(n.startswith("PKU_Skeleton_Renew_v2/") for n in skeletons)
    assert all(n.startswith("Label_PKUMMD_v2/") for n in labels)
    reversed_lines = 0
    for split in (train, test):
        seen = set()
        for video in split:
            text = labels[f"Label_PKUMMD_v2/{video}.txt"].decode()
            reversed_lines += sum(int(a) > int(b) for _, a, b, _ in
                                  (line.split(",") for line in text.splitlines()))
            rows = pku.parse_pku_labels(text, video)
            frames = len(pku.parse_pku_skeleton(skeletons[f"PKU_Skeleton_Renew_v2/{video}.txt"], video))
            assert (rows[:, 1] >= 1).all() and (rows[:, 2] <= frames).all()
            seen |= set(rows[:, 0].tolist())
        assert seen == set(PKU2_CLASS_IDS)  # every phase-II class in both splits
    assert reversed_lines > 0


def test_pku_phase1_names_and_split(tmp_path):
    config = SyntheticPKUConfig(train_recordings=3, test_recordings=1, actions_per_video=51)
    train, test = recording_names(1, config)
    assert all(291 <= int(t) <= 334 for t in test)
    assert not any(291 <= int(t) <= 334 or 247 <= int(t) <= 250 or int(t) == 1 for t in train)
    with pytest.raises(ParamsError):
        write_pku_archives(tmp_path, 1, SyntheticPKUConfig(test_recordings=1), seed=0)
