"""Recipes per method x benchmark: the paper profile applies every method's official settings to
every protocol in one params.yaml, the user's assignment on the same key wins, and `skelrep recipe`
shows what each stage runs and where each value came from."""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys

import pytest
import yaml

from skelrep.config import run_identity
from skelrep.errors import ParamsError
from skelrep.params import load_params
from skelrep.profiles import (
    apply_assignments,
    assigned_params,
    profile_assignments,
    render_settings,
    resolved_settings,
    set_arguments,
)
from skelrep.recipes import deep_merge, flatten, protocol_params
from skelrep.validation import validate_all

from .conftest import REPO_ROOT
from .dvc_stages import expand_stages

PARAMS = load_params(REPO_ROOT / "params.yaml")
PROTOCOLS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub")


def paper(method: str, protocol: str, sets=()) -> dict[str, dict]:
    """``{stage: {dotted key: value}}`` a protocol runs under the paper profile of ``method``."""
    stages = resolved_settings(PARAMS, protocol, profile="paper", method=method, sets=sets)
    return {stage: {k: v for k, (v, _) in values.items()} for stage, values in stages.items()}


# ------------------------------------------------------------- the official table, row by row


@pytest.mark.parametrize("protocol, lr", [("ntu60-xsub", 0.006), ("ntu60-xview", 0.03), ("ntu120-xsub", 0.006),
                                          ("ntu120-xset", 0.006), ("pku2-xsub", 0.01)])
def test_usdrl_linear_lr_per_benchmark(protocol, lr):
    linear = paper("usdrl", protocol)["linear"]
    assert linear["lr"] == lr
    assert (linear["epochs"], linear["milestones"], linear["batch_size"], linear["eval_every"]) == (
        160, [120, 140], 512, 5)


def test_usdrl_sttr_runs_its_own_ntu60_xsub_lr():
    sets = [("usdrl.encoder.arch", "sttr")]
    params = apply_assignments(PARAMS, sets)
    stages = resolved_settings(params, "ntu60-xsub", profile="paper", method="usdrl")
    assert stages["linear"]["lr"] == (0.03, "paper recipe (usdrl, ntu60-xsub)")
    assert paper("usdrl", "ntu60-xsub")["linear"]["lr"] == 0.006  # DSTE


def test_umurl_linear():
    for protocol in PROTOCOLS:
        linear = paper("umurl", protocol)["linear"]
        assert (linear["lr"], linear["batch_size"], linear["epochs"], linear["milestones"]) == (
            0.03, 512, 150, [120, 140])


def test_isc_linear():
    for protocol in PROTOCOLS:
        linear = paper("isc", protocol)["linear"]
        assert (linear["lr"], linear["batch_size"], linear["epochs"], linear["milestones"], linear["eval_every"],
                linear["momentum"], linear["weight_decay"]) == (0.1, 64, 80, [50, 70], 1, 0.9, 0.0)


@pytest.mark.parametrize("method, normalisation", [("usdrl", "umurl"), ("umurl", "umurl"), ("isc", "isc")])
def test_each_method_gets_its_data_variant(method, normalisation):
    """ISC's z-aligned data without a hand-flipped switch (its processed files coexist with the
    other variant's in DVC's run cache: switching back restores them instead of re-running)."""
    for protocol in PROTOCOLS:
        assert paper(method, protocol)["preprocess"]["normalisation"] == normalisation


def test_usdrl_pku2_linear_trains_on_the_centre_half():
    features = paper("usdrl", "pku2-xsub")["features"]
    assert (features["train_crop"], features["train_ratio"], features["test_crop"]) == ("center", 0.5, "auto")
    assert paper("usdrl", "ntu60-xsub")["features"]["train_crop"] == "auto"  # the whole sequence


def test_isc_downstream_inputs_are_its_official_crops():
    """train: a random crop U(0.5, 1) (cached crops, one per epoch in turn), test: the centre 95 %."""
    from skelrep.methods import METHODS

    crops = METHODS["isc"].downstream_crop
    assert (crops.train.crop, tuple(crops.train.scale), crops.test.crop, crops.test.ratio) == (
        "random", (0.5, 1.0), "center", 0.95)
    assert paper("isc", "ntu60-xsub")["features"]["train_crop"] == "auto"


def test_usdrl_pku2_pretraining_schedule():
    train = paper("usdrl", "pku2-xsub")["pretrain"]
    assert (train["train.batch_size"], train["train.epochs"], train["train.milestones"]) == (512, 1201, [801])
    train = paper("usdrl", "ntu60-xsub")["pretrain"]
    assert (train["train.batch_size"], train["train.epochs"], train["train.milestones"]) == (356, 451, [351])


@pytest.mark.parametrize("protocol, batch", [("ntu60-xsub", 512), ("ntu60-xview", 1024), ("ntu120-xsub", 1024),
                                             ("ntu120-xset", 1024)])
def test_umurl_batch_per_benchmark(protocol, batch):
    assert paper("umurl", protocol)["pretrain"]["train.batch_size"] == batch


@pytest.mark.parametrize("protocol, schedule", [("ntu60-xsub", (451, [351])), ("ntu120-xsub", (351, [251])),
                                                ("ntu120-xset", (351, [251]))])
def test_isc_ntu120_schedule(protocol, schedule):
    train = paper("isc", protocol)["pretrain"]
    assert (train["train.epochs"], train["train.milestones"]) == schedule


@pytest.mark.parametrize("method, precision", [("usdrl", "fp16"), ("umurl", "fp16"), ("isc", "fp32")])
def test_official_precision(method, precision):
    """USDRL and UmURL trained with fp16 autocast + GradScaler, ISC in fp32."""
    assert paper(method, "ntu60-xsub")["pretrain"]["train.precision"] == precision


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_the_paper_profile_is_valid_params_on_every_protocol(method):
    params, _ = assigned_params(PARAMS, profile="paper", method=method)
    validate_all(params)
    assert params["method"] == method


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_the_paper_profile_fine_tunes_every_protocol_with_the_cmd_recipe(method):
    """No paper of the three states a fine-tuning recipe: CMD's released one, for every method."""
    params, _ = assigned_params(PARAMS, profile="paper", method=method)
    ft = params["finetune"]
    assert {p: e["dataset"] for p, e in ft["protocols"].items()} == {p: p.split("-")[0] for p in PROTOCOLS}
    assert {k: ft[k] for k in ("lr", "momentum", "weight_decay", "batch_size", "epochs", "milestones", "min_steps",
                               "eval_every", "train_crop", "random_scale", "random_min_frames", "test_crop")} == {
        "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 64, "epochs": 80, "milestones": [50, 70],
        "min_steps": 0, "eval_every": 5, "train_crop": "random", "random_scale": [0.5, 1.0], "random_min_frames": 64,
        "test_crop": "auto"}
    assert ft["fractions"] == [0.01, 0.05, 0.1, 0.2] and ft["subset_seeds"] == [0, 1, 2, 3, 4] and ft["full"]
    assert {name: (e["source"], e["target"]) for name, e in params["transfer"].items()} == {
        "ntu60-xsub-to-pku2-xsub": ("ntu60-xsub", "pku2-xsub"),
        "ntu120-xsub-to-pku2-xsub": ("ntu120-xsub", "pku2-xsub")}
    stages = {name for _, name, _ in expand_stages(params)}
    assert {s for s in stages if s.startswith(("finetune@", "transfer@"))} == {
        *(f"finetune@{p}" for p in PROTOCOLS), "transfer@ntu60-xsub-to-pku2-xsub", "transfer@ntu120-xsub-to-pku2-xsub"}
    shown = resolved_settings(PARAMS, "ntu120-xsub", profile="paper", method=method)
    assert shown["finetune"]["lr"] == (0.01, "paper recipe (CMD fine-tuning, every method)")
    assert shown["transfer@ntu120-xsub-to-pku2-xsub"]["target"][0] == "pku2-xsub"


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_the_paper_profile_detects_as_the_papers_ran_it(method):
    """evaluation.md §6: protocol W with SSD's config, protocol D with the TPAMI code's, for every method."""
    params, _ = assigned_params(PARAMS, profile="paper", method=method)
    det = params["detection"]
    assert det["protocols"] == ["dense", "window", "dense_finetune"]
    w, d = det["window"], det["dense_finetune"]
    assert {k: w[k] for k in ("epochs", "lr", "milestones", "batch_size", "nesterov", "d_choices", "frames",
                              "samples_per_video", "draws", "test_stride", "proposals")} == {
        "epochs": 60, "lr": 0.01, "milestones": [40], "batch_size": 64, "nesterov": True, "d_choices": [3, 4, 5],
        "frames": 64, "samples_per_video": 16, "draws": 60, "test_stride": 1, "proposals": "ssd"}
    assert {k: d[k] for k in ("init_from", "finetune", "epochs", "lr", "batch_size", "momentum", "weight_decay",
                              "train_clips", "train_stride", "proposals")} == {
        "init_from": "ntu60-xsub", "finetune": True, "epochs": 150, "lr": 0.005, "batch_size": 512,
        "momentum": 0.9, "weight_decay": 0.0, "train_clips": "sliding", "train_stride": 32, "proposals": "thr"}
    assert (det["thr_class_prob"], det["ssd_smooth_radius"], det["ssd_activity_thr"]) == (0.02, 10, 0.4)
    shown = resolved_settings(PARAMS, "pku1-xsub", profile="paper", method=method)["detect"]
    assert shown["dense_finetune.lr"] == (0.005, "paper recipe (detection as the papers ran it, every method)")
    # the CPU default: both protocols, each on a small budget (few encoder passes)
    default = PARAMS["detection"]
    assert default["protocols"] == ["dense", "window", "dense_finetune"]
    assert default["window"]["draws"] <= 4 and default["window"]["test_stride"] > 1
    assert default["dense_finetune"]["epochs"] <= 4


def test_the_default_fine_tunes_a_subset():
    assert "finetune" in resolved_settings(PARAMS, "ntu60-xsub") and "finetune" not in resolved_settings(
        PARAMS, "ntu60-xview")
    assert "transfer@ntu60-xsub-to-pku2-xsub" in resolved_settings(PARAMS, "ntu60-xsub")


# --------------------------------------------------------------------------- the mechanics


def test_a_protocols_own_setting_applies_to_that_protocol_only():
    params = copy.deepcopy(PARAMS)
    params["protocols"]["ntu60-xview"]["linear"] = {"lr": 0.03}
    params["protocols"]["ntu60-xview"]["pretrain"]["train"]["epochs"] = 2  # beside its min_steps: 0
    view, sub = protocol_params(params, "ntu60-xview"), protocol_params(params, "ntu60-xsub")
    assert view["linear"]["lr"] == 0.03 and sub["linear"]["lr"] == PARAMS["linear"]["lr"]
    assert view["usdrl"]["train"]["epochs"] == 2 and view["usdrl"]["train"]["lr"] == PARAMS["usdrl"]["train"]["lr"]
    assert protocol_params(view, "ntu60-xview") == view  # applying twice changes nothing
    # the run key is the settings': the same value set globally or for the protocol is one run
    globally = copy.deepcopy(PARAMS)
    globally["linear"]["lr"] = 0.03
    globally["usdrl"]["train"]["epochs"] = 2
    assert run_identity(params, "ntu60-xview").run_key == run_identity(globally, "ntu60-xview").run_key
    assert run_identity(params, "ntu60-xsub").run_key == run_identity(PARAMS, "ntu60-xsub").run_key


def test_a_bad_protocol_setting_names_the_protocols_key():
    params = copy.deepcopy(PARAMS)
    params["protocols"]["pku2-xsub"]["linear"] = {"lr": "fast"}
    with pytest.raises(ParamsError, match="protocols.pku2-xsub.linear.lr: got 'fast'"):
        validate_all(params)
    params = copy.deepcopy(PARAMS)
    params["protocols"]["pku2-xsub"]["knn"] = {"kk": 3}
    with pytest.raises(ParamsError, match="protocols.pku2-xsub.knn.kk: unknown key"):
        validate_all(params)


def test_the_users_assignment_wins_and_is_visible():
    stages = resolved_settings(PARAMS, "ntu60-xview", profile="paper", method="usdrl",
                               sets=[("protocols.ntu60-xview.linear.lr", 0.05), ("linear.epochs", 100)])
    assert stages["linear"]["lr"] == (0.05, "-S")
    assert stages["linear"]["epochs"] == (100, "-S")
    assert stages["linear"]["batch_size"] == (512, "paper recipe (usdrl)")
    assert stages["knn"]["batch_size"] == (PARAMS["knn"]["batch_size"], "params.yaml")
    text = render_settings(stages, "usdrl on ntu60-xview")
    assert set(yaml.safe_load(text)) == {"preprocess", "pretrain", "features", "linear", "knn", "finetune"}
    assert "  lr: 0.05  # -S\n" in text and "    hidden: 1024  # paper recipe (usdrl)\n" in text


def test_detection_and_pku_settings_appear_where_they_apply():
    stages = resolved_settings(PARAMS, "pku1-xsub")
    assert "detect" in stages and "pku.boundary_convention" in stages["preprocess"]
    assert "detect" not in resolved_settings(PARAMS, "ntu60-xsub")


def test_set_arguments_replay_the_assignments_as_dvc_applies_them():
    """``key=`` for keys params.yaml has, ``++key=`` for the ones it gets; re-applying the profile
    (e.g. after another method's) gives the same file."""
    assignments = profile_assignments("paper", PARAMS, "usdrl")
    args = set_arguments(PARAMS, assignments)
    assert "protocols.pku2-xsub.linear={}" in args and "++protocols.pku2-xsub.linear.lr=0.01" in args
    assert "usdrl.encoder.hidden=1024" in args and "method=usdrl" in args
    once = apply_assignments(PARAMS, assignments)
    isc = apply_assignments(once, profile_assignments("paper", once, "isc"))
    assert isc["protocols"]["pku2-xsub"]["linear"] == {}  # the USDRL-only value is gone
    again = apply_assignments(isc, profile_assignments("paper", isc, "usdrl"))
    assert again == apply_assignments(isc, assignments)
    assert flatten(again["protocols"]["pku2-xsub"]) == flatten(once["protocols"]["pku2-xsub"])


def test_deep_merge_replaces_lists_and_leaves_its_inputs():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 0}
    merged = deep_merge(base, {"a": {"c": [3]}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 0} and base["a"]["c"] == [1, 2]


def test_cli_recipe_and_profile(tmp_path):
    out = subprocess.run([sys.executable, "-m", "skelrep.cli", "recipe", "--protocol", "pku2-xsub", "--method",
                          "usdrl", "--profile", "paper", "-S", "knn.k=3"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "  lr: 0.01  # paper recipe (usdrl, pku2-xsub)" in out.stdout and "  k: 3  # -S" in out.stdout
    out = subprocess.run([sys.executable, "-m", "skelrep.cli", "profile", "paper", "--method", "isc"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    args = shlex.split(out.stdout)
    assert args[:2] == ["-S", "method=isc"] and "preprocess.normalisation=isc" in args
    bad = subprocess.run([sys.executable, "-m", "skelrep.cli", "recipe", "--protocol", "ntu60-xsub", "-S",
                          "linear.lr=-1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "linear.lr: got -1.0" in bad.stderr


# the step budgets benchmarks/small_data.py calibrated (docs/custom_data.md): USDRL and UmURL beat
# both baselines clearly at 300 steps on 300 training sequences; ISC does not learn there in CPU minutes
CALIBRATED_MIN_STEPS = {"usdrl": 300, "umurl": 300, "isc": 140}


@pytest.mark.parametrize("method", sorted(CALIBRATED_MIN_STEPS))
def test_default_budget_small_data_trains_long_the_suite_keeps_its_epochs(method):
    """The committed profile: a user's protocol (``pretrain: {}``) on a few hundred training
    sequences trains at least the method's ``min_steps`` (calibrated by benchmarks/small_data.py),
    while the six built-in protocols set ``min_steps: 0`` and train exactly ``train.epochs``."""
    from skelrep.training.schema import train_schedule

    params = copy.deepcopy(PARAMS)
    params["method"] = method
    params["protocols"]["mine"] = {"dataset": "pku1", "split": "xsub", "pretrain": {}, "features": {},
                                   "linear": {}, "knn": {}}
    small = protocol_params(params, "mine")[method]["train"]
    schedule = train_schedule(small, 300)  # 300 training sequences: 4 steps per epoch
    assert schedule.steps >= small["min_steps"] >= CALIBRATED_MIN_STEPS[method]
    assert schedule.epochs > small["epochs"]
    # the built-in protocols: tests/training/test_schedule.py (they train exactly their epochs)


def test_a_sections_own_error_is_reported_once_an_error_the_entry_causes_by_the_entry():
    """Every built-in protocol sets pretrain.train.min_steps: a typo in the method's section is the
    section's error, named once (not once more per protocol); a value that is wrong only together
    with the entry's (ISC's queue and the entry's batch size) names the protocol."""
    from skelrep.validation import params_errors

    params = copy.deepcopy(PARAMS)
    params["usdrl"]["train"]["lrr"] = 1
    assert [e.key for e in params_errors(params)] == ["usdrl.train.lrr"]
    params = copy.deepcopy(PARAMS)
    params["method"] = "isc"
    params["protocols"]["pku1-xsub"]["pretrain"]["train"]["batch_size"] = 48  # isc.moco.k 256: no multiple
    errors = params_errors(params)
    assert len(errors) == 1 and errors[0].key == "isc.moco.k", errors
    assert "protocols.pku1-xsub.pretrain" in str(errors[0])
