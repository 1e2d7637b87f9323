import pytest
import torch

from skelrep.models.modalities import bone, make_modality, motion, spatial_tokens, temporal_tokens
from skelrep.skeleton import NTU_BONE_PAIRS_1BASED


@pytest.fixture
def clip():
    return torch.randn(2, 3, 8, 25, 2, generator=torch.Generator().manual_seed(0))


def test_bone_matches_pair_loop(clip):
    expected = torch.zeros_like(clip)
    for child, parent in NTU_BONE_PAIRS_1BASED:
        expected[:, :, :, child - 1] = clip[:, :, :, child - 1] - clip[:, :, :, parent - 1]
    torch.testing.assert_close(bone(clip), expected, rtol=0, atol=0)
    assert bone(clip)[:, :, :, 20].abs().max() == 0  # SpineShoulder is its own parent


def test_bone_custom_parents_and_wrong_size():
    x = torch.randn(1, 2, 4, 3, 1)
    torch.testing.assert_close(bone(x, parents=(0, 0, 1)), x - x[:, :, :, [0, 0, 1]])
    with pytest.raises(ValueError, match="V=3"):
        bone(x)


def test_motion_is_forward_difference_with_zero_last_frame(clip):
    m = motion(clip)
    for t in range(clip.shape[2] - 1):
        torch.testing.assert_close(m[:, :, t], clip[:, :, t + 1] - clip[:, :, t])
    assert m[:, :, -1].abs().max() == 0


def test_make_modality(clip):
    assert make_modality(clip, "joint") is clip
    torch.testing.assert_close(make_modality(clip, "bone"), bone(clip))
    torch.testing.assert_close(make_modality(clip, "motion"), motion(clip))
    with pytest.raises(ValueError, match="joint, bone, motion"):
        make_modality(clip, "velocity")
    with pytest.raises(ValueError, match=r"\(N, C, T, V, M\)"):
        make_modality(clip[0], "joint")


def test_token_layouts_index_by_index():
    n, c, t, v, m = 2, 3, 5, 4, 2
    x = torch.randn(n, c, t, v, m)
    xt, xs = temporal_tokens(x), spatial_tokens(x)
    assert xt.shape == (n, t, m * v * c) and xs.shape == (n, m * v, t * c)
    for b, ci, ti, vi, mi in [(0, 0, 0, 0, 0), (1, 2, 4, 3, 1), (0, 1, 2, 3, 0), (1, 0, 3, 1, 1)]:
        # temporal: one frame per token, features person, joint, xyz
        assert xt[b, ti, (mi * v + vi) * c + ci] == x[b, ci, ti, vi, mi]
        # spatial: person-major then joint tokens, features frame then xyz
        assert xs[b, mi * v + vi, ti * c + ci] == x[b, ci, ti, vi, mi]


def test_reference_tokens(reference_file):
    ref = torch.load(reference_file("usdrl_dste_h64.pt"), weights_only=True)
    for name in ("joint", "bone", "motion"):
        clip = make_modality(ref["x"], name)
        want_t, want_s = ref[f"{name}_tokens"]
        torch.testing.assert_close(temporal_tokens(clip), want_t, rtol=0, atol=1e-6)
        torch.testing.assert_close(spatial_tokens(clip), want_s, rtol=0, atol=1e-6)
