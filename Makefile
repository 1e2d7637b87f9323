# The two commands of the README. Each creates the virtual environment when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

# stage commands in dvc.yaml call `python`: the project's virtual environment comes first
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: run test env bench compare sweep clean-env

run: $(STAMP)  ## the main job: the whole DVC pipeline on the default (synthetic) data
	$(BIN)/dvc repro

test: $(STAMP)  ## the test suite
	$(BIN)/python -m pytest -q

env: $(STAMP)

# torch is pinned to the CPU build served locally; an unpinned torch pulls GBs of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

bench: $(STAMP)  ## benchmarks (print tables; not part of the tests)
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/train_step.py

compare: $(STAMP)  ## tables over every run in mlflow.db: one row per method/stream/ablation, 3s fusion
	$(BIN)/skelrep compare

# The method comparison: each variant is a DVC experiment run outside the workspace (--temp),
# logging into the same mlflow.db; `make run` gives the default row (USDRL, joint stream).
# TARGETS restricts the stages, e.g. TARGETS="linear@ntu60-xsub knn@ntu60-xsub".
SWEEP := method=umurl method=isc usdrl.train.modality=bone usdrl.train.modality=motion
sweep: $(STAMP)  ## every method and USDRL's bone/motion streams as DVC experiments, then `make compare`
	for override in $(SWEEP); do $(BIN)/dvc exp run --temp -S $$override $(TARGETS) || exit 1; done
	$(MAKE) compare

clean-env:
	rm -rf $(VENV)
