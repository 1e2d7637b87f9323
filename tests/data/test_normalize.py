"""Family-B pre-normalisation (2s-AGCN), energy body selection and Family-A (SGN / CTR-GCN) denoising."""

from __future__ import annotations

import numpy as np
import pytest

from skelrep.data.normalize import (
    NORMALISATIONS,
    _rotation_onto,
    denoise_bodies_sgn,
    pre_normalize,
    select_bodies_by_energy,
)
from skelrep.data.ntu import NTUSkeleton, parse_skeleton, slot_xyz


def person(num_frames: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """(T, 25, 3) upright body (narrow in x, tall in y) drifting linearly by ``scale``.

    Every body shares one pose, so body motion (variance over frames and joints) grows
    with ``scale`` and the number of frames, which the denoising tests rely on.
    """
    pose = np.random.default_rng(0).uniform([-0.15, -0.8, -0.1], [0.15, 0.8, 0.1], (25, 3))
    pose[0], pose[1] = (0.0, -0.3, 0.02), (0.01, 0.0, 0.0)  # spine roughly along +y
    pose[4], pose[8] = (-0.2, 0.25, 0.05), (0.2, 0.22, -0.04)  # shoulders roughly along x
    drift = scale * 0.01 * np.arange(num_frames)[:, None, None] * np.array([1.0, 0.5, 0.2])
    jitter = np.random.default_rng(seed).normal(0, 0.002, (num_frames, 25, 3))
    return pose + drift + np.array([0.1, 0.2, 3.0]) + jitter


def sample(num_frames: int = 300, valid: int = 100, second: bool = True) -> np.ndarray:
    """(3, T, 25, 2) with ``valid`` non-zero frames per person followed by zeros."""
    data = np.zeros((3, num_frames, 25, 2), dtype=np.float32)
    data[:, :valid, :, 0] = person(valid, 1).transpose(2, 0, 1)
    if second:
        other = person(valid, 2) + np.array([1.0, 0.0, 0.0])  # one metre to the right
        data[:, :valid, :, 1] = other.transpose(2, 0, 1)
    return data


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


# ------------------------------------------------------------------ energy selection


def test_energy_keeps_two_most_active_slots_in_order():
    slots = np.zeros((4, 50, 25, 3), dtype=np.float32)
    slots[0] = person(50, 0, scale=1)
    slots[2] = person(50, 1, scale=10)
    # a static body at far-off coordinates: its zero frames must not count as motion
    slots[3, ::2] = 5.0
    out = select_bodies_by_energy(slots)
    assert out.shape == (3, 50, 25, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], slots[2].transpose(2, 0, 1))
    np.testing.assert_array_equal(out[..., 1], slots[0].transpose(2, 0, 1))


def test_energy_ties_keep_lower_slot_first_and_pad():
    slots = np.zeros((4, 10, 25, 3), dtype=np.float32)
    slots[3] = person(10, 3)
    slots[1] = 1.0  # non-zero but motionless: energy 0, ties with the empty slots
    out = select_bodies_by_energy(slots)
    np.testing.assert_array_equal(out[..., 0], slots[3].transpose(2, 0, 1))
    np.testing.assert_array_equal(out[..., 1], 0)  # slot 0 (empty) beats slot 1 on the tie
    assert select_bodies_by_energy(slots[:1], keep=2).shape == (3, 10, 25, 2)


# ------------------------------------------------------------------ pre_normalize


@pytest.mark.parametrize("z_align", [False, True])
def test_centre_and_align_invariants(z_align):
    data = sample()
    out = pre_normalize(data, z_align=z_align)
    assert out.shape == data.shape and out.dtype == np.float32
    nonempty = np.any(out[..., 0] != 0, axis=(0, 2))
    assert nonempty.all()  # loop padding filled all 300 frames
    np.testing.assert_allclose(out[:, :, 1, 0], 0, atol=1e-6)  # SpineMid at the origin
    shoulders = out[:, 0, 8, 0] - out[:, 0, 4, 0]
    assert shoulders[0] > 0
    np.testing.assert_allclose(shoulders[1:], 0, atol=1e-5)
    # rotation and translation keep each person's shape (inter-joint distances)
    before = data[:, :100, :, 1]
    after = out[:, :100, :, 1]
    np.testing.assert_allclose(np.linalg.norm(after[:, :, 3] - after[:, :, 7], axis=0),
                               np.linalg.norm(before[:, :, 3] - before[:, :, 7], axis=0),
                               rtol=1e-4)


def test_z_align_puts_spine_on_z_and_x_align_follows():
    data = sample()
    z_only = pre_normalize(data, z_align=True, x_align=False)
    spine = z_only[:, 0, 1, 0] - z_only[:, 0, 0, 0]
    assert spine[2] > 0
    np.testing.assert_allclose(spine[:2], 0, atol=1e-5)
    # step 4 is computed on step 3's output: the full ISC variant = x-align of z_only
    both = pre_normalize(data, z_align=True, x_align=True)
    np.testing.assert_allclose(both, pre_normalize(z_only, z_align=False, x_align=True),
                               atol=1e-5)
    assert not np.allclose(both, pre_normalize(data, z_align=False), atol=1e-3)


def test_loop_padding_repeats_frames_from_start():
    out = pre_normalize(sample(valid=120), z_align=False)
    np.testing.assert_array_equal(out[:, 120:240], out[:, :120])
    np.testing.assert_array_equal(out[:, 240:], out[:, :60])


def test_leading_empty_frames_are_shifted_and_interior_zeros_stay():
    data = sample(num_frames=60, valid=50)
    shifted = np.zeros_like(data)
    shifted[:, 10:60] = data[:, :50]
    out_shifted = pre_normalize(shifted, z_align=True)
    np.testing.assert_allclose(out_shifted, pre_normalize(data, z_align=True), atol=1e-6)

    holed = data.copy()
    holed[:, 20, :, 0] = 0  # an isolated empty frame of person 0 inside the sequence
    out = pre_normalize(holed, z_align=False)
    assert not out[:, 20, :, 0].any()
    np.testing.assert_array_equal(out[:, 50:], out[:, :10])  # tail still loop-padded


def test_all_zero_joints_stay_zero_and_second_person_uses_person0_centre():
    data = sample(num_frames=40, valid=40)
    data[:, 5:9, 24, 1] = 0  # person 1's ThumbRight lost in 4 frames
    out = pre_normalize(data, z_align=False, x_align=False)
    assert not out[:, 5:9, 24, 1].any()
    np.testing.assert_allclose(out[:, :, 3, 1], data[:, :, 3, 1] - data[:, :, 1, 0], atol=1e-6)


def test_degenerate_inputs_do_not_produce_nan():
    zeros = np.zeros((3, 20, 25, 2), dtype=np.float32)
    np.testing.assert_array_equal(pre_normalize(zeros, z_align=True), 0)
    only_second = zeros.copy()
    only_second[:, :10, :, 1] = person(10, 4).transpose(2, 0, 1)
    out = pre_normalize(only_second, z_align=True)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, :10, :, 1], only_second[:, :10, :, 1])  # no-op
    collapsed = zeros.copy()
    collapsed[:, :, :, 0] = 0.5  # every joint at one point: zero spine/shoulder vectors
    assert np.isfinite(pre_normalize(collapsed, z_align=True)).all()
    antiparallel = sample(num_frames=20, valid=20, second=False)
    antiparallel[0, :, 8, 0], antiparallel[0, :, 4, 0] = -1.0, 1.0
    antiparallel[1:, :, 8, 0] = antiparallel[1:, :, 4, 0]  # shoulders along -x exactly
    out = pre_normalize(antiparallel, z_align=False)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0, 8, 0] - out[:, 0, 4, 0], [-2, 0, 0], atol=1e-6)


def padded_reference(data: np.ndarray, frames: int, *, z_align: bool) -> np.ndarray:
    """2s-AGCN's pre_normalization step by step on the sample cut or zero-padded to ``frames``,
    every frame normalised (no shortcut): pad null frames per person, centre on person 0's
    SpineMid per frame keeping zero joints zero, rotate by the frame-0 matrices with the same
    operations per value as pre_normalize (so equal down to the last bit)."""
    x = np.zeros((3, frames, 25, 2))
    t = min(frames, data.shape[1])
    x[:, :t] = data[:, :t]
    x = x.transpose(3, 1, 2, 0).copy()  # (M, T, V, C)
    for person in x:
        nonempty = np.any(person != 0, axis=(1, 2))
        if not nonempty.any():
            continue
        if not nonempty[0]:
            kept = person[nonempty].copy()
            person[:] = 0
            person[: len(kept)] = kept
        length = int(np.flatnonzero(np.any(person != 0, axis=(1, 2)))[-1]) + 1
        for f in range(length, frames):
            person[f] = person[f - length]
    present = np.any(x != 0, axis=3, keepdims=True)
    x = (x - x[0:1, :, 1:2]) * present
    for pair, target, on in (((0, 1), [0.0, 0.0, 1.0], z_align), ((8, 4), [1.0, 0.0, 0.0], True)):
        if on:
            m = _rotation_onto(x[0, 0, pair[1]] - x[0, 0, pair[0]] if pair == (0, 1)
                               else x[0, 0, pair[0]] - x[0, 0, pair[1]], np.array(target))
            x = np.stack([(m[c, 0] * x[..., 0] + m[c, 1] * x[..., 1]) + m[c, 2] * x[..., 2]
                          for c in range(3)], axis=-1)
    return x.transpose(3, 1, 2, 0).astype(np.float32)


def _case(name: str) -> np.ndarray:
    """Samples (3, T, 25, 2) that take each path of pre_normalize's padding."""
    data = sample(num_frames=140, valid=100)
    if name == "one person":
        data[..., 1] = 0
    elif name == "trailing empty frames":
        data[:, 90:] = 0
    elif name == "late start":  # frame 0 empty: compacted to the front
        data[:, 30:] = data[:, :110].copy()
        data[:, :30] = 0
    elif name == "holes":
        data[:, [5, 17, 60], :, 0] = 0
        data[:, 40, 3] = 0
    elif name == "second person leaves early":  # lengths differ: every frame normalised
        data[:, 70:, :, 1] = 0
    elif name == "second person only":
        data[..., 0] = 0
    elif name == "longer than frames":
        data = sample(num_frames=400, valid=380)
    elif name == "empty":
        data[:] = 0
    return data


@pytest.mark.parametrize("z_align", [False, True])
@pytest.mark.parametrize("frames", [300, 100, 64])
@pytest.mark.parametrize("case", ["two people", "one person", "trailing empty frames", "late start", "holes",
                                  "second person leaves early", "second person only", "longer than frames",
                                  "empty"])
def test_padding_to_frames_gives_the_bytes_of_normalising_every_padded_frame(case, frames, z_align):
    data = _case(case)
    out = pre_normalize(data, z_align=z_align, frames=frames)
    assert out.shape == (3, frames, 25, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, padded_reference(data, frames, z_align=z_align))


def test_frames_without_padding_keep_the_zero_tail():
    data = sample(num_frames=50, valid=40)
    out = pre_normalize(data, z_align=False, pad_null=False, frames=80)
    assert out.shape == (3, 80, 25, 2)
    assert out[:, :40].any() and not out[:, 40:].any()


def test_untrimmed_mode_rotates_from_first_nonempty_frame_without_padding():
    data = np.zeros((3, 80, 25, 2), dtype=np.float32)
    data[:, 10:60, :, 0] = person(50, 5).transpose(2, 0, 1)
    z_only = pre_normalize(data, z_align=True, x_align=False, pad_null=False)
    assert not z_only[:, :10].any() and not z_only[:, 60:].any()
    np.testing.assert_allclose(unit(z_only[:, 10, 1, 0] - z_only[:, 10, 0, 0]), [0, 0, 1],
                               atol=1e-5)
    x_only = pre_normalize(data, z_align=False, pad_null=False)
    np.testing.assert_allclose(unit(x_only[:, 10, 8, 0] - x_only[:, 10, 4, 0]), [1, 0, 0],
                               atol=1e-5)
    # padding shifts the same frames to the start, so both modes agree on them
    np.testing.assert_allclose(pre_normalize(data, z_align=False)[:, :50], x_only[:, 10:60],
                               atol=1e-6)


def test_normalisation_families():
    # ISC aligns z and x; the UmURL/USDRL lineage skips the z rotation
    assert NORMALISATIONS == {"umurl": {"z_align": False, "x_align": True},
                              "isc": {"z_align": True, "x_align": True}}


def test_real_fixture_pipeline(ntu_fixture):
    path = ntu_fixture("S001C001P001R001A002.skeleton")
    skel = parse_skeleton(path.read_bytes(), str(path))
    data = np.zeros((3, 300, 25, 2), dtype=np.float32)
    data[:, : skel.num_frames] = select_bodies_by_energy(slot_xyz(skel))
    out = pre_normalize(data, **NORMALISATIONS["isc"])
    assert np.isfinite(out).all() and not out[..., 1].any()
    np.testing.assert_allclose(out[:, :, 1, 0], 0, atol=1e-6)
    np.testing.assert_array_equal(out[:, 158:300], out[:, :142])


# ------------------------------------------------------------------ SGN denoising


def make_skeleton(num_frames: int, tracks: list[tuple[str, list[int], np.ndarray]]) -> NTUSkeleton:
    """NTUSkeleton from (bodyID, frame indices, (n, 25, 3) xyz); slots in list order."""
    body_count = np.zeros(num_frames, dtype=np.int64)
    body_id = np.full((num_frames, 4), "", dtype=object)
    joints = np.zeros((num_frames, 4, 25, 12), dtype=np.float32)
    for track_id, frames, xyz in tracks:
        for t, pose in zip(frames, xyz, strict=True):
            slot = body_count[t]
            body_id[t, slot] = track_id
            joints[t, slot, :, :3] = pose
            body_count[t] += 1
    return NTUSkeleton(num_frames, body_count, body_id, np.zeros((num_frames, 4, 9)), joints)


def wide(num_frames: int, seed: int) -> np.ndarray:
    """A noise body lying on its side: X-extent far above 0.8 x Y-extent, lots of motion."""
    return person(num_frames, seed, scale=20)[:, :, [1, 0, 2]]


def test_denoise_single_body_drops_empty_frames_and_pads():
    xyz = person(30, 6)
    frames = [t for t in range(31) if t != 12]  # frame 12 has bodyCount 0
    out = denoise_bodies_sgn(make_skeleton(31, [("1", frames, xyz)]))
    assert out.shape == (3, 31, 25, 2)
    np.testing.assert_allclose(out[:, :30, :, 0], xyz.transpose(2, 0, 1), atol=1e-6)
    assert not out[:, 30].any() and not out[..., 1].any()


def test_denoise_drops_short_bodies():
    main, noise11, other12 = person(40, 7), person(11, 8, scale=30), person(12, 9)
    skel = make_skeleton(40, [("1", list(range(40)), main), ("2", list(range(5, 16)), noise11),
                              ("3", list(range(20, 32)), other12)])
    out = denoise_bodies_sgn(skel)
    np.testing.assert_allclose(out[:, :, :, 0], main.transpose(2, 0, 1), atol=1e-6)
    # the 12-frame body overlaps actor 1, so it becomes actor 2; the 11-frame one is gone
    np.testing.assert_allclose(out[:, 20:32, :, 1], other12.transpose(2, 0, 1), atol=1e-6)
    assert not out[:, :20, :, 1].any() and not out[:, 32:, :, 1].any()


def test_denoise_spread_rule_removes_lying_body():
    upright, lying = person(30, 10), wide(30, 11)
    skel = make_skeleton(30, [("1", list(range(30)), lying), ("2", list(range(30)), upright)])
    out = denoise_bodies_sgn(skel)
    np.testing.assert_allclose(out[:, :, :, 0], upright.transpose(2, 0, 1), atol=1e-6)
    assert not out[..., 1].any()


def test_denoise_orders_by_motion_and_assigns_by_intervals():
    calm, busy = person(60, 12, scale=0.1), person(30, 13, scale=5)
    later = person(20, 14, scale=0.5)  # after busy ends: shares actor 1's slot
    overlapping = person(40, 15, scale=1)  # overlaps actor 1 and then actor 2's hull
    skel = make_skeleton(60, [
        ("calm", list(range(60)), calm), ("busy", list(range(30)), busy),
        ("later", list(range(35, 55)), later), ("overlap", list(range(10, 50)), overlapping),
    ])
    out = denoise_bodies_sgn(skel)
    # motion: busy > overlapping > later > calm (by construction of the drift scales)
    np.testing.assert_allclose(out[:, :30, :, 0], busy.transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(out[:, 35:55, :, 0], later.transpose(2, 0, 1), atol=1e-6)
    assert not out[:, 30:35, :, 0].any()
    np.testing.assert_allclose(out[:, 10:50, :, 1], overlapping.transpose(2, 0, 1), atol=1e-6)
    # calm overlaps both actors' intervals and is discarded
    assert not out[:, :10, :, 1].any() and not out[:, 50:, :, 1].any()


def test_denoise_all_short_bodies_keeps_longest():
    a, b = person(8, 16), person(10, 17)
    skel = make_skeleton(10, [("a", list(range(8)), a), ("b", list(range(10)), b)])
    out = denoise_bodies_sgn(skel)
    np.testing.assert_allclose(out[:, :, :, 0], b.transpose(2, 0, 1), atol=1e-6)
    assert not out[..., 1].any()
