"""The fine-tuning loop of the semi-supervised, fine-tune and transfer protocols: the encoder's
weights change (or, frozen, do not), seeded runs repeat, an interrupted run resumes to the same
result, and the inputs are the crops the recipe names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrep.data.augment import deterministic_crop_resize
from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.evaluation.finetune import (
    FinetuneSettings,
    Sequences,
    evaluation_clips,
    finetune,
    load_trainable_encoder,
    mean_std,
    schedule_for,
)
from skelrep.methods.base import DownstreamInput
from skelrep.models.encoder_file import save_encoder
from skelrep.training.checkpoint import checkpoint_path
from skelrep.training.pretrain import build_model_for

from ..conftest import TINY_SPLIT, write_tiny_h5
from ..training.test_pretrain import tiny_usdrl

WHOLE = DownstreamInput("whole")
RANDOM = DownstreamInput("random", scale=(0.5, 1.0), min_frames=8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny dataset (4 classes, 24 train / 12 test samples of 24 frames) and a tiny USDRL encoder file."""
    root = tmp_path_factory.mktemp("finetune")
    data = write_tiny_h5(root / "tiny.h5", n_train=24, n_test=12, frames=24)
    train = SkeletonH5Dataset(data, TINY_SPLIT, "train")
    method = tiny_usdrl()
    save_encoder(root / "encoder.pt", **method.encoder_payload(build_model_for(method, train, seed=0)))
    test = SkeletonH5Dataset(data, TINY_SPLIT, "test")
    clips = evaluation_clips(test, WHOLE, 16)
    return {"encoder": root / "encoder.pt", "train": Sequences.load(train), "clips": clips, "labels": test.label}


def _settings(**kw) -> FinetuneSettings:
    values = {"epochs": 4, "lr": 0.05, "milestones": (3,), "batch_size": 8, "eval_every": 2, "ckpt_every": 1,
              "seed": 0, "train_input": RANDOM}
    return FinetuneSettings(**{**values, **kw})


def _run(tiny, positions=range(24), **kw):
    encoder = load_trainable_encoder(tiny["encoder"])
    options = {k: kw.pop(k) for k in ("ckpt_dir", "fingerprint", "on_epoch_end") if k in kw}
    result = finetune(encoder, tiny["train"], list(positions), tiny["clips"], tiny["labels"], num_classes=4,
                      settings=_settings(**kw), progress=False, **options)
    return result, encoder


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_the_schedule_keeps_the_partial_batch_and_reaches_min_steps():
    assert schedule_for(_settings(epochs=4, batch_size=8), 20).steps_per_epoch == 3  # 8 + 8 + 4
    short = schedule_for(_settings(epochs=4, batch_size=64, min_steps=10, milestones=(3,)), 60)
    assert (short.epochs, short.milestones, short.steps) == (10, (8,), 10)  # one batch an epoch; x 2.5
    assert schedule_for(_settings(epochs=4, min_steps=2), 24).epochs == 4
    with pytest.raises(ValueError, match="no labelled sample"):
        schedule_for(_settings(), 0)


def test_fine_tuning_changes_every_encoder_weight(tiny):
    before = _state(load_trainable_encoder(tiny["encoder"]))
    result, encoder = _run(tiny)
    after = _state(encoder)
    params = {name for name, _ in encoder.named_parameters()}
    unchanged = [k for k in params if torch.equal(before[k], after[k])]
    assert not unchanged, f"encoder parameters not trained: {unchanged}"
    assert result.epochs == 4 and result.steps == 12 and result.labelled == 24
    assert [h["epoch"] for h in result.history if "test_top1" in h] == [2, 4]  # eval_every, and the last
    assert result.top1_last == result.history[-1]["test_top1"] and 0 <= result.top1_last <= 100
    assert result.history[2]["lr"] == pytest.approx(0.05) and result.history[3]["lr"] == pytest.approx(0.005)


def test_a_frozen_encoder_keeps_every_weight_and_buffer(tiny):
    before = _state(load_trainable_encoder(tiny["encoder"]))
    result, encoder = _run(tiny, freeze_encoder=True)
    after = _state(encoder)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "a frozen encoder changed"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]  # the head alone trained


def test_seeded_runs_repeat_and_the_seed_matters(tiny):
    a, enc_a = _run(tiny, positions=range(0, 24, 2))
    b, enc_b = _run(tiny, positions=range(0, 24, 2))
    c, _ = _run(tiny, positions=range(0, 24, 2), seed=1)
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(_state(enc_a).values(), _state(enc_b).values(), strict=True))
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in c.history]


def test_an_interrupted_run_resumes_to_the_same_result(tiny, tmp_path):
    straight, enc_straight = _run(tiny, ckpt_dir=tmp_path / "a", fingerprint="f")

    class Stop(Exception):
        pass

    def stop_after_2(row):
        if row["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        _run(tiny, ckpt_dir=tmp_path / "b", fingerprint="f", on_epoch_end=stop_after_2)
    assert checkpoint_path(tmp_path / "b").exists()
    epochs = []
    resumed, enc_resumed = _run(tiny, ckpt_dir=tmp_path / "b", fingerprint="f",
                                on_epoch_end=lambda row: epochs.append(row["epoch"]))
    assert epochs == [3, 4]  # the epochs after the checkpoint only
    assert resumed.history == straight.history
    assert all(torch.equal(x, y) for x, y in zip(_state(enc_straight).values(), _state(enc_resumed).values(),
                                                  strict=True))
    # a finished run leaves its result, no checkpoint; asked again, it trains nothing
    assert not checkpoint_path(tmp_path / "b").exists()
    again, _ = _run(tiny, ckpt_dir=tmp_path / "b", fingerprint="f", on_epoch_end=lambda row: epochs.append(0))
    assert again == resumed and epochs == [3, 4]
    # another configuration (fingerprint) starts from scratch
    other, _ = _run(tiny, ckpt_dir=tmp_path / "b", fingerprint="g", on_epoch_end=lambda row: epochs.append(0))
    assert epochs == [3, 4, 0, 0, 0, 0] and other.history == straight.history


def test_inputs_are_the_named_crops(tiny, tmp_path):
    data = write_tiny_h5(tmp_path / "t.h5", n_train=6, n_test=5, frames=30)
    test = SkeletonH5Dataset(data, TINY_SPLIT, "test")
    seqs = Sequences.load(test)
    assert [s.shape[1] for s in seqs.x] == test.num_frame.tolist()  # the valid frames only
    x, nf, y = seqs.batch([3, 1])
    assert x.shape == (2, 3, int(test.num_frame[[3, 1]].max()), 25, 2)
    assert nf.tolist() == test.num_frame[[3, 1]].tolist()
    assert y.tolist() == test.label[[3, 1]].tolist()
    raw = torch.stack([test[i][0] for i in range(len(test))])
    expected = deterministic_crop_resize(raw, torch.from_numpy(test.num_frame), 16, mode="center", ratio=0.9)
    torch.testing.assert_close(evaluation_clips(test, DownstreamInput("center", 0.9), 16, batch_size=2), expected)
    with pytest.raises(ValueError, match="deterministic"):
        evaluation_clips(test, RANDOM, 16)


def test_mean_and_std_over_subset_seeds(tiny):
    a, _ = _run(tiny, positions=range(0, 24, 3), epochs=2)
    b, _ = _run(tiny, positions=range(1, 24, 3), epochs=2)
    summary = mean_std([a, b], "semi/10pct")
    assert summary["semi/10pct/top1_last_mean"] == pytest.approx((a.top1_last + b.top1_last) / 2)
    assert summary["semi/10pct/top1_last_std"] == pytest.approx(abs(a.top1_last - b.top1_last) / 2)
    assert summary["semi/10pct/runs"] == 2 and summary["semi/10pct/labelled"] == 8
    assert np.isfinite(list(summary.values())).all()


@pytest.mark.parametrize("method", ["umurl", "isc"])
def test_every_method_s_encoder_is_fine_tuned(method, tmp_path):
    from ..methods.isc.test_method import tiny_isc
    from ..methods.umurl.test_method import tiny_umurl

    data = write_tiny_h5(tmp_path / "tiny.h5", n_train=16, n_test=8, frames=24)
    train, test = (SkeletonH5Dataset(data, TINY_SPLIT, s) for s in ("train", "test"))
    built = {"umurl": tiny_umurl, "isc": tiny_isc}[method]()
    save_encoder(tmp_path / "encoder.pt", **built.encoder_payload(build_model_for(built, train, seed=0)))
    encoder = load_trainable_encoder(tmp_path / "encoder.pt")
    before = _state(encoder)
    finetune(encoder, Sequences.load(train), range(16), evaluation_clips(test, WHOLE, encoder.frames), test.label,
             num_classes=4, settings=_settings(epochs=2), progress=False)
    after = _state(encoder)
    assert not [n for n, _ in encoder.named_parameters() if torch.equal(before[n], after[n])]
