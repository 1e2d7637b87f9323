"""Tests for the batched skeleton augmentations (pretraining views and evaluation crops)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrep.data.augment import (
    AugmentConfig,
    center_crop_window,
    deterministic_crop_resize,
    joint_corruption,
    make_views,
    random_crop_resize,
    random_crop_windows,
    random_spatial,
    resample_time,
    shear,
)
from skelrep.errors import ParamsError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp(num_samples: int, t_max: int = 300, c: int = 3, v: int = 4, m: int = 2) -> torch.Tensor:
    """x[n, c, t, v, m] = t: resampled values reveal which source frames were used."""
    t = torch.arange(t_max, dtype=torch.float32).view(1, 1, t_max, 1, 1)
    return t.expand(num_samples, c, t_max, v, m).clone()


def _official_crop_resize(sample: torch.Tensor, start: int, length: int, out: int) -> torch.Tensor:
    """The reference per-sample resample (C, T, V, M) -> (C, out, V, M)."""
    c, _, v, m = sample.shape
    crop = sample[:, start:start + length].permute(0, 2, 3, 1).reshape(1, c * v * m, length, 1)
    resized = F.interpolate(crop, size=(out, 1), mode="bilinear", align_corners=False)
    return resized.view(c, v, m, out).permute(0, 3, 1, 2)


# torch's own bilinear kernel rounds the last bit differently depending on SIMD width and
# whether the compiler fused a multiply-add, so "identical" means equal to float32 rounding.
_ULP = {"rtol": 1e-6, "atol": 1e-6}


def _window_from_ramp(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recover (start, length) from ramp clips resampled with L >= out frames.

    Then no clamping applies and output i equals start + (i + 0.5) * L / out - 0.5, a line
    with slope L / out.
    """
    y = clips[:, 0, :, 0, 0].double()
    out = y.shape[1]
    i, j = out // 4, 3 * out // 4
    slope = (y[:, j] - y[:, i]) / (j - i)
    lengths = torch.round(slope * out).long()
    starts = torch.round(y[:, i] - ((i + 0.5) * slope - 0.5)).long()
    return starts, lengths


# ---------------------------------------------------------------------------- resample_time


def test_resample_time_matches_per_sample_interpolate():
    g = _gen(0)
    n, c, t_max, v, m, out = 7, 3, 300, 25, 2, 64
    x = torch.randn(n, c, t_max, v, m, generator=g)
    # mix of downsampling (L > 64), identity (L = 64) and upsampling (L < 64), odd lengths too
    lengths = torch.tensor([300, 150, 64, 63, 17, 1, 101])
    starts = torch.tensor([0, 30, 200, 5, 283, 299, 199])
    got = resample_time(x, starts, lengths, out)
    assert got.shape == (n, c, out, v, m)
    for k in range(n):
        expected = _official_crop_resize(x[k], int(starts[k]), int(lengths[k]), out)
        torch.testing.assert_close(got[k], expected, **_ULP)


def test_resample_time_rejects_window_outside_sequence():
    x = torch.zeros(2, 3, 10, 4, 1)
    with pytest.raises(ValueError, match="window"):
        resample_time(x, torch.tensor([0, 5]), torch.tensor([10, 6]), 8)
    with pytest.raises(ValueError, match="window"):
        resample_time(x, torch.tensor([0, 0]), torch.tensor([0, 3]), 8)


# ------------------------------------------------------------------------ random_crop_resize


def test_random_crop_resize_window_obeys_official_rule():
    n = 256
    num_frames = torch.randint(64, 301, (n,), generator=_gen(1))
    x = _ramp(n)
    clips = random_crop_resize(x, num_frames, 64, scale=(0.1, 1.0), min_crop=64, generator=_gen(2))
    starts, lengths = _window_from_ramp(clips)

    # replay the same draws: s then u, float64, 2 per sample
    draws = torch.rand((2, n), generator=_gen(2), dtype=torch.float64)
    s = 0.1 + 0.9 * draws[0]
    expected_len = torch.floor(num_frames * s).long().clamp_min(64).minimum(num_frames)
    assert torch.equal(lengths, expected_len)
    assert (lengths >= 64).all() and (lengths <= num_frames).all()
    assert (starts >= 0).all() and (starts <= num_frames - lengths).all()
    # window stays inside the valid frames: the ramp never reaches padded zeros/frames >= n
    assert (clips[:, 0, :, 0, 0] <= (num_frames - 1).view(n, 1)).all()
    # the draws spread over the whole range (not always the min crop or start 0)
    assert (lengths > 200).any() and (lengths == 64).any()
    assert (starts > 0).sum() > n // 2


def test_random_crop_resize_short_sequences_used_whole():
    num_frames = torch.tensor([10, 40, 63, 1])
    x = _ramp(4, t_max=80)
    for seed in range(5):
        clips = random_crop_resize(x, num_frames, 64, generator=_gen(seed))
        for k, nf in enumerate(num_frames.tolist()):
            whole = _official_crop_resize(x[k], 0, nf, 64)
            torch.testing.assert_close(clips[k], whole, **_ULP)


def test_random_crop_resize_seeded_determinism():
    x = torch.randn(8, 3, 300, 25, 2, generator=_gen(3))
    num_frames = torch.tensor([300, 250, 120, 64, 50, 299, 180, 90])
    a = random_crop_resize(x, num_frames, 64, generator=_gen(7))
    b = random_crop_resize(x, num_frames, 64, generator=_gen(7))
    c = random_crop_resize(x, num_frames, 64, generator=_gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_crop_resize_rejects_bad_num_frames():
    x = torch.zeros(2, 3, 50, 4, 1)
    with pytest.raises(ValueError, match="num_frames"):
        random_crop_resize(x, torch.tensor([0, 10]), 16, generator=_gen(0))
    with pytest.raises(ValueError, match="num_frames"):
        random_crop_resize(x, torch.tensor([51, 10]), 16, generator=_gen(0))


# ------------------------------------------------------------------- deterministic crops


# (ratio, n) -> (start, length), by hand from the official ``start = int((1 - r) * n / 2)``,
# ``length = n - 2 * start`` (float64: 1 - 0.95 = 0.050000000000000044, so (1 - 0.95) * 20 / 2
# = 0.5000000000000004 and (1 - 0.95) * 40 / 2 = 1.0000000000000009)
OFFICIAL_CENTER = {
    (0.95, 1): (0, 1), (0.95, 2): (0, 2), (0.95, 20): (0, 20), (0.95, 21): (0, 21),
    (0.95, 40): (1, 38), (0.95, 41): (1, 39), (0.95, 64): (1, 62), (0.95, 103): (2, 99),
    (0.95, 299): (7, 285), (0.95, 300): (7, 286),
    (0.5, 1): (0, 1), (0.5, 2): (0, 2), (0.5, 3): (0, 3), (0.5, 4): (1, 2), (0.5, 7): (1, 5),
    (0.5, 50): (12, 26), (0.5, 64): (16, 32), (0.5, 300): (75, 150), (0.5, 301): (75, 151),
    (1.0, 1): (0, 1), (1.0, 37): (0, 37), (1.0, 300): (0, 300),
}


@pytest.mark.parametrize("ratio", sorted({r for r, _ in OFFICIAL_CENTER}))
def test_center_crop_window_is_the_official_arithmetic(ratio):
    ns = [n for r, n in OFFICIAL_CENTER if r == ratio]
    starts, lengths = center_crop_window(torch.tensor(ns), ratio)
    assert list(zip(starts.tolist(), lengths.tolist(), strict=True)) == [OFFICIAL_CENTER[ratio, n] for n in ns]
    # the formula as the official feeder evaluates it, on Python floats
    assert [(int((1 - ratio) * n / 2), n - 2 * int((1 - ratio) * n / 2)) for n in ns] == [
        OFFICIAL_CENTER[ratio, n] for n in ns]


def test_deterministic_crop_whole_and_center_on_ramp():
    num_frames = torch.tensor([300, 100, 37, 1])
    x = _ramp(4)
    whole = deterministic_crop_resize(x, num_frames, 64, mode="whole")
    for k, nf in enumerate(num_frames.tolist()):
        torch.testing.assert_close(whole[k], _official_crop_resize(x[k], 0, nf, 64), **_ULP)

    center = deterministic_crop_resize(x, num_frames, 64, mode="center", ratio=0.95)
    for k, nf in enumerate(num_frames.tolist()):
        start = int((1 - 0.95) * nf / 2)              # the official arithmetic; no 64-frame minimum
        torch.testing.assert_close(center[k], _official_crop_resize(x[k], start, nf - 2 * start, 64),
                                   **_ULP)
    # 300 frames at 95 %: 286 frames starting at 7, so the ramp covers [7, 292]
    assert center[0].min() >= 7 and center[0].max() <= 292
    assert _window_from_ramp(center[:1]) == (torch.tensor([7]), torch.tensor([286]))

    half = deterministic_crop_resize(x, num_frames, 64, mode="center", ratio=0.5)
    torch.testing.assert_close(half[1], _official_crop_resize(x[1], 25, 50, 64), **_ULP)


def test_random_crop_windows_are_the_official_crop_and_seeded():
    num_frames = torch.tensor([300, 100, 37, 64, 65])
    starts, lengths = random_crop_windows(num_frames, 50, (0.5, 1.0), 64, _gen(0))
    assert starts.shape == lengths.shape == (50, 5)
    # L = clamp(floor(n * s), 64, n) with s in [0.5, 1); start in [0, n - L]
    assert bool((lengths <= num_frames).all() and (starts >= 0).all() and (starts + lengths <= num_frames).all())
    assert bool((lengths >= torch.clamp(num_frames, max=64)).all())
    assert lengths[:, 2].eq(37).all() and lengths[:, 3].eq(64).all()  # n <= 64: the whole sequence
    assert bool((lengths[:, 0] >= 150).all() and (lengths[:, 0] < 300).all())
    assert len(set(zip(starts[:, 0].tolist(), lengths[:, 0].tolist(), strict=True))) > 40  # independent crops
    again = random_crop_windows(num_frames, 50, (0.5, 1.0), 64, _gen(0))
    assert torch.equal(again[0], starts) and torch.equal(again[1], lengths)
    # the draws are laid out crop-major: crop k does not depend on how many crops follow it
    few = random_crop_windows(num_frames, 3, (0.5, 1.0), 64, _gen(0))
    assert torch.equal(few[0][0], starts[0]) and torch.equal(few[1][0], lengths[0])
    # the same arithmetic as random_crop_resize for one crop of the same draws
    ramp = _ramp(5)
    clips = random_crop_resize(ramp, num_frames, 16, (0.5, 1.0), 64, _gen(0))
    expected = resample_time(ramp, few[0][0], few[1][0], 16)
    torch.testing.assert_close(clips, expected)
    with pytest.raises(ValueError, match="count"):
        random_crop_windows(num_frames, 0)


def test_deterministic_crop_rejects_bad_mode_and_ratio():
    x, nf = _ramp(1, t_max=20), torch.tensor([20])
    with pytest.raises(ValueError, match="mode"):
        deterministic_crop_resize(x, nf, 8, mode="random")
    with pytest.raises(ValueError, match="ratio"):
        deterministic_crop_resize(x, nf, 8, mode="center", ratio=0.0)
    with pytest.raises(ValueError, match="ratio"):
        deterministic_crop_resize(x, nf, 8, mode="whole", ratio=0.5)


# ---------------------------------------------------------------------- joint_corruption


def test_joint_corruption_changes_exactly_k_joints_consistently():
    n, v, k = 64, 25, 15
    x = torch.randn(n, 3, 20, v, 2, generator=_gen(4))
    out = joint_corruption(x, num_joints=k, p_zero=0.5, generator=_gen(5))
    changed = (out != x)                                          # (N, C, T, V, M)
    per_joint = changed.any(dim=(1, 2, 4))                        # (N, V)
    assert (per_joint.sum(dim=1) == k).all()
    # a changed joint is changed at every frame and for every person (random data: no ties)
    all_frames_persons = changed.any(dim=1).all(dim=(1, 3))       # (N, V)
    assert torch.equal(per_joint, all_frames_persons)
    # untouched joints are bit-identical
    keep = ~per_joint.view(n, 1, 1, v, 1).expand_as(x)
    assert torch.equal(out[keep], x[keep])

    # per sample the chosen joints are all zero or all A @ x for one matrix A
    zeroed = 0
    for s in range(n):
        joints = per_joint[s].nonzero().flatten()
        chosen_in, chosen_out = x[s][:, :, joints], out[s][:, :, joints]
        if (chosen_out == 0).all():
            zeroed += 1
            continue
        pts_in = chosen_in.reshape(3, -1)
        pts_out = chosen_out.reshape(3, -1)
        a = torch.linalg.lstsq(pts_in.T.double(), pts_out.T.double()).solution.T
        assert (a.abs() <= 1).all()
        torch.testing.assert_close((a @ pts_in.double()).float(), pts_out, rtol=1e-4, atol=1e-4)
    assert 16 <= zeroed <= 48          # p_zero = 0.5 over 64 samples


def test_joint_corruption_p_zero_extremes_and_too_many_joints():
    x = torch.randn(8, 3, 5, 10, 1, generator=_gen(6))
    out = joint_corruption(x, num_joints=4, p_zero=1.0, generator=_gen(0))
    zero_joints = (out == 0).all(dim=(1, 2, 4))
    assert (zero_joints.sum(dim=1) == 4).all()
    out = joint_corruption(x, num_joints=4, p_zero=0.0, generator=_gen(0))
    assert not (out == 0).all(dim=(1, 2, 4)).any()
    with pytest.raises(ValueError, match="num_joints=11"):
        joint_corruption(x, num_joints=11, generator=_gen(0))


# ------------------------------------------------------------------------------- shear


@pytest.mark.parametrize("shear_range", [1.0, 0.5])
def test_shear_is_unit_diagonal_matrix_in_range(shear_range):
    n = 16
    x = torch.randn(n, 3, 12, 25, 2, generator=_gen(9))
    out = shear(x, shear_range=shear_range, generator=_gen(10))
    for s in range(n):
        pts_in = x[s].reshape(3, -1).double()
        pts_out = out[s].reshape(3, -1).double()
        matrix = torch.linalg.lstsq(pts_in.T, pts_out.T).solution.T
        torch.testing.assert_close(torch.diagonal(matrix), torch.ones(3, dtype=torch.float64),
                                   rtol=0, atol=1e-5)
        off = matrix[~torch.eye(3, dtype=torch.bool)]
        assert (off.abs() <= shear_range + 1e-5).all()
        torch.testing.assert_close(matrix @ pts_in, pts_out, rtol=1e-4, atol=1e-4)
    assert torch.equal(out, shear(x, shear_range=shear_range, generator=_gen(10)))


def test_shear_2d_channels():
    x = torch.randn(4, 2, 6, 17, 1, generator=_gen(11))
    out = shear(x, generator=_gen(12))
    matrix = torch.linalg.lstsq(x[0].reshape(2, -1).T.double(), out[0].reshape(2, -1).T.double()).solution.T
    torch.testing.assert_close(torch.diagonal(matrix), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------ random_spatial


def test_random_spatial_picks_each_branch_about_half_the_time():
    n, v = 2000, 25
    x = torch.randn(n, 3, 2, v, 1, generator=_gen(13))
    out = random_spatial(x, p_corrupt=0.5, num_joints=15, generator=_gen(14))
    joints_changed = (out != x).any(dim=(1, 2, 4)).sum(dim=1)
    corrupted = joints_changed == 15
    sheared = joints_changed == v
    assert (corrupted | sheared).all()             # exactly one branch per sample
    assert abs(corrupted.float().mean().item() - 0.5) < 0.05

    always_shear = random_spatial(x[:100], p_corrupt=0.0, generator=_gen(15))
    assert ((always_shear != x[:100]).any(dim=(1, 2, 4)).sum(dim=1) == v).all()


# ---------------------------------------------------------------------------- make_views


def test_make_views_shapes_3d():
    x = torch.randn(4, 3, 300, 25, 2, generator=_gen(16))
    num_frames = torch.tensor([300, 120, 40, 64])
    views = make_views(x, num_frames, n_views=4, out_frames=64, min_crop=64, generator=_gen(17))
    assert len(views) == 4
    assert all(view.shape == (4, 3, 64, 25, 2) and view.dtype == torch.float32 for view in views)
    assert not torch.equal(views[0], views[1])        # views are independently augmented
    again = make_views(x, num_frames, n_views=4, out_frames=64, min_crop=64, generator=_gen(17))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))


def test_make_views_all_at_once_equal_view_by_view():
    """The views are drawn view by view in the order of the per-view functions, then built at
    once: the same values as crop-resize + spatial per view; ``stacked`` is their concatenation."""
    x = torch.randn(5, 3, 120, 25, 2, generator=_gen(30))
    num_frames = torch.tensor([120, 70, 20, 64, 99])
    views = make_views(x, num_frames, n_views=3, out_frames=32, min_crop=16, generator=_gen(31))
    g = _gen(31)
    for view in views:
        clip = random_crop_resize(x, num_frames, 32, (0.1, 1.0), 16, generator=g)
        assert torch.equal(view, random_spatial(clip, generator=g))
    stacked = make_views(x, num_frames, n_views=3, out_frames=32, min_crop=16, generator=_gen(31), stacked=True)
    assert torch.equal(stacked, torch.cat(views))


def test_make_views_shapes_2d_17_joints_one_person():
    x = torch.randn(3, 2, 100, 17, 1, generator=_gen(18))
    num_frames = torch.tensor([100, 70, 20])
    views = make_views(x, num_frames, n_views=2, out_frames=32, min_crop=16, corrupt_joints=10,
                       generator=_gen(19))
    assert [tuple(view.shape) for view in views] == [(3, 2, 32, 17, 1)] * 2
    with pytest.raises(ValueError, match="num_joints=18"):
        make_views(x, num_frames, n_views=2, out_frames=32, corrupt_joints=18, generator=_gen(0))


# ------------------------------------------------------------------------- AugmentConfig


FULL_AUG = {"crop_scale": [0.1, 1.0], "min_crop": 64, "corrupt_joints": 15, "p_zero": 0.25, "shear_range": 0.5,
            "p_corrupt": 0.5, "views": 2}


def test_augment_config_from_a_full_section():
    cfg = AugmentConfig.from_params(dict(FULL_AUG), "usdrl.aug")
    assert cfg.p_zero == 0.25 and cfg.shear_range == 0.5 and cfg.views == 2
    assert cfg.crop_scale == (0.1, 1.0)
    with pytest.raises(ParamsError, match="missing") as info:
        AugmentConfig.from_params({k: v for k, v in FULL_AUG.items() if k != "views"}, "usdrl.aug")
    assert info.value.key == "usdrl.aug.views"


@pytest.mark.parametrize(
    ("section", "key", "allowed"),
    [
        ({"rotation": 0.1}, "isc.aug.rotation", "unknown key; allowed keys: crop_scale"),
        ({"p_zero_vs_matrix": 0.5}, "isc.aug.p_zero_vs_matrix", "unknown key; allowed keys: .*p_zero"),  # one name
        ({"crop_scale": [0.5]}, "isc.aug.crop_scale", "exactly 2 items"),
        ({"crop_scale": [0.0, 0.5]}, "isc.aug.crop_scale[0]", r"\(0.0, 1.0\]"),
        ({"crop_scale": [0.9, 0.5]}, "isc.aug.crop_scale", "low <= high"),
        ({"min_crop": 0}, "isc.aug.min_crop", r"integer in \[1, inf\]"),
        ({"views": 2.0}, "isc.aug.views", "integer"),
        ({"corrupt_joints": True}, "isc.aug.corrupt_joints", r"integer in \[0, 25\]"),
        ({"p_zero": 1.5}, "isc.aug.p_zero", r"\[0.0, 1.0\]"),
        ({"p_corrupt": -0.1}, "isc.aug.p_corrupt", r"\[0.0, 1.0\]"),
        ({"shear_range": "wide"}, "isc.aug.shear_range", r"number in \[0.0, inf\]"),
    ],
)
def test_augment_config_errors_name_the_key(section, key, allowed):
    with pytest.raises(ParamsError, match=allowed) as info:
        AugmentConfig.from_params({**FULL_AUG, **section}, "isc.aug")
    assert info.value.key == key


def test_augment_config_rejects_non_mapping_and_applies():
    with pytest.raises(ParamsError) as info:
        AugmentConfig.from_params([1, 2], "umurl.aug")
    assert info.value.key == "umurl.aug"
    cfg = AugmentConfig(views=3, min_crop=8)
    views = cfg.make_views(torch.randn(2, 3, 30, 25, 2), torch.tensor([30, 9]), 16, generator=_gen(0))
    assert [tuple(view.shape) for view in views] == [(2, 3, 16, 25, 2)] * 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_gives_same_views_for_cuda_data():
    x = torch.randn(6, 3, 300, 25, 2, generator=_gen(20))
    num_frames = torch.tensor([300, 200, 100, 64, 30, 150])
    on_cpu = make_views(x, num_frames, n_views=2, out_frames=64, generator=_gen(21))
    on_cuda = make_views(x.cuda(), num_frames.cuda(), n_views=2, out_frames=64, generator=_gen(21))
    for a, b in zip(on_cpu, on_cuda, strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-5)
