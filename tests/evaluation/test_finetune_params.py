"""The `finetune` and `transfer` sections: invalid values fail before any work, naming the key;
the protocols and datasets they name are checked against the rest of params.yaml."""

from __future__ import annotations

import pytest

from skelrep.errors import ParamsError
from skelrep.params import load_params
from skelrep.validation import validate_all

from ..conftest import REPO_ROOT
from ..dvc_stages import expand_stages


@pytest.fixture
def params() -> dict:
    return load_params(REPO_ROOT / "params.yaml")


def _error(params: dict) -> str:
    with pytest.raises(ParamsError) as exc:
        validate_all(params)
    return str(exc.value)


def test_the_committed_sections_run_the_default_subset():
    params = load_params(REPO_ROOT / "params.yaml")
    validate_all(params)
    stages = {name for _, name, _ in expand_stages(params)}
    assert {s for s in stages if s.startswith(("finetune@", "transfer@"))} == {
        "finetune@ntu60-xsub", "finetune@pku2-xsub", "transfer@ntu60-xsub-to-pku2-xsub"}


@pytest.mark.parametrize("change, message", [
    (lambda p: p["finetune"].update(lr=0), "finetune.lr: got 0.0; expected a finite number in (0.0, inf]"),
    (lambda p: p["finetune"].update(fractions=[0.01, 1.0]), "finetune.fractions[1]: got 1.0"),
    (lambda p: p["finetune"].update(fractions=[0.1, 0.1]), "finetune.fractions: got [0.1, 0.1]; each fraction once"),
    (lambda p: p["finetune"].update(fractions=[], full=False), "finetune.fractions: empty while full is false"),
    (lambda p: p["finetune"].update(subset_seeds=[]), "finetune.subset_seeds: got []"),
    (lambda p: p["finetune"].update(subset_seeds=[0, 0]), "finetune.subset_seeds: got [0, 0]; each seed once"),
    (lambda p: p["finetune"].update(test_crop="random"), "finetune.test_crop: got 'random'; allowed"),
    (lambda p: p["finetune"].update(epochz=3), "finetune.epochz: unknown key"),
    (lambda p: p["finetune"].update(protocols={}), "finetune.protocols: empty; list at least one protocol"),
    (lambda p: p["finetune"]["protocols"].update({"ntu60-xview": {"dataset": "ntu120"}}),
     "finetune.protocols.ntu60-xview.dataset: got 'ntu120'; protocol ntu60-xview is on dataset 'ntu60'"),
    (lambda p: p["finetune"]["protocols"].update({"ntu99-xsub": {"dataset": "ntu60"}}),
     "finetune.protocols.ntu99-xsub: got 'ntu99-xsub'; not a protocol of params.yaml protocols"),
    (lambda p: p["transfer"]["ntu60-xsub-to-pku2-xsub"].update(target_dataset="pku1"),
     "transfer.ntu60-xsub-to-pku2-xsub.target_dataset: got 'pku1'; the target protocol pku2-xsub is on dataset"),
    (lambda p: p["transfer"]["ntu60-xsub-to-pku2-xsub"].update(source="ntu60-xsubb"),
     "transfer.ntu60-xsub-to-pku2-xsub.source: got 'ntu60-xsubb'; not a protocol"),
    (lambda p: p["transfer"]["ntu60-xsub-to-pku2-xsub"].update(target="ntu60-xsub", target_dataset="ntu60"),
     "transfer.ntu60-xsub-to-pku2-xsub.target: got 'ntu60-xsub', the source itself"),
    (lambda p: p["transfer"].update({"again": dict(p["transfer"]["ntu60-xsub-to-pku2-xsub"])}),
     "transfer.again: ntu60-xsub -> pku2-xsub is transfer.ntu60-xsub-to-pku2-xsub already"),
    (lambda p: p["transfer"].update({"a.b": dict(p["transfer"]["ntu60-xsub-to-pku2-xsub"])}),
     "transfer.a.b: transfer name 'a.b'"),
    (lambda p: p["transfer"]["ntu60-xsub-to-pku2-xsub"].pop("source_dataset"),
     "transfer.ntu60-xsub-to-pku2-xsub.source_dataset: missing"),
])
def test_a_bad_value_names_its_key(params, change, message):
    change(params)
    assert message in _error(params)


def test_no_transfer_is_fine_and_fractions_alone_are_fine(params):
    params["transfer"] = {}
    params["finetune"]["full"] = False
    validate_all(params)
    assert not any(name.startswith("transfer@") for _, name, _ in expand_stages(params))
