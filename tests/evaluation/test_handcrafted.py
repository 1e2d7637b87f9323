"""The hand-crafted baseline's features: joint coordinates resampled like the encoders' input, flattened."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skelrep.data.augment import deterministic_crop_resize
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.evaluation.handcrafted import extract_handcrafted, handcrafted_features

from ..conftest import TINY_SPLIT, write_tiny_h5


def _batch(n=3, c=3, t=20, v=25, m=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, t, v, m, generator=g), torch.tensor([20, 13, 1][:n])


def test_shape_is_channels_frames_joints_persons():
    x, nf = _batch()
    out = handcrafted_features(x, nf, 16)
    assert out.shape == (3, 3 * 16 * 25 * 2) and out.dtype == torch.float32


def test_resampling_is_the_encoders_whole_sequence_input():
    x, nf = _batch()
    clip = deterministic_crop_resize(x, nf, 16, mode="whole")  # what extract_features feeds an encoder
    torch.testing.assert_close(handcrafted_features(x, nf, 16), clip.reshape(3, -1), rtol=0, atol=0)
    # and that is the official per-sample bilinear (align_corners=False) interpolation of the valid frames
    n = int(nf[1])
    ref = F.interpolate(x[1, :, :n].permute(0, 2, 3, 1).reshape(1, -1, n, 1), size=(16, 1), mode="bilinear",
                        align_corners=False).reshape(3, 25, 2, 16).permute(0, 3, 1, 2)
    torch.testing.assert_close(handcrafted_features(x, nf, 16)[1], ref.reshape(-1))


def test_flattened_in_channel_time_joint_person_order():
    x, nf = _batch()
    x[:, :, :] = torch.arange(3 * 25 * 2, dtype=torch.float32).reshape(3, 1, 25, 2)  # constant in time
    out = handcrafted_features(x, nf, 4).reshape(3, 3, 4, 25, 2)
    torch.testing.assert_close(out, x[:, :, :1].expand(-1, -1, 4, -1, -1))


def test_padding_frames_are_ignored():
    x, nf = _batch()
    padded = x.clone()
    for i, n in enumerate(nf.tolist()):
        padded[i, :, n:] = 1e6  # whatever lies after num_frame never enters
    torch.testing.assert_close(handcrafted_features(padded, nf, 16), handcrafted_features(x, nf, 16),
                               rtol=0, atol=0)


def test_deterministic_and_frames_checked():
    x, nf = _batch()
    assert torch.equal(handcrafted_features(x, nf, 16), handcrafted_features(x.clone(), nf.clone(), 16))
    with pytest.raises(ValueError, match="frames"):
        handcrafted_features(x, nf, 0)


def test_extract_over_a_dataset_in_dataset_order(tmp_path):
    path = write_tiny_h5(tmp_path / "tiny.h5", n_train=10, n_test=4, frames=24)
    ds = SkeletonH5Dataset(path, TINY_SPLIT, "train")
    feats = extract_handcrafted(ds, 8, batch_size=3)  # several batches
    assert feats.shape == (10, 3 * 8 * 25 * 2) and feats.dtype == np.float32
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    expected = handcrafted_features(x, torch.as_tensor(ds.num_frame), 8).numpy()
    np.testing.assert_array_equal(feats, expected)
    np.testing.assert_array_equal(extract_handcrafted(ds, 8, batch_size=256), feats)  # batch size free
