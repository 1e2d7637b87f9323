"""Datasets and protocols: the built-in benchmarks resolve as before; user protocols on generic
datasets come from params.yaml alone (and so do the DVC stages); errors name the key."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import pytest
import yaml

from skelrep.catalog import PROTOCOLS
from skelrep.data.protocols import USER_BENCHMARK, protocol_names, resolve_all, resolve_protocol
from skelrep.errors import ParamsError
from skelrep.params import load_params

from ..conftest import REPO_ROOT

PARAMS = load_params(REPO_ROOT / "params.yaml")
GENERIC = {"root": "data/import/mydata", "layout": "kinect_v1_20",
           "splits": {"xsub": {"column": "subject", "train": "odd"}, "xview": {"column": "camera", "train": [1]}},
           "zero_frames": "interpolate", "min_frames": 16, "max_frames": 64, "extra_persons": "fail"}


NO_SETTINGS = {"pretrain": {}, "features": {}, "linear": {}, "knn": {}}  # a protocol's own settings: none


def with_user_protocol(**entry) -> dict:
    params = copy.deepcopy(PARAMS)
    params["data"]["mydata"] = {"source": "generic", "base": "mydata", "generic": copy.deepcopy(GENERIC)}
    params["protocols"]["mydata-xsub"] = {"dataset": "mydata", "split": "xsub", **NO_SETTINGS, **entry}
    return params


def test_builtin_protocols_resolve_as_before():
    assert protocol_names(PARAMS) == tuple(PROTOCOLS)
    for name, (dataset, split) in PROTOCOLS.items():
        for params in (PARAMS, {}):  # with the committed protocols section, and without one
            protocol = resolve_protocol(params, name)
            assert (protocol.dataset, protocol.split, protocol.builtin) == (dataset, split, True)
            assert protocol.benchmark == split and name == f"{dataset}-{split}"
            assert protocol.raw_datasets == (("ntu60", "ntu120") if dataset == "ntu120" else (dataset,))


def test_builtin_protocol_entries_cannot_be_redirected():
    params = copy.deepcopy(PARAMS)
    params["protocols"]["ntu60-xsub"] = {"dataset": "ntu120", "split": "xsub", **NO_SETTINGS}
    with pytest.raises(ParamsError, match="built-in benchmark protocol") as e:
        resolve_protocol(params, "ntu60-xsub")
    assert e.value.key == "protocols.ntu60-xsub"


def test_user_protocol_on_a_generic_dataset():
    params = with_user_protocol()
    protocol = resolve_protocol(params, "mydata-xsub")
    assert (protocol.dataset, protocol.benchmark, protocol.raw_datasets) == ("mydata", USER_BENCHMARK, ("mydata",))
    assert not protocol.builtin and protocol.split == "xsub"
    assert list(resolve_all(params)) == [*PROTOCOLS, "mydata-xsub"]
    other = resolve_protocol(with_user_protocol(split="xview"), "mydata-xsub")
    assert (other.dataset, other.split) == ("mydata", "xview")


@pytest.mark.parametrize("change, key, message", [
    (lambda p: p["protocols"]["mydata-xsub"].update(dataset="other"), "protocols.mydata-xsub.dataset",
     "no dataset 'other' in params.yaml data"),
    (lambda p: p["protocols"]["mydata-xsub"].update(dataset="ntu60"), "protocols.mydata-xsub.dataset",
     "built-in benchmark dataset"),
    (lambda p: p["protocols"]["mydata-xsub"].update(split="xset"), "protocols.mydata-xsub.split",
     "data.mydata.generic.splits names xsub, xview"),
    (lambda p: p["protocols"]["mydata-xsub"].pop("split"), "protocols.mydata-xsub.split", "missing"),
    (lambda p: p["protocols"]["mydata-xsub"].update(spilt={}), "protocols.mydata-xsub.spilt", "unknown key"),
    (lambda p: p["protocols"]["mydata-xsub"].update(base="mydata"), "protocols.mydata-xsub.base", "unknown key"),
    (lambda p: p["protocols"].update({"my.xsub": {"dataset": "mydata", "split": "xsub", **NO_SETTINGS}}),
     "protocols.my.xsub", "letters, digits"),
    (lambda p: p["data"].update({"my@data": p["data"]["mydata"]}), "data.my@data", "letters, digits"),
])
def test_user_protocol_errors_name_the_key(change, key, message):
    params = with_user_protocol()
    change(params)
    with pytest.raises(ParamsError, match=message) as e:
        resolve_all(params)
    assert e.value.key == key


def test_unknown_protocol_lists_the_defined_ones():
    with pytest.raises(ParamsError, match="unknown protocol 'mydata-xview'.*ntu60-xsub.*mydata-xsub"):
        resolve_protocol(with_user_protocol(), "mydata-xview")


def _stage_names(tmp_path, params: dict) -> set[str]:
    shutil.copy(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, timeout=120)
    proc = subprocess.run([*dvc, "stage", "list", "--name-only"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_dvc_stages_come_from_params_yaml(tmp_path):
    """The built-in stage names are unchanged; a generic dataset and a protocol add their own."""
    builtin = {f"{stage}@{d}" for stage in ("download", "preprocess") for d in ("ntu60", "ntu120", "pku1", "pku2")} | {
        f"{stage}@{p}" for stage in ("pretrain", "features", "linear", "knn") for p in PROTOCOLS
    } | {"check", "detect", "report", "finetune@ntu60-xsub", "finetune@pku2-xsub",
         "transfer@ntu60-xsub-to-pku2-xsub"}  # the fine-tuning protocols' CPU default: finetune, transfer
    user = {"download@mydata", "preprocess@mydata"} | {
        f"{s}@mydata-xsub" for s in ("pretrain", "features", "linear", "knn")}
    for name, params, expected in (("committed", PARAMS, builtin), ("custom", with_user_protocol(), builtin | user)):
        (tmp_path / name).mkdir()
        assert _stage_names(tmp_path / name, params) == expected, name


def test_readme_params_snippet_defines_a_valid_protocol():
    import re

    from skelrep.data.sources import validate_data_section

    text = (REPO_ROOT / "README.md").read_text()
    snippet = yaml.safe_load(re.search(r"```yaml\n(data:\n  mydata:.*?)```", text, re.S).group(1))
    params = copy.deepcopy(PARAMS)
    params["data"].update(snippet["data"])
    params["protocols"].update(snippet["protocols"])
    assert resolve_all(params)["mydata-xsub"].dataset == "mydata"
    assert validate_data_section("mydata", params["data"]["mydata"])["generic"].layout.name == "kinect_v1_20"
