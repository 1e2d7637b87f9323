"""``skelrep.config.run_identity``: the run key, tags and name of a configuration's MLflow run.

The run key finds the run that every stage logs into, in databases recorded before: it must
stay the hash of the same config dict. ``params_recorded.yaml`` is params.yaml when the keys
below were recorded, so they hold whatever the committed defaults become. (Recorded again when
the data sections gained ``base``: a params change, so every run key moved once; the config
and stream keys, which leave the data out, did not.)
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from skelrep.config import run_identity
from skelrep.data.protocols import protocol_names, resolve_protocol
from skelrep.params import load_params
from skelrep.recipes import protocol_params
from skelrep.tracking.mlflow_run import RunIdentity

from ..conftest import REPO_ROOT

RECORDED_PARAMS = Path(__file__).with_name("params_recorded.yaml")
CONFIG_KEY, STREAM_KEY = "ab8692879e9c9e4851f0", "f7d994a0a1cf18d9b17c"
RECORDED = {  # protocol -> (run key, dataset, benchmark)
    "ntu60-xsub": ("361bc7ceee6fa2e05c28", "ntu60", "xsub"),
    "ntu60-xview": ("27641bf6667910af55f3", "ntu60", "xview"),
    "ntu120-xsub": ("457be4fb0f7db894fa46", "ntu120", "xsub"),
    "ntu120-xset": ("c8070b11574ad4c122c2", "ntu120", "xset"),
    "pku1-xsub": ("37059dec65d7b10e6316", "pku1", "xsub"),
    "pku2-xsub": ("e79f4f2085c0d2afd89f", "pku2", "xsub"),
}


def old_run_key(params, protocol: str) -> str:
    """The run key as ``tracking.mlflow_run.protocol_config`` + ``run_key`` computed it before
    (frozen here: a change of its keys would orphan every recorded run). A user dataset's split
    rules are part of its data section."""
    spec = resolve_protocol(params, protocol)
    method = params.get("method")
    config = {"protocol": protocol, "method": method, method: params.get(method),
              "data": {d: params.get("data", {}).get(d) for d in spec.raw_datasets},
              **{k: params.get(k) for k in ("preprocess", "pku", "features", "linear", "knn", "detection")}}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:20]


@pytest.mark.parametrize("protocol", list(RECORDED))
def test_the_run_key_and_tags_are_the_recorded_ones(protocol):
    params = yaml.safe_load(RECORDED_PARAMS.read_text(encoding="utf-8"))
    key, dataset, benchmark = RECORDED[protocol]
    identity = run_identity(params, protocol)  # no committed params.yaml to compare with
    detect = ("detect/mAP_action_theta0.5",) if protocol == "pku1-xsub" else ()
    assert identity == RunIdentity(
        experiment=protocol, run_key=key, run_name="usdrl · joint", enabled=True,
        tags={"method": "usdrl", "variant": "DSTE, joint", "protocol": protocol, "dataset": dataset,
              "benchmark": benchmark, "data_source": "synthetic", "modality": "joint",
              "skelrep.config_key": CONFIG_KEY, "skelrep.stream_key": STREAM_KEY},
        metric_columns=("linear/top1_last", "linear/random_init/top1_last", "linear/handcrafted/top1_last",
                        "knn/top1", "pretrain/loss_last", *detect),
        tag_columns=("changes", "dvc.exp_name"))


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_the_run_key_is_the_old_one_for_the_committed_params(method):
    params = load_params(REPO_ROOT / "params.yaml")
    params["method"] = method
    assert set(protocol_names(params)) >= set(RECORDED)
    for protocol in protocol_names(params):
        # the key hashes what the protocol's stages run: its own settings applied (the built-in
        # protocols set pretrain.train.min_steps: 0)
        assert run_identity(params, protocol).run_key == old_run_key(protocol_params(params, protocol), protocol)


def test_a_user_protocol_keys_its_split():
    params = load_params(REPO_ROOT / "params.yaml")
    splits = {"xsub": {"column": "subject", "train": "odd"}}
    params["data"]["mydata"] = {"source": "generic", "base": "mydata", "generic": {"splits": splits}}
    params["protocols"]["mydata-xsub"] = {"dataset": "mydata", "split": "xsub", "pretrain": {}, "features": {},
                                          "linear": {}, "knn": {}}
    key = old_run_key(params, "mydata-xsub")
    identity = run_identity(params, "mydata-xsub")
    assert identity.run_key == key and identity.tags["dataset"] == "mydata"
    other = copy.deepcopy(params)
    other["data"]["mydata"]["generic"]["splits"]["xsub"] = {"column": "subject", "train": "even"}
    assert run_identity(other, "mydata-xsub").run_key != key


def test_tags_follow_the_method_and_the_switch():
    params = load_params(REPO_ROOT / "params.yaml")
    params["usdrl"]["train"]["modality"] = "bone"
    bone = run_identity(params, "ntu60-xsub")
    joint = run_identity(load_params(REPO_ROOT / "params.yaml"), "ntu60-xsub")
    assert bone.tags["modality"] == "bone" and bone.run_name == "usdrl · bone"
    assert bone.run_key != joint.run_key
    assert bone.tags["skelrep.stream_key"] == joint.tags["skelrep.stream_key"]  # late fusion pairs them
    assert bone.tags["skelrep.config_key"] != joint.tags["skelrep.config_key"]
    params["mlflow"]["enabled"] = False
    assert run_identity(params, "ntu60-xsub").enabled is False


# --- what a run says it is: the parameters it changes against the committed profile ---------


def _committed():
    return load_params(REPO_ROOT / "params.yaml")


def test_the_profile_itself_changes_nothing():
    identity = run_identity(_committed(), "ntu60-xsub", baseline=_committed())
    assert identity.run_name == "usdrl · joint"
    assert identity.tags["changes"] == "" and identity.tags["skelrep.profile"] == "default"
    assert identity.tags["skelrep.changed_params"] == ""


def test_an_ablation_names_its_changed_key():
    params = _committed()
    params["usdrl"]["loss"]["w_xcorr"] = 0
    identity = run_identity(params, "pku2-xsub", baseline=_committed())
    assert identity.run_name == "usdrl · joint · w_xcorr=0"
    assert identity.tags["changes"] == "w_xcorr=0"
    assert identity.tags["skelrep.changed_params"] == "usdrl.loss.w_xcorr=0"
    assert identity.run_key != run_identity(_committed(), "pku2-xsub").run_key


def test_changes_name_the_stream_once_and_keys_unambiguously():
    params = _committed()
    params["usdrl"]["train"]["modality"] = "motion"  # in the name as the stream, not as a change
    params["usdrl"]["train"]["lr"] = 0.5
    params["linear"]["lr"] = 0.25
    params["protocols"]["ntu60-xsub"]["knn"] = {"k": 7}  # the protocol's own setting
    params["data"]["ntu60"]["seed"] = 9
    identity = run_identity(params, "ntu60-xsub", baseline=_committed())
    assert identity.run_name == "usdrl · motion · train.lr=0.5, seed=9, linear.lr=0.25, +1 more"
    assert identity.tags["skelrep.changed_params"] == (
        "usdrl.train.lr=0.5; data.ntu60.seed=9; linear.lr=0.25; knn.k=7")
    # other protocols see only what applies to them
    assert run_identity(params, "pku1-xsub", baseline=_committed()).tags["changes"] == "train.lr=0.5, linear.lr=0.25"


def test_a_paper_run_is_named_after_the_paper_profile():
    from skelrep.profiles import apply_assignments, profile_assignments

    paper = apply_assignments(_committed(), profile_assignments("paper", _committed()))
    assert run_identity(paper, "pku2-xsub", baseline=_committed()).run_name == "usdrl · joint · paper"
    paper["usdrl"]["loss"]["w_xcorr"] = 0
    identity = run_identity(paper, "pku2-xsub", baseline=_committed())
    assert identity.run_name == "usdrl · joint · paper, w_xcorr=0" and identity.tags["skelrep.profile"] == "paper"


def test_another_method_is_compared_with_its_own_committed_section():
    params = _committed()
    params["method"] = "umurl"
    assert run_identity(params, "ntu60-xsub", baseline=_committed()).run_name == "umurl"


def test_a_baseline_without_the_protocol_says_nothing():
    params = _committed()
    params["data"]["mydata"] = {"source": "generic", "base": "mydata",
                                "generic": {"splits": {"xsub": {"column": "subject", "train": "odd"}}}}
    params["protocols"]["mydata-xsub"] = {"dataset": "mydata", "split": "xsub", "pretrain": {}, "features": {},
                                          "linear": {}, "knn": {}}
    identity = run_identity(params, "mydata-xsub", baseline=_committed())
    assert identity.run_name == "usdrl · joint" and "changes" not in identity.tags


def test_committed_params_reads_the_baseline_commit(tmp_path, monkeypatch):
    import subprocess

    from skelrep.params import committed_params

    assert committed_params(tmp_path / "params.yaml") is None  # no git repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "params.yaml").write_text("a: 1\n")
    subprocess.run([*git, "add", "params.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "params.yaml").write_text("a: 2\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    (tmp_path / "params.yaml").write_text("a: 3\n")  # the workspace edit (what `dvc exp run -S` does)
    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)
    assert committed_params(tmp_path / "params.yaml") == {"a": 2}
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", first)
    assert committed_params(tmp_path / "params.yaml") == {"a": 1}
