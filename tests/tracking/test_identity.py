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
    identity = run_identity(params, protocol)
    assert identity == RunIdentity(
        experiment=protocol, run_key=key, run_name=f"usdrl-{protocol}-joint", enabled=True,
        tags={"method": "usdrl", "variant": "DSTE, joint", "protocol": protocol, "dataset": dataset,
              "benchmark": benchmark, "data_source": "synthetic", "modality": "joint",
              "skelrep.config_key": CONFIG_KEY, "skelrep.stream_key": STREAM_KEY})


@pytest.mark.parametrize("method", ["usdrl", "umurl", "isc"])
def test_the_run_key_is_the_old_one_for_the_committed_params(method):
    params = load_params(REPO_ROOT / "params.yaml")
    params["method"] = method
    assert set(protocol_names(params)) >= set(RECORDED)
    for protocol in protocol_names(params):
        assert run_identity(params, protocol).run_key == old_run_key(params, protocol)


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
    assert bone.tags["modality"] == "bone" and bone.run_name == "usdrl-ntu60-xsub-bone"
    assert bone.run_key != joint.run_key
    assert bone.tags["skelrep.stream_key"] == joint.tags["skelrep.stream_key"]  # late fusion pairs them
    assert bone.tags["skelrep.config_key"] != joint.tags["skelrep.config_key"]
    params["mlflow"]["enabled"] = False
    assert run_identity(params, "ntu60-xsub").enabled is False
