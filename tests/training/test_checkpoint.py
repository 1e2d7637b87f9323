"""Resume checkpoints: plain-typed RNG states, safe (weights_only) loading, clear errors, clean-up."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from skelrep.training.checkpoint import (
    CKPT_NAME,
    FORMAT,
    CheckpointError,
    checkpoint_path,
    clear_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _draws():
    return (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # cached gaussians: gauss_next / has_gauss set
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = _draws()
    _draws()
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draws() == expected


def _state(fingerprint="cfg", **extra):
    return {"fingerprint": fingerprint, "epoch": 2, "model": {"w": torch.ones(2)}, "optimizer": {},
            "scheduler": {}, "scaler": {}, "rng": rng_state(), "history": [{"epoch": 0, "loss": 1.0}], **extra}


def test_saved_checkpoint_loads_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path, _state())
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["fingerprint"] == "cfg"
    state = load_checkpoint(tmp_path, "cfg")
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], torch.ones(2))


class _Planted:
    """An object whose unpickling would run code (here: create a file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_an_arbitrary_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"format": FORMAT, **_state(), "extra": _Planted(marker)}, tmp_path / CKPT_NAME)
    with pytest.raises(CheckpointError, match="refused: it holds objects other than tensors") as e:
        load_checkpoint(tmp_path, "cfg")
    assert str(checkpoint_path(tmp_path)) in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("cut", [0, 100, -200])
def test_truncated_checkpoint_names_the_file(tmp_path, cut):
    path = save_checkpoint(tmp_path, _state())
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="cannot be read, truncated or corrupt") as e:
        load_checkpoint(tmp_path, "cfg")
    assert str(path) in str(e.value) and "delete it to train from scratch" in str(e.value)


def test_checkpoint_in_another_format_is_refused(tmp_path):
    torch.save({"epoch": 3, "model": {}}, tmp_path / CKPT_NAME)  # e.g. someone else's file
    with pytest.raises(CheckpointError, match="not a skelrep resume checkpoint"):
        load_checkpoint(tmp_path, "cfg")


def test_fingerprint_mismatch_is_ignored_with_a_log_line(tmp_path, caplog):
    save_checkpoint(tmp_path, _state("other"))
    with caplog.at_level("WARNING"):
        assert load_checkpoint(tmp_path, "cfg") is None
    assert "belongs to another configuration" in caplog.text and str(checkpoint_path(tmp_path)) in caplog.text


def test_incomplete_checkpoint_of_this_configuration_is_refused(tmp_path):
    state = _state()
    del state["optimizer"]
    save_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError, match="no optimizer"):
        load_checkpoint(tmp_path, "cfg")


def test_clear_checkpoint_removes_only_the_resume_state(tmp_path):
    done = tmp_path / "done"
    save_checkpoint(done, _state())
    (done / f".{CKPT_NAME}.abc123").mkdir()  # a save that was killed midway
    clear_checkpoint(done)
    assert not done.exists()
    clear_checkpoint(done)  # nothing left: no error

    shared = tmp_path / "shared"
    save_checkpoint(shared, _state())
    (shared / "notes.txt").write_text("mine")
    clear_checkpoint(shared)
    assert sorted(p.name for p in shared.iterdir()) == ["notes.txt"]
