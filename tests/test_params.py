"""params.yaml validation: every section validates; errors name the dotted key and what is allowed."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from skelrep.catalog import DATASETS
from skelrep.data.preprocess import PreprocessConfig
from skelrep.data.sources import validate_data_section
from skelrep.errors import ParamsError
from skelrep.methods import METHODS, get_method
from skelrep.params import load_params
from skelrep.profiles import PROFILES, apply_assignments, profile_assignments
from skelrep.schema import validate

from .conftest import REPO_ROOT
from .dvc_stages import stage_args

sys.path.insert(0, str(REPO_ROOT))
from stages.detect import DETECTION_SCHEMA
from stages.features import FEATURES_SCHEMA
from stages.knn import KNN_SCHEMA
from stages.linear import LINEAR_SCHEMA

PARAMS = load_params(REPO_ROOT / "params.yaml")


def validate_all(params: dict) -> None:
    for dataset in DATASETS:
        validate_data_section(dataset, params["data"][dataset])
    PreprocessConfig.from_params(params["preprocess"], params["pku"])
    get_method(params["method"], params)
    for name in METHODS:  # every method's section, not only the selected one
        get_method(name, params)
    for name, schema in (("features", FEATURES_SCHEMA), ("linear", LINEAR_SCHEMA), ("knn", KNN_SCHEMA),
                         ("detection", DETECTION_SCHEMA)):
        validate(params[name], schema, name)


def test_committed_params_validate():
    validate_all(PARAMS)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("method", list(METHODS))
def test_profiles_give_valid_params_for_every_method(profile, method):
    validate_all(apply_assignments(PARAMS, profile_assignments(profile, PARAMS, method)))


@pytest.mark.parametrize("path, value, key, allowed", [
    (("method",), "simclr", "method", "usdrl"),
    (("preprocess", "normalisation"), "zscore", "preprocess.normalisation", "'umurl'"),
    (("preprocess", "on_error"), "ignore", "preprocess.on_error", "'skip'"),
    (("pku", "boundary_convention"), "1based", "pku.boundary_convention", "one_based_inclusive"),
    (("data", "ntu60", "source"), "web", "data.ntu60.source", "'official'"),
    (("usdrl", "train", "optimizer"), "lamb", "usdrl.train.optimizer", "'adam'"),
    (("usdrl", "train", "precision"), "int8", "usdrl.train.precision", "'bf16'"),
    (("usdrl", "train", "modality"), "velocity", "usdrl.train.modality", "'motion'"),
    (("usdrl", "encoder", "arch"), "gcn", "usdrl.encoder.arch", "dste"),
])
def test_invalid_choice_names_key_and_allowed_values(path, value, key, allowed):
    params = copy.deepcopy(PARAMS)
    node = params
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ParamsError) as err:
        validate_all(params)
    assert err.value.key == key
    assert allowed in str(err.value)


def test_unknown_key_is_rejected_with_the_allowed_keys():
    params = copy.deepcopy(PARAMS)
    params["linear"]["learning_rate"] = 0.1
    with pytest.raises(ParamsError, match="linear.learning_rate.*allowed keys"):
        validate_all(params)


def test_official_source_without_archives_fails_before_work():
    params = copy.deepcopy(PARAMS)
    params["data"]["ntu60"]["source"] = "official"
    with pytest.raises(ParamsError, match="data.ntu60.archives"):
        validate_all(params)


def test_stage_fails_fast_on_invalid_params(tmp_path):
    params = copy.deepcopy(PARAMS)
    params["preprocess"]["max_frames"] = -3
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = stage_args("preprocess@ntu60")  # as dvc.yaml runs it
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "preprocess.py"), *args, "--params",
                           "params.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "preprocess.max_frames" in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("stage", ["download", "preprocess", "pretrain", "features", "linear", "knn", "detect"])
def test_every_stage_has_help(stage):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / f"{stage}.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout
