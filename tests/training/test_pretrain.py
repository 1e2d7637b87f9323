"""The generic pretraining loop: resume equivalence, NaN guard, stats."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from skelrep.data.dataset import SkeletonH5Dataset
from skelrep.methods.usdrl.method import USDRL
from skelrep.training import pretrain as pretrain_module
from skelrep.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from skelrep.training.pretrain import NonFiniteLossError, run_pretraining, write_stats

from ..conftest import TINY_SPLIT, write_tiny_h5

TINY_USDRL = {
    "encoder": {"arch": "dste", "hidden": 16, "heads": 1, "num_layers": 1, "alpha": 0.5, "gap": 4,
                "kernel_size": 1, "drop_path": 0.1, "mlp_ratio": 2, "t_pe_max_len": 200, "frames": 16},
    "proj": {"cp": 32, "bn": "local"},
    "loss": {"w_sim": 5.0, "w_vac": 1.0, "w_xcorr": 0.001, "vac_var_weight": 5.0, "vac_cov_weight": 1.0,
             "var_eps": 1e-4, "xcorr_offdiag": 0.005, "domain_mix": {"i": 1.0, "t": 0.5, "s": 0.5}, "fp32": True},
    "aug": {"crop_scale": [0.1, 1.0], "corrupt_joints": 15, "p_zero": 0.5, "shear_range": 1.0, "p_corrupt": 0.5,
            "min_crop": 16, "views": 4},
    "train": {"modality": "joint", "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-5, "momentum": 0.9,
              "batch_size": 8, "epochs": 4, "min_steps": 0, "milestones": [3], "lr_gamma": 0.1, "precision": "fp32",
              "device": "cpu", "ckpt_every": 1, "workers": 0, "seed": 0},
}


def tiny_usdrl(**train_overrides):
    section = copy.deepcopy(TINY_USDRL)
    section["train"].update(train_overrides)
    return USDRL(section)


@pytest.fixture
def dataset(tmp_path):
    return SkeletonH5Dataset(write_tiny_h5(tmp_path / "tiny.h5", frames=24), TINY_SPLIT, "train")


def _run(method, dataset, ckpt_dir, **kw):
    return run_pretraining(method, method.train_cfg, dataset, device=torch.device("cpu"), ckpt_dir=ckpt_dir,
                           fingerprint="test", progress=False, **kw)


def test_killed_run_resumes_to_identical_weights(dataset, tmp_path):
    method = tiny_usdrl()
    straight = _run(method, dataset, tmp_path / "a")

    _kill_after_epoch_1(method, dataset, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b")["epoch"] == 1
    # tensors and plain values only (RNG states, history): the safe loader reads it
    assert torch.load(checkpoint_path(tmp_path / "b"), weights_only=True)["fingerprint"] == "test"
    resumed = _run(method, dataset, tmp_path / "b")
    assert resumed.resumed_from_epoch == 2
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    _assert_same_weights(straight, resumed)
    assert math.isfinite(resumed.samples_per_s) and resumed.samples_per_s > 0


class _Killed(Exception):
    pass


def _kill_after_epoch_1(method, dataset, root):
    """A run interrupted at the end of epoch 1 (its checkpoint is left in ``root``)."""
    def kill(stats):
        if stats["epoch"] == 1:
            raise _Killed

    with pytest.raises(_Killed):
        _run(method, dataset, root, on_epoch_end=kill)


def _assert_same_weights(a, b):
    assert a.encoder_payload["state_dict"].keys() == b.encoder_payload["state_dict"].keys()
    for k, v in a.encoder_payload["state_dict"].items():
        assert torch.equal(v, b.encoder_payload["state_dict"][k]), k


def test_checkpoint_of_another_configuration_is_ignored_before_its_weights_are_used(dataset, tmp_path, caplog):
    method = tiny_usdrl(epochs=1)
    fresh = _run(method, dataset, tmp_path / "fresh")
    # another configuration's checkpoint: its tensors would not even fit this model
    ckpt = load_checkpoint(tmp_path / "fresh")
    save_checkpoint(tmp_path / "c", {**ckpt, "fingerprint": "different", "model": {"bogus": torch.zeros(3)},
                                     "optimizer": {"state": "bogus"}})
    with caplog.at_level("WARNING"):
        other = _run(method, dataset, tmp_path / "c")
    assert other.resumed_from_epoch is None
    assert "belongs to another configuration" in caplog.text
    _assert_same_weights(fresh, other)


def test_samples_per_s_is_a_real_number_or_nothing(dataset, tmp_path):
    """A run killed after its last checkpoint (before the stage wrote its outputs) resumes with no
    epoch left: the same weights and history, and no throughput (it was NaN, 0 samples / 0 s)."""
    method = tiny_usdrl(epochs=2)
    per_epoch = []
    straight = _run(method, dataset, tmp_path / "f", on_epoch_end=lambda s: per_epoch.append(s["samples_per_s"]))
    assert len(per_epoch) == 2 and all(math.isfinite(v) and v > 0 for v in per_epoch)
    assert math.isfinite(straight.samples_per_s) and straight.samples_per_s > 0
    assert load_checkpoint(tmp_path / "f")["epoch"] == 1  # the last epoch is checkpointed too
    finished = _run(method, dataset, tmp_path / "f")
    assert finished.resumed_from_epoch == 2 and finished.samples_per_s is None
    assert finished.history == straight.history
    _assert_same_weights(straight, finished)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_checkpoint(dataset, tmp_path, monkeypatch):
    method = tiny_usdrl(epochs=3)
    real_loss = method.training_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real_loss(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 1 (3 steps per epoch), step 1
            terms["total"] = terms["total"] * float("nan")
        return terms

    method.training_loss = poisoned
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1"):
        _run(method, dataset, tmp_path / "d")
    ckpt = load_checkpoint(tmp_path / "d")
    assert ckpt["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())

    # on a GPU the loss is read every SYNC_EVERY steps (no host sync per step): the error names the
    # steps since the last read, and the last good checkpoint is kept all the same
    monkeypatch.setattr(pretrain_module, "_sync_every", lambda device: 2)
    calls["n"] = 0
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, steps 0-1"):
        _run(method, dataset, tmp_path / "e")
    assert load_checkpoint(tmp_path / "e")["epoch"] == 0


def test_loss_decreases_and_stats_have_every_term(dataset, tmp_path):
    method = tiny_usdrl(epochs=4, lr=2e-3)
    result = _run(method, dataset, tmp_path / "e")
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    assert {"loss", "loss/sim", "loss/vac", "loss/xcorr", "lr"} <= set(result.history[0])
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    write_stats(tmp_path / "stats.jsonl", result.history)
    lines = (tmp_path / "stats.jsonl").read_text().splitlines()
    csv_rows = (tmp_path / "stats.csv").read_text().splitlines()
    assert len(lines) == len(csv_rows) - 1 == 4  # JSON lines + the CSV that DVC plots
    assert csv_rows[0].split(",")[:2] == ["epoch", "lr"] and "loss/sim" in csv_rows[0]


def test_min_steps_extends_the_run_and_a_killed_one_resumes_to_identical_weights(dataset, tmp_path):
    """The epochs train.min_steps adds are decided from the split size before training: a resumed
    run decides the same ones and ends with the same weights as an uninterrupted one."""
    per_epoch = len(dataset) // 8
    method = tiny_usdrl(epochs=1, milestones=[1], min_steps=2 * per_epoch + 1)  # -> 3 epochs, milestone 3
    straight = _run(method, dataset, tmp_path / "a")
    assert (straight.schedule.epochs, straight.schedule.milestones, straight.schedule.extended) == (3, [3], True)
    assert [h["epoch"] for h in straight.history] == [0, 1, 2]

    _kill_after_epoch_1(method, dataset, tmp_path / "b")
    resumed = _run(method, dataset, tmp_path / "b")
    assert resumed.resumed_from_epoch == 2 and resumed.schedule == straight.schedule
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    _assert_same_weights(straight, resumed)


def test_a_cpu_run_reuses_the_previous_steps_memory(dataset, tmp_path, monkeypatch):
    """On a CPU the loop sets malloc to serve every step's tensors from the heap
    (skelrep.memory.reuse_large_blocks; its effect is tested in tests/test_memory.py)."""
    calls = []
    monkeypatch.setattr("skelrep.training.pretrain.reuse_large_blocks", lambda: calls.append(1) or True)
    _run(tiny_usdrl(epochs=1), dataset, tmp_path / "c")
    assert calls == [1]
