"""The features stage's downstream inputs: train and test crops, the cached random train crops
(skelrep.evaluation.features) and their place in the feature file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrep.data.augment import resample_time
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.errors import DataError
from skelrep.evaluation.feature_file import load_feature_file, save_feature_file
from skelrep.evaluation.features import crop_windows, downstream_inputs, extract_features, extract_window_features
from skelrep.evaluation.sections import FEATURES_SCHEMA
from skelrep.io import write_npz_atomic
from skelrep.methods import METHODS
from skelrep.methods.base import WHOLE, DownstreamCrops, DownstreamInput
from skelrep.params import load_params
from skelrep.schema import validate

from ..conftest import REPO_ROOT, TINY_SPLIT, write_tiny_h5

COMMITTED = validate(load_params(REPO_ROOT / "params.yaml")["features"], FEATURES_SCHEMA, "features")
ISC_RANDOM = DownstreamInput("random", scale=(0.5, 1.0), min_frames=64)


def _cfg(**values) -> dict:
    return validate({**COMMITTED, **values}, FEATURES_SCHEMA, "features")


def test_auto_is_each_method_s_official_input():
    got = {name: downstream_inputs(COMMITTED, info.downstream_crop) for name, info in METHODS.items()}
    assert got == {"usdrl": DownstreamCrops(WHOLE, WHOLE), "umurl": DownstreamCrops(WHOLE, WHOLE),
                   "isc": DownstreamCrops(ISC_RANDOM, DownstreamInput("center", 0.95))}
    # the committed random-crop keys are ISC's official values (what `train_crop: random` draws)
    assert downstream_inputs(_cfg(train_crop="random"), METHODS["usdrl"].downstream_crop).train == ISC_RANDOM


def test_explicit_inputs_take_their_keys():
    usdrl = METHODS["usdrl"].downstream_crop
    # USDRL's PKU-MMD II linear evaluation (usdrl.md Q11): train on the centre 50 %, test on the whole
    pku2 = downstream_inputs(_cfg(train_crop="center", train_ratio=0.5), usdrl)
    assert pku2 == DownstreamCrops(DownstreamInput("center", 0.5), WHOLE)
    both = downstream_inputs(_cfg(train_crop="random", random_scale=[0.3, 0.9], random_min_frames=8,
                                  test_crop="center", test_ratio=0.9), usdrl)
    assert both == DownstreamCrops(DownstreamInput("random", scale=(0.3, 0.9), min_frames=8),
                                   DownstreamInput("center", 0.9))
    # whole takes no ratio; auto ignores the explicit keys (the method's own values)
    assert downstream_inputs(_cfg(train_crop="whole", train_ratio=0.5), usdrl).train == WHOLE
    isc = downstream_inputs(_cfg(test_ratio=0.5, random_scale=[0.1, 0.2]), METHODS["isc"].downstream_crop)
    assert isc == METHODS["isc"].downstream_crop


def test_the_downstream_input_rejects_what_it_cannot_mean():
    with pytest.raises(ValueError, match="crop"):
        DownstreamInput("centre")
    with pytest.raises(ValueError, match="ratio"):
        DownstreamInput("whole", 0.5)
    with pytest.raises(ValueError, match="scale and min_frames"):
        DownstreamInput("random")
    with pytest.raises(ValueError, match="deterministic"):
        DownstreamCrops(train=WHOLE, test=ISC_RANDOM)
    assert ISC_RANDOM.describe() == "random U(0.5, 1.0), min 64 frames"
    assert DownstreamInput("center", 0.95).describe() == "centre 95 %"


def test_crop_windows_are_seeded_and_deterministic_crops_repeat():
    n = np.array([300, 100, 37, 64, 80])
    starts, lengths = crop_windows(ISC_RANDOM, n, 6, seed=0)
    assert starts.shape == lengths.shape == (6, 5) and starts.dtype == np.int64
    again = crop_windows(ISC_RANDOM, n, 6, seed=0)
    other = crop_windows(ISC_RANDOM, n, 6, seed=1)
    assert np.array_equal(again[0], starts) and np.array_equal(again[1], lengths)
    assert not (np.array_equal(other[0], starts) and np.array_equal(other[1], lengths))
    assert (lengths >= np.minimum(n, 64)).all() and (starts + lengths <= n).all()
    c_starts, c_lengths = crop_windows(DownstreamInput("center", 0.95), n, 2)
    assert c_starts.tolist() == [[7, 2, 0, 1, 2]] * 2 and c_lengths.tolist() == [[286, 96, 37, 62, 76]] * 2
    w_starts, w_lengths = crop_windows(WHOLE, n)
    assert w_starts.tolist() == [[0] * 5] and w_lengths.tolist() == [n.tolist()]


class _MeanEncoder:
    """A stand-in frozen encoder: per-channel, per-frame means, flattened."""

    frames, feature_dim = 8, 3 * 8

    def eval(self):
        return self

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return clip.mean(dim=(3, 4)).flatten(1)


def test_window_features_are_the_crops_resampled(tmp_path):
    ds = SkeletonH5Dataset(write_tiny_h5(tmp_path / "tiny.h5", n_train=10, n_test=2, frames=40), TINY_SPLIT, "train")
    encoder = _MeanEncoder()
    starts, lengths = crop_windows(DownstreamInput("random", scale=(0.5, 1.0), min_frames=4), ds.num_frame, 3)
    got = extract_window_features(encoder, ds, starts, lengths, batch_size=4)
    assert got.shape == (3, 10, 24) and got.dtype == np.float32
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    for k in range(3):
        clip = resample_time(x, torch.from_numpy(starts[k]), torch.from_numpy(lengths[k]), 8)
        np.testing.assert_array_equal(got[k], encoder.features(clip).numpy())
    np.testing.assert_array_equal(extract_window_features(encoder, ds, starts, lengths, batch_size=3), got)
    # a deterministic window is the deterministic input
    c_starts, c_lengths = crop_windows(DownstreamInput("center", 0.9), ds.num_frame)
    np.testing.assert_array_equal(extract_window_features(encoder, ds, c_starts, c_lengths)[0],
                                  extract_features(encoder, ds, crop="center", ratio=0.9))


def _file(tmp_path, **crops):
    x = {"train": np.zeros((4, 3), np.float32), "test": np.ones((2, 3), np.float32)}
    save_feature_file(tmp_path / "f.npz", features=x, labels={"train": [0, 1, 0, 1], "test": [0, 1]},
                      ids={"train": list("abcd"), "test": list("ef")}, num_classes=2, **crops)
    return tmp_path / "f.npz"


def test_the_feature_file_holds_the_train_crops(tmp_path):
    assert "train_x_crops" not in load_feature_file(_file(tmp_path))
    crops, windows = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3), np.ones((2, 4, 2), np.int64)
    loaded = load_feature_file(_file(tmp_path, train_crops=crops, train_crop_windows=windows))
    np.testing.assert_array_equal(loaded["train_x_crops"], crops)
    np.testing.assert_array_equal(loaded["train_crop_windows"], windows)
    with pytest.raises(ValueError, match="expected"):
        _file(tmp_path, train_crops=crops[:, :3], train_crop_windows=windows[:, :3])
    with pytest.raises(ValueError, match="together"):
        _file(tmp_path, train_crops=crops)
    arrays = dict(load_feature_file(_file(tmp_path)))
    write_npz_atomic(tmp_path / "half.npz", **arrays, train_x_crops=crops)
    with pytest.raises(DataError, match="without the other"):
        load_feature_file(tmp_path / "half.npz")
