"""``train.min_steps``: the epochs a pretraining run trains, decided from the train-split size."""

from __future__ import annotations

import copy
import math

import pytest

from skelrep.errors import ParamsError
from skelrep.methods import METHODS
from skelrep.params import load_params
from skelrep.profiles import apply_assignments, profile_assignments
from skelrep.recipes import protocol_params
from skelrep.schema import validate
from skelrep.training.schema import TRAIN_SCHEMA, train_schedule

from ..conftest import REPO_ROOT

PARAMS = load_params(REPO_ROOT / "params.yaml")
# the built-in synthetic suite's pretraining train splits (reports/preprocess/<dataset>.json)
BUILTIN_TRAIN = {"ntu60-xsub": 720, "ntu60-xview": 960, "ntu120-xsub": 1078, "ntu120-xset": 1078,
                 "pku1-xsub": 468, "pku2-xsub": 468}


def _cfg(**kw) -> dict:
    return {"epochs": 6, "min_steps": 0, "milestones": [5], "batch_size": 64, **kw}


def test_enough_steps_keep_epochs_and_milestones():
    s = train_schedule(_cfg(min_steps=42), 468)  # 7 steps x 6 epochs = 42
    assert (s.epochs, s.milestones, s.steps_per_epoch, s.steps, s.extended) == (6, [5], 7, 42, False)
    assert train_schedule(_cfg(min_steps=0), 100) == train_schedule(_cfg(), 100)


def test_a_small_split_trains_more_epochs_with_milestones_scaled():
    s = train_schedule(_cfg(min_steps=300), 240)  # 3 steps per epoch (the last 48 samples dropped)
    assert (s.epochs, s.steps_per_epoch, s.steps, s.extended) == (100, 3, 300, True)
    assert s.milestones == [83]  # 5 * 100 / 6 = 83.3: the last sixth at lr x0.1, as in 6 epochs
    s = train_schedule(_cfg(min_steps=43), 468)  # one step short: ceil(43 / 7) = 7 epochs
    assert (s.epochs, s.milestones, s.steps) == (7, [6], 49)  # 5 * 7 / 6 = 5.83 -> 6
    s = train_schedule(_cfg(epochs=4, milestones=[1, 2, 3], min_steps=10), 64)
    assert (s.epochs, s.milestones) == (10, [3, 5, 8])  # 2.5 -> 3, 5, 7.5 -> 8 (half up)


@pytest.mark.parametrize("n,batch,min_steps", [(64, 64, 1), (65, 64, 100), (127, 64, 7), (1000, 64, 999)])
def test_the_run_reaches_min_steps_and_at_most_one_epoch_more(n, batch, min_steps):
    s = train_schedule(_cfg(batch_size=batch, min_steps=min_steps), n)
    per_epoch = n // batch
    assert s.steps >= min_steps and s.epochs == max(6, math.ceil(min_steps / per_epoch))
    assert s.epochs == 6 or s.steps - per_epoch < min_steps


def test_fewer_samples_than_a_batch_is_an_error():
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_schedule(_cfg(), 63)


def test_min_steps_is_a_required_non_negative_integer():
    block = {**PARAMS["usdrl"]["train"]}
    block.pop("modality")
    validate(block, TRAIN_SCHEMA, "usdrl.train")
    for bad in (-1, 1.5, True):
        with pytest.raises(ParamsError, match="usdrl.train.min_steps"):
            validate({**block, "min_steps": bad}, TRAIN_SCHEMA, "usdrl.train")
    del block["min_steps"]
    with pytest.raises(ParamsError, match="usdrl.train.min_steps: missing"):
        validate(block, TRAIN_SCHEMA, "usdrl.train")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_builtin_suite_trains_its_epochs_unchanged(method):
    """The six built-in protocols set ``min_steps: 0`` in their own pretrain settings: the
    synthetic suite's default run trains ``train.epochs`` whatever the method's budget for small
    data (which alone would extend every one of them)."""
    params = copy.deepcopy(PARAMS)
    params["method"] = method
    assert params[method]["train"]["min_steps"] > 0
    for protocol, n in BUILTIN_TRAIN.items():
        train = protocol_params(params, protocol)[method]["train"]
        assert train["min_steps"] == 0, protocol
        s = train_schedule(train, n)
        assert (s.epochs, s.milestones, s.extended) == (train["epochs"], train["milestones"], False), protocol
        assert train["epochs"] == PARAMS[method]["train"]["epochs"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_paper_profile_trains_the_official_epochs(method):
    params = copy.deepcopy(PARAMS)
    paper = apply_assignments(params, profile_assignments("paper", params, method))
    train = paper[method]["train"]
    assert train["min_steps"] == 0
    for n in (64 * 3, 40_091):  # a tiny split and NTU-60 xsub: always the recipe's epochs
        batch = train["batch_size"]
        if n >= batch:
            assert train_schedule(train, n).epochs == train["epochs"]
