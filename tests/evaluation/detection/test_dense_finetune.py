"""Protocol D (dense per-frame classification, the TPAMI pipeline) on hand-built sequences: the
training clips (sliding and seg2clip), per-frame probabilities aligned with the frames, the
encoder fine-tuned (its weights move) or frozen (the head-only variant: they do not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrep.evaluation.detection.dense_finetune import (
    IGNORE,
    DenseDetector,
    DenseFinetuneSettings,
    TrainVideo,
    finetune_dense_detector,
    predict_dense_probs,
    seg2clip,
    sliding_clip,
    sliding_starts,
)
from skelrep.evaluation.detection.proposals import proposals_thr, true_runs

CLASSES = 4


def _labels(pattern) -> np.ndarray:
    return np.concatenate([np.full(n, label) for label, n in pattern]).astype(np.int64)


def _video(labels: np.ndarray) -> TrainVideo:
    """Channels: one-hot of the frame's label, and the frame index (C = CLASSES + 1, V = 2, M = 1)."""
    x = np.zeros((CLASSES + 1, labels.size, 2, 1), np.float32)
    x[labels, np.arange(labels.size)] = 1.0
    x[CLASSES] = np.arange(labels.size)[:, None, None]
    segments = tuple((int(labels[s]), s, e) for s, e in true_runs(labels > 0))
    return TrainVideo(x, labels, segments)


class FrameEncoder(nn.Module):
    """A fake encoder with dense features: a linear map of each frame's label channels."""

    method = "fake"

    def __init__(self, frames: int = 16, dim: int = 8, seed: int = 0, identity: bool = False):
        super().__init__()
        self.frames, self.dense_dim, self.feature_dim = frames, dim, dim
        self.proj = nn.Linear(CLASSES, dim)
        with torch.no_grad():
            if identity:
                self.proj.weight.copy_(torch.eye(dim, CLASSES))
                self.proj.bias.zero_()
            else:
                gen = torch.Generator().manual_seed(seed)
                self.proj.weight.copy_(torch.randn(dim, CLASSES, generator=gen))
                self.proj.bias.copy_(0.1 * torch.randn(dim, generator=gen))

    def dense_features(self, clip: torch.Tensor) -> torch.Tensor:
        assert clip.shape[2] == self.frames
        return self.proj(clip[:, :CLASSES].mean(dim=(3, 4)).permute(0, 2, 1))


PATTERN = [(0, 20), (1, 30), (0, 15), (2, 40), (0, 25), (3, 22)]  # 152 frames


def test_sliding_clips_cover_every_frame_and_ignore_the_padding():
    video = _video(_labels(PATTERN))
    starts = sliding_starts(152, 16, 8)
    assert starts[0] == 0 and starts[-1] + 16 >= 152 and np.all(np.diff(starts) <= 8)
    clip, labels = sliding_clip(video, 144, 16)
    assert clip.shape == (CLASSES + 1, 16, 2, 1)
    np.testing.assert_array_equal(labels[:8], video.frame_label[144:])
    assert np.all(labels[8:] == IGNORE)
    assert np.all(clip[CLASSES, 8:] == 151)  # the last frame repeated
    short = _video(_labels([(0, 5), (2, 5)]))
    assert sliding_starts(10, 16, 8) == [0]
    assert (sliding_clip(short, 0, 16)[1] == IGNORE).sum() == 6


def test_seg2clip_surrounds_the_resampled_segment_with_native_background():
    video = _video(_labels(PATTERN))
    segment = video.segments[1]  # (2, 65, 105)
    assert segment == (2, 65, 105)
    seen = set()
    for seed in range(20):
        clip, labels = seg2clip(video, segment, 64, torch.Generator().manual_seed(seed))
        assert clip.shape == (CLASSES + 1, 64, 2, 1) and labels.shape == (64,)
        mid = labels == 2
        assert 64 - int(64 * 0.6) <= mid.sum() <= 64 - int(64 * 0.5)
        run = true_runs(mid)
        assert len(run) == 1  # one block of the segment's label
        s, e = run[0]
        assert s <= 32  # at most half the clip before it
        frames = clip[CLASSES, :, 0, 0]
        # before: native frames up to the segment start; inside: the segment resampled; after: from its end
        np.testing.assert_array_equal(frames[:s], np.arange(65 - s, 65))
        assert frames[s] >= 65 and frames[e - 1] <= 104 and np.all(np.diff(frames[s:e]) > 0)
        np.testing.assert_array_equal(frames[e:], np.arange(105, 105 + 64 - e))
        np.testing.assert_array_equal(labels[:s], video.frame_label[65 - s:65])
        np.testing.assert_array_equal(labels[e:], video.frame_label[105:105 + 64 - e])
        seen.add(s)
    assert len(seen) > 5  # the split before/after is drawn
    a = seg2clip(video, segment, 64, torch.Generator().manual_seed(3))
    b = seg2clip(video, segment, 64, torch.Generator().manual_seed(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # at the video's start the background indices are clipped to frame 0
    first = _video(_labels([(1, 30), (0, 100)]))
    clip, labels = seg2clip(first, first.segments[0], 64, torch.Generator().manual_seed(0))
    s = true_runs(labels == 1)[0][0]
    assert np.all(clip[CLASSES, :s, 0, 0] == 0)


def test_probabilities_are_aligned_with_the_frames_and_padding_dropped():
    labels = _labels(PATTERN)  # 152 frames: 9 clips of 16 and a padded tenth
    model = DenseDetector(FrameEncoder(identity=True, dim=CLASSES), CLASSES, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.fc.weight.copy_(5.0 * torch.eye(CLASSES))
    probs = predict_dense_probs(model, _video(labels).joint, batch_size=3)
    assert probs.shape == (152, CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), labels)


def _train(finetune: bool, clips: str = "sliding", epochs: int = 30, seed: int = 0):
    videos = [_video(_labels(PATTERN)), _video(_labels([(0, 10), (3, 30), (0, 20), (1, 35), (2, 30), (0, 12)]))]
    encoder = FrameEncoder(seed=1)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    settings = DenseFinetuneSettings(epochs=epochs, lr=0.2, batch_size=4, finetune=finetune, train_clips=clips,
                                     train_stride=8, seed=seed)
    model, history = finetune_dense_detector(encoder, videos, num_classes=CLASSES, settings=settings)
    return model, history, before


@pytest.mark.parametrize("clips", ["sliding", "seg2clip"])
def test_fine_tuning_moves_the_encoder_and_learns_the_frames(clips):
    model, history, before = _train(True, clips)
    assert [h["epoch"] for h in history] == list(range(1, 31))
    assert {h["lr"] for h in history} == {0.2}  # constant
    after = model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    test = _labels([(0, 25), (2, 45), (0, 20), (3, 30), (0, 17)])
    probs = predict_dense_probs(model, _video(test).joint)
    assert (probs.argmax(1) == test).mean() > 0.9
    found = {p.label for p in proposals_thr(probs, 0.5)}
    assert found == {2, 3}


def test_the_head_only_variant_keeps_the_encoder():
    model, history, before = _train(False, epochs=3)
    after = model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # the head still learns


def test_training_is_deterministic_for_a_seed():
    (a, ha, _), (b, hb, _) = _train(True, "seg2clip", epochs=2), _train(True, "seg2clip", epochs=2)
    assert ha == hb
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    c, _, _ = _train(True, "seg2clip", epochs=2, seed=1)
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_bad_inputs_are_refused():
    pooled = FrameEncoder()
    pooled.dense_dim = 0  # a global feature only (ISC's AGCN, HCN)
    with pytest.raises(ValueError, match="no dense per-frame features"):
        DenseDetector(pooled, CLASSES, torch.Generator())
    video = _video(_labels(PATTERN))
    settings = DenseFinetuneSettings(epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match="frame labels"):
        finetune_dense_detector(FrameEncoder(), [video], num_classes=3, settings=settings)
    with pytest.raises(ValueError, match="train_clips"):
        DenseFinetuneSettings(epochs=1, lr=0.1, batch_size=4, train_clips="official")
    with pytest.raises(ValueError, match="no ground-truth segment"):
        finetune_dense_detector(FrameEncoder(), [TrainVideo(video.joint, np.zeros(152, np.int64))],
                                num_classes=CLASSES,
                                settings=DenseFinetuneSettings(epochs=1, lr=0.1, batch_size=4, train_clips="seg2clip"))


class Interrupt(Exception):
    pass


class DyingEncoder(FrameEncoder):
    """Raises after ``calls`` forward passes: a training killed mid-epoch."""

    def __init__(self, calls: int, **kwargs):
        super().__init__(**kwargs)
        self.calls = calls

    def dense_features(self, clip):
        self.calls -= 1
        if self.calls < 0:
            raise Interrupt
        return super().dense_features(clip)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    videos = [_video(_labels(PATTERN)), _video(_labels([(0, 10), (3, 30), (0, 20), (1, 35), (2, 30), (0, 12)]))]
    settings = DenseFinetuneSettings(epochs=5, lr=0.2, batch_size=4, train_stride=8, train_clips="seg2clip",
                                     ckpt_every=2)
    whole, whole_history = finetune_dense_detector(FrameEncoder(seed=1), videos, num_classes=CLASSES,
                                                   settings=settings)
    per_epoch = 2  # 6 segments at batch 4: 2 batches an epoch
    with pytest.raises(Interrupt):  # killed during epoch 4: epochs 1-2 saved, the checkpoint of epoch 2 stays
        finetune_dense_detector(DyingEncoder(3 * per_epoch + 1, seed=1), videos, num_classes=CLASSES,
                                settings=settings, ckpt_dir=tmp_path, fingerprint="run")
    assert int(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"]) == 2
    # the same configuration resumes after epoch 2 and ends where the uninterrupted run did
    resumed, history = finetune_dense_detector(FrameEncoder(seed=1), videos, num_classes=CLASSES,
                                               settings=settings, ckpt_dir=tmp_path, fingerprint="run")
    assert history == whole_history
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(),
                                                 strict=True))
    assert not (tmp_path / "checkpoint.pt").exists()  # removed once complete
