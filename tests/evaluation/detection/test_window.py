"""Protocol W (window classification, frozen encoder) on hand-built sequences.

The videos carry their frame labels in the joint coordinates (channel 0: the label, channel 1:
the frame index), and a fake encoder's feature is the one-hot label of its clip's centre frame:
a window centred on the wrong frame, a resampling that shifts the centre or probabilities out of
step with the frames show up as wrong labels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelrep.evaluation.detection.proposals import proposals_ssd
from skelrep.evaluation.detection.window import (
    SSD_SAMPLES,
    WindowSettings,
    draw_windows,
    fill_frames,
    inference_centres,
    predict_window_probs,
    train_window_classifier,
    window_clips,
    window_indices,
)

CLASSES = 4
PATTERN = [(0, 40), (1, 60), (0, 30), (2, 80), (0, 50), (3, 40)]  # (label, frames): 300 frames


def _labels(pattern=PATTERN) -> np.ndarray:
    return np.concatenate([np.full(n, label) for label, n in pattern]).astype(np.int64)


def _video(labels: np.ndarray, joints: int = 3, persons: int = 2) -> np.ndarray:
    """(3, T, V, M): channel 0 the frame's label, channel 1 its index, channel 2 zero."""
    t = labels.size
    x = np.zeros((3, t, joints, persons), np.float32)
    x[0] = labels[:, None, None]
    x[1] = np.arange(t)[:, None, None]
    return x


class CentreLabel(nn.Module):
    """A fake frozen encoder: its feature is 5 × one-hot(label of the clip's centre frame)."""

    def __init__(self, frames: int = 64):
        super().__init__()
        self.frames = frames
        self.feature_dim = CLASSES
        self.weight = nn.Parameter(torch.ones(1))  # something that must not change

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        assert clip.shape[2] == self.frames
        label = clip[:, 0, self.frames // 2, 0, 0].round().long().clamp(0, CLASSES - 1)
        return 5.0 * torch.eye(CLASSES)[label] * self.weight


def _identity_head() -> nn.Linear:
    head = nn.Linear(CLASSES, CLASSES)
    with torch.no_grad():
        head.weight.copy_(2.0 * torch.eye(CLASSES))
        head.bias.zero_()
    return head


def test_windows_are_centred_on_their_frame_and_clipped_at_the_ends():
    np.testing.assert_array_equal(window_indices(100, [50], 64)[0], np.arange(18, 82))  # t-32 .. t+31
    for d in (3, 4, 5):
        span = SSD_SAMPLES * d
        idx = window_indices(1000, [500], span)[0]
        assert idx[0] == 500 - 8 * d and idx[-1] == 500 + 8 * d - 1 and idx[span // 2] == 500
    start = window_indices(100, [0], 64)[0]
    np.testing.assert_array_equal(start, np.r_[np.zeros(32, int), np.arange(32)])  # frame 0 repeated
    end = window_indices(100, [99], 64)[0]
    np.testing.assert_array_equal(end, np.r_[np.arange(67, 100), np.full(31, 99)])
    assert window_indices(5, [2], 64).min() == 0 and window_indices(5, [2], 64).max() == 4  # shorter than a window


@pytest.mark.parametrize("d", [3, 4, 5])
def test_each_d_is_resampled_to_the_clip_length_around_its_centre(d):
    x = torch.from_numpy(_video(_labels()))
    clip = window_clips(x, [150], SSD_SAMPLES * d, 64)
    assert clip.shape == (1, 3, 64, 3, 2)
    frame = clip[0, 1, :, 0, 0].numpy()  # the source frame index, interpolated
    step = SSD_SAMPLES * d / 64  # native frames per clip frame
    assert np.all(np.diff(frame) > 0)
    assert abs(frame[0] - (150 - 8 * d)) <= step and abs(frame[-1] - (150 + 8 * d - 1)) <= step
    assert abs(frame[32] - 150) <= 1.0  # the centre frame stays the clip's centre
    if d == 4:  # the native 64 frames, untouched
        torch.testing.assert_close(clip[0], x[:, torch.from_numpy(window_indices(300, [150], 64)[0])], rtol=0, atol=0)


def test_mixed_spans_in_one_batch_match_one_window_at_a_time():
    x = torch.from_numpy(_video(_labels()))
    centres, spans = [0, 10, 150, 299, 298], [48, 80, 64, 48, 80]
    batch = window_clips(x, centres, spans, 32)
    for i, (c, s) in enumerate(zip(centres, spans, strict=True)):
        torch.testing.assert_close(batch[i], window_clips(x, [c], [s], 32)[0], rtol=0, atol=0)
    # clipped at the start: the first clip frames all read frame 0
    assert torch.all(batch[0, 1, :8] == 0)


def test_training_windows_are_seeded_and_cover_every_d():
    draw = [draw_windows([300, 50], 400, (3, 4, 5), torch.Generator().manual_seed(7)) for _ in range(2)]
    for a, b in zip(*draw, strict=True):
        np.testing.assert_array_equal(a, b)
    video, centre, span = draw[0]
    assert set(video.tolist()) == {0, 1} and set(span.tolist()) == {48, 64, 80}
    assert np.all(centre >= 0) and np.all(centre < np.where(video == 0, 300, 50))
    assert centre[video == 0].max() > 250  # the whole video, not only where a window fits


def test_probabilities_are_aligned_with_the_frames():
    labels = _labels()
    probs = predict_window_probs(CentreLabel(64), _identity_head(), _video(labels), frames=64, batch_size=37)
    assert probs.shape == (300, CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), labels)  # every frame, the ends included
    # an encoder of another clip length reads the same windows resampled
    half = predict_window_probs(CentreLabel(32), _identity_head(), _video(labels), frames=64)
    assert (half.argmax(1) == labels).mean() > 0.97


def test_a_test_stride_classifies_every_sth_frame_and_interpolates():
    labels = _labels()
    full = predict_window_probs(CentreLabel(), _identity_head(), _video(labels), frames=64)
    strided = predict_window_probs(CentreLabel(), _identity_head(), _video(labels), frames=64, stride=4)
    centres = inference_centres(300, 4)
    assert centres[0] == 0 and centres[-1] == 299 and np.all(np.diff(centres) <= 4)
    np.testing.assert_allclose(strided[centres], full[centres], atol=1e-6)
    np.testing.assert_allclose(strided.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(strided[2], 0.5 * (full[0] + full[4]), atol=1e-6)  # half-way between
    assert (strided.argmax(1) == labels).mean() > 0.97


def test_fill_frames_interpolates_linearly():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    out = fill_frames(np.array([0, 4, 6]), probs, 7)
    np.testing.assert_allclose(out[:, 1], [0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5])


def _settings(**kw) -> WindowSettings:
    base = dict(epochs=6, lr=0.1, batch_size=16, milestones=(4,), samples_per_video=48, seed=3)
    return WindowSettings(**{**base, **kw})


def test_the_head_learns_the_centre_label_with_the_encoder_frozen():
    labels = [_labels(), _labels([(0, 20), (3, 50), (0, 30), (1, 40), (2, 60)])]
    encoder = CentreLabel(32)
    head, history = train_window_classifier(encoder, [_video(y) for y in labels], labels, num_classes=CLASSES,
                                            settings=_settings())
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert [h["lr"] for h in history] == pytest.approx([0.1] * 4 + [0.01] * 2)
    assert history[-1]["train_acc"] > 90
    assert torch.equal(encoder.weight, torch.ones(1))  # frozen: read only
    test = _labels([(0, 30), (2, 70), (0, 25), (1, 55), (0, 20)])
    probs = predict_window_probs(encoder, head, _video(test), frames=64)
    assert (probs.argmax(1) == test).mean() > 0.95
    # the proposals of P-SSD recover the segments
    found = [(p.label, p.start, p.end) for p in proposals_ssd(probs, 10, 0.4)]
    assert [f[0] for f in found] == [2, 1]
    for (_, start, end), (s, e) in zip(found, [(30, 100), (125, 180)], strict=True):
        assert abs(start - s) <= 3 and abs(end - e) <= 3


def test_training_is_deterministic_for_a_seed():
    labels = [_labels()]
    runs = [train_window_classifier(CentreLabel(32), [_video(labels[0])], labels, num_classes=CLASSES,
                                    settings=_settings(epochs=2)) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][0].weight, runs[1][0].weight)
    other, _ = train_window_classifier(CentreLabel(32), [_video(labels[0])], labels, num_classes=CLASSES,
                                       settings=_settings(epochs=2, seed=4))
    assert not torch.equal(other.weight, runs[0][0].weight)


def test_cached_draws_read_the_encoder_once_per_draw():
    class Counting(CentreLabel):
        clips = 0

        def features(self, clip):
            Counting.clips += clip.shape[0]
            return super().features(clip)

    labels = [_labels()]
    runs = {}
    for draws in (None, 4, 2):
        Counting.clips = 0
        runs[draws] = train_window_classifier(Counting(32), [_video(labels[0])], labels, num_classes=CLASSES,
                                              settings=_settings(epochs=4, draws=draws))
        assert Counting.clips == 48 * (draws or 4)  # samples_per_video x videos per draw
    assert runs[None][1] == runs[4][1]  # one draw per epoch: the protocol
    assert runs[2][1][:2] == runs[None][1][:2] and runs[2][1][2:] != runs[None][1][2:]
    with pytest.raises(ValueError, match="draws"):
        _settings(epochs=4, draws=5)


def test_bad_inputs_are_refused():
    labels = _labels()
    with pytest.raises(ValueError, match="frame labels"):
        train_window_classifier(CentreLabel(), [_video(labels)], [labels], num_classes=2, settings=_settings())
    with pytest.raises(ValueError, match="expected"):
        train_window_classifier(CentreLabel(), [_video(labels)], [labels[:-1]], num_classes=CLASSES,
                                settings=_settings())
    with pytest.raises(ValueError):
        WindowSettings(epochs=1, lr=0.1, batch_size=8, d_choices=())
