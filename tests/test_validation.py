"""validate_all: every section of params.yaml, unknown sections rejected; `skelrep check`."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from skelrep.cli import main as cli_main
from skelrep.errors import ParamsError
from skelrep.methods import METHODS
from skelrep.params import load_params
from skelrep.profiles import apply_assignments, profile_assignments
from skelrep.validation import allowed_sections, params_errors, validate_all

from .conftest import REPO_ROOT


@pytest.fixture
def params() -> dict:
    return load_params(REPO_ROOT / "params.yaml")


def _error(params: dict) -> str:
    with pytest.raises(ParamsError) as exc:
        validate_all(params)
    return str(exc.value)


def test_the_committed_params_and_the_paper_profile_are_valid(params):
    assert params_errors(params) == []
    for method in METHODS:  # any method can be selected with the committed sections, and its recipe
        validate_all({**params, "method": method})
        validate_all(apply_assignments(params, profile_assignments("paper", params, method)))


def test_the_method_names_are_the_registry(params, monkeypatch):
    assert allowed_sections() == ("method", "data", "protocols", "preprocess", "pku", *METHODS, "features",
                                  "linear", "knn", "detection", "finetune", "transfer", "mlflow")
    assert set(allowed_sections()) == set(params)  # params.yaml holds every section
    monkeypatch.setitem(METHODS, "toy", METHODS["usdrl"])  # a newly registered method is a section too
    assert "toy" in allowed_sections()


def test_an_unknown_top_level_section_names_the_allowed_ones(params):
    params["linaer"] = {"epochs": 1}
    assert _error(params) == ("params.yaml: linaer: unknown section; allowed sections: method, data, protocols, "
                              "preprocess, pku, usdrl, umurl, isc, features, linear, knn, detection, finetune, "
                              "transfer, mlflow")


def test_a_typo_in_linear(params):
    params["linear"]["epochz"] = params["linear"].pop("epochs")
    assert _error(params).startswith("params.yaml: linear.epochz: unknown key; allowed keys: epochs, lr, ")
    params["linear"]["epochs"] = params["linear"].pop("epochz")
    params["linear"]["lr"] = "fast"
    assert "linear.lr: got 'fast'; expected a number" in _error(params)


def test_an_unknown_method_lists_the_methods(params):
    params["method"] = "simclr"
    assert _error(params) == "params.yaml: method: got 'simclr'; allowed: usdrl, umurl, isc"


def test_the_mlflow_section_is_checked(params):
    params["mlflow"]["enabled"] = "yes"
    assert _error(params) == "params.yaml: mlflow.enabled: got 'yes'; allowed: true or false"
    params["mlflow"] = {"enabled": True, "uri": "x"}
    assert _error(params).startswith("params.yaml: mlflow.uri: unknown key; allowed keys: enabled")
    del params["mlflow"]
    assert _error(params) == "params.yaml: mlflow: missing"


@pytest.mark.parametrize("dotted, bad, expected", [
    ("data.ntu60.source", "offical", "data.ntu60.source: got 'offical'"),
    ("protocols.ntu60-xsub", {"dataset": "pku1", "split": "xsub", "pretrain": {}, "features": {}, "linear": {},
                              "knn": {}}, "protocols.ntu60-xsub: got"),
    ("protocols.ntu60-xview.linear", {"lr": -1}, "protocols.ntu60-xview.linear.lr: got -1"),
    ("protocols.pku2-xsub.pretrain", {"train": {"epochz": 3}},
     "protocols.pku2-xsub.pretrain.train.epochz: unknown key"),
    ("data.ntu120.base", "ntu120", "data.ntu120.base: got 'ntu120'; allowed: 'ntu60'"),
    ("preprocess.normalisation", "z", "preprocess.normalisation: got 'z'"),
    ("pku.long_clip_policy", "middle", "pku.long_clip_policy: got 'middle'"),
    ("features.train_crop", "centre", "features.train_crop: got 'centre'"),
    ("features.test_crop", "random", "features.test_crop: got 'random'"),
    ("features.random_scale", [1.0, 0.5], "features.random_scale: got [1.0, 0.5]; expected [lo, hi] with lo <= hi"),
    ("knn.k", 0, "knn.k: got 0"),
    ("detection.proposals", "nms", "detection.proposals: got 'nms'"),
    ("detection.protocols", ["dense", "windows"],
     "detection.protocols[1]: got 'windows'; allowed: 'dense', 'window', 'dense_finetune'"),
    ("detection.protocols", ["window", "window"], "detection.protocols: got ['window', 'window']; each protocol once"),
    ("detection.protocols", [], "detection.protocols: got []"),
    ("detection.window.d_choices", [3, 0], "detection.window.d_choices[1]: got 0"),
    ("detection.window.d_choices", [4, 4], "detection.window.d_choices: got [4, 4]; each d once"),
    ("detection.window.epochz", 3, "detection.window.epochz: unknown key"),
    ("detection.window.draws", 1000, "detection.window.draws: got 1000; at most epochs"),
    ("detection.window.proposals", "nms", "detection.window.proposals: got 'nms'"),
    ("detection.dense_finetune.train_clips", "official", "detection.dense_finetune.train_clips: got 'official'"),
    ("detection.dense_finetune.lr", 0, "detection.dense_finetune.lr: got 0"),
    ("detection.dense_finetune.init_from", "ntu61-xsub",
     "detection.dense_finetune.init_from: got 'ntu61-xsub'; not a protocol of params.yaml protocols"),
    ("usdrl.encoder.arch", "vit", "usdrl.encoder.arch: got 'vit'; allowed: 'dste', 'sttr'"),
])
def test_every_section_is_checked_by_its_own_validator(params, dotted, bad, expected):
    *parents, leaf = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[leaf] = bad
    assert expected in _error(params)


def test_nesterov_needs_a_momentum(params):
    params["detection"]["window"]["momentum"] = 0.0
    assert "detection.window.nesterov: true needs a momentum > 0" in _error(params)
    params["detection"]["window"]["nesterov"] = False
    validate_all(params)


def test_a_typo_in_an_unused_method_section_is_reported(params):
    """Every method section present is validated, not only the selected one: switching
    `method` later (dvc exp run -S method=isc) must not be the first time a typo shows."""
    assert params["method"] != "isc"
    params["isc"]["trian"] = params["isc"].pop("train")
    assert _error(params).startswith("params.yaml: isc.trian: unknown key")


def test_sections_of_the_other_methods_may_be_left_out(params):
    for method in METHODS:
        if method != params["method"]:
            del params[method]
    validate_all(params)
    del params[params["method"]]
    assert _error(params) == f"params.yaml: {params['method']}: missing section for the selected method"


def test_a_protocol_needs_its_raw_datasets(params):
    del params["data"]["ntu60"]  # ntu120 protocols read the NTU-60 archive too
    assert _error(params) == "params.yaml: data.ntu60: missing (data.ntu120 builds on it: base: ntu60)"


def test_every_error_is_collected_in_file_order(params):
    params["extra"] = 1
    params["method"] = "simclr"
    params["knn"]["kk"] = 1
    params["umurl"]["encoder"]["hidden"] = 0
    assert [e.key for e in params_errors(params)] == ["extra", "method", "knn.kk", "umurl.encoder.hidden"]


def test_validation_never_changes_the_params(params):
    # what lets the stages depend on skelrep.validation only through the check stage
    before = copy.deepcopy(params)
    validate_all(params)
    assert params == before


def test_a_typo_outside_the_method_sections_fails_without_loading_torch(tmp_path):
    params = load_params(REPO_ROOT / "params.yaml")
    params["linear"]["epochz"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code = ("import sys; from skelrep.params import load_params; from skelrep.validation import validate_all\n"
            "try:\n    validate_all(load_params('params.yaml'))\nexcept Exception as e:\n    print(e)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("params.yaml: linear.epochz: unknown key") and out[1] == "False"


def test_validating_every_section_loads_no_torch_and_no_model_code(tmp_path, params):
    """The method sections too are checked torch-free, by each method's schema.py: no stage
    (download, preprocess, linear, knn, report) loads model code only to validate params.yaml."""
    (tmp_path / "valid.yaml").write_text(yaml.safe_dump(params))
    batch = params["isc"]["train"]["batch_size"]
    params["isc"]["moco"]["k"] = batch + 1  # an error of a method's check hook
    params["umurl"]["encoder"]["hiden"] = 1
    (tmp_path / "invalid.yaml").write_text(yaml.safe_dump(params))
    code = ("import json, sys; from skelrep.params import load_params\n"
            "from skelrep.validation import params_errors, validate_all\n"
            "validate_all(load_params('valid.yaml'))\n"
            "errors = [str(e) for e in params_errors(load_params('invalid.yaml'))]\n"
            "print(json.dumps({'errors': errors, 'modules': sorted(sys.modules)}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    out = json.loads(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                                    text=True, check=True).stdout.splitlines()[-1])
    assert out["errors"] == [
        ("params.yaml: umurl.encoder.hiden: unknown key; allowed keys: hidden, heads, num_layers, ffn, "
         "t_pe_max_len, frames"),
        (f"params.yaml: isc.moco.k: got {batch + 1}; expected a multiple of the global batch "
         f"isc.train.batch_size={batch} (the enqueue must not wrap mid-batch)")]
    modules = out["modules"]
    assert [m for m in modules if m == "torch" or m.startswith("torch.")] == []
    per_method = [m for m in modules if m.startswith("skelrep.methods.") and m.count(".") == 3]
    assert {m.rsplit(".", 1)[1] for m in per_method} == {"defaults", "schema"}  # no model, no method.py
    assert {f"skelrep.methods.{name}.schema" for name in METHODS} <= set(modules)
    # the synthetic suite's settings, not its writers and motion tables (~0.15 s in every stage)
    synthetic = [m for m in modules if m.startswith("skelrep.data.synthetic.")]
    assert synthetic == ["skelrep.data.synthetic.config"]
    # the preprocessing sections' schemas, not the preprocessing (h5py, readers, figure)
    assert "skelrep.data.preprocess_schema" in modules
    assert "skelrep.data.preprocess" not in modules and "h5py" not in modules


def test_skelrep_check(tmp_path, capsys, params):
    assert cli_main(["check", "--params", str(REPO_ROOT / "params.yaml")]) == 0
    assert "valid (method usdrl; every section checked: method, data, protocols" in capsys.readouterr().out
    params["method"] = "simclr"
    params["linear"]["epochz"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert cli_main(["check", "--params", str(tmp_path / "params.yaml")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "skelrep: error: params.yaml: method: got 'simclr'; allowed: usdrl, umurl, isc"
    assert err[1].startswith("skelrep: error: params.yaml: linear.epochz: unknown key; allowed keys: epochs")
    with pytest.raises(SystemExit) as exc:
        cli_main(["check", "--help"])
    assert exc.value.code == 0
    assert "--params" in capsys.readouterr().out
