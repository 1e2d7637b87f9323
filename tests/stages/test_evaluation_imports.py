"""The linear and KNN stages read only the feature file: loading them (and validating params.yaml,
which every stage does first) imports no model code, only the method registry's torch-free facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import REPO_ROOT

ALLOWED_METHOD_MODULES = ("defaults", "schema")  # the registry's facts and the params schemas


@pytest.mark.parametrize("stage", ["linear", "knn"])
def test_evaluation_stages_load_no_model_code(stage):
    code = (f"import runpy, sys, json; runpy.run_path({str(REPO_ROOT / 'stages' / f'{stage}.py')!r}, run_name='x'); "
            "from skelrep.params import load_params; from skelrep.validation import validate_all; "
            f"validate_all(load_params({str(REPO_ROOT / 'params.yaml')!r})); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('skelrep'))))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    model_code = [m for m in loaded
                  if (m.startswith("skelrep.methods.") and m.count(".") == 3
                      and m.rsplit(".", 1)[1] not in ALLOWED_METHOD_MODULES)
                  or (m.startswith("skelrep.models.") and m != "skelrep.models.schema")
                  or m in ("skelrep.data.dataset", "skelrep.evaluation.features", "skelrep.training.pretrain")]
    assert not model_code, f"stages/{stage}.py loads model code: {model_code}"
    assert "skelrep.evaluation.feature_file" in loaded  # the control: the stage's own reader is seen
