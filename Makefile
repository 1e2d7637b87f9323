# The two commands of the README. Each creates the virtual environment when it is missing.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOOK    := $(VENV)/.path-hook
READY   := $(STAMP) $(HOOK)
# Every package, direct and transitive, at an exact version with its sha256 hashes, compiled by
# pip-tools from pyproject.toml (dependencies + the extras in LOCK_EXTRAS); `make lock` regenerates it.
LOCK        := requirements.lock
LOCK_EXTRAS := test
LOCK_ARGS   ?=
PIP_VERSION       := 26.3
PIP_TOOLS_VERSION := 7.6.2

# stage commands in dvc.yaml call `python`: the project's virtual environment comes first (outside
# make, tools/venv_path.pth does the same: see $(HOOK) below)
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: run test env lock bench compare sweep exps shell clean-env

run: $(READY)  ## the main job: the whole DVC pipeline on the default (synthetic) data
	$(BIN)/dvc repro

test: $(READY)  ## lint (ruff, configured in pyproject.toml), then the test suite
	$(BIN)/ruff check src stages tests benchmarks tools .ci
	$(BIN)/python -m pytest -q

env: $(READY)

# torch is pinned to the CPU build served locally; an unpinned torch pulls GBs of CUDA packages.
# The lock is installed hash-checked; the project itself (editable) then goes in without its deps.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# dvc.yaml's commands call `python`, found on PATH. So that `.venv/bin/dvc repro` (or mlflow, skelrep)
# works without activating the environment too, tools/venv_path.pth goes into its site-packages:
# every process of the environment's python puts $(BIN) first on PATH, and the stages it starts
# run with the same interpreter.
$(HOOK): tools/venv_path.pth $(STAMP)
	cp tools/venv_path.pth "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/skelrep_venv_path.pth"
	touch $(HOOK)

# An interactive shell with the environment activated: dvc, mlflow, skelrep and python of $(BIN)
# first on PATH, the telemetry switches above set; `exit` returns. Bash reads ~/.bashrc, then
# $(BIN)/activate (whatever the rc file puts on PATH); other shells get the PATH above.
shell: $(READY)  ## a shell for running dvc, mlflow and skelrep directly
	@printf '%s\n' '[ -f ~/.bashrc ] && . ~/.bashrc' '. "$(abspath $(BIN))/activate"' > $(VENV)/.shellrc
	@echo "$(abspath $(BIN)) is first on PATH: dvc, mlflow, skelrep, python ('exit' leaves this shell)"
	@case "$${SHELL:-/bin/bash}" in \
	  */bash) exec bash --rcfile $(VENV)/.shellrc -i ;; \
	  *) exec "$$SHELL" -i ;; \
	esac

# Regenerate the lock after editing pyproject.toml's dependencies. Pins already in the lock are kept
# where they still fit; `make lock LOCK_ARGS=--upgrade` moves everything to the newest releases.
# pip-tools goes into the venv only here: `make run` and `make test` never need it.
# Index locations come from pip's configuration (the local CPU torch wheel), not from the lock.
LOCK_FLAGS := --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
  $(foreach e,$(LOCK_EXTRAS),--extra $(e))
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION) pip-tools==$(PIP_TOOLS_VERSION)
	CUSTOM_COMPILE_COMMAND="make lock   # pip-compile $(LOCK_FLAGS) pyproject.toml" \
	  $(BIN)/pip-compile --quiet $(LOCK_FLAGS) $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

bench: $(READY)  ## benchmarks (print tables; not part of the tests)
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/train_step.py

compare: $(READY)  ## tables over every run in mlflow.db: one row per method/stream/ablation, 3s fusion
	$(BIN)/skelrep compare

# The method comparison: each variant is a DVC experiment run outside the workspace (--temp),
# logging into the same mlflow.db; `make run` gives the default row (USDRL, joint stream).
# TARGETS restricts the stages, e.g. TARGETS="linear@ntu60-xsub knn@ntu60-xsub".
SWEEP := method=umurl method=isc usdrl.train.modality=bone usdrl.train.modality=motion
sweep: $(READY)  ## every method and USDRL's bone/motion streams as DVC experiments, then `make compare`
	for override in $(SWEEP); do $(BIN)/dvc exp run --temp -S $$override $(TARGETS) || exit 1; done
	$(MAKE) compare

# `dvc exp show` has a column for every key of params.yaml and every stage dep (about 300); this
# keeps the method, each method's variant and main training keys, and the headline metrics of
# reports/metrics.json (README: "Using dvc, mlflow and skelrep directly"). ARGS adds options:
# make exps ARGS=--md, ARGS="--sort-by ntu60-xsub/linear_top1", ARGS="-A" (every commit).
EXPS_KEEP := ^(Experiment|Created|method|usdrl\.encoder\.arch|isc\.pair|(usdrl|umurl|isc)\.train\.(modality|lr|epochs|batch_size)|[^/]+/(linear_top1|knn_top1|detect_mAP))$$
exps: $(READY)  ## the experiments table, headline columns only
	$(BIN)/dvc exp show --keep '$(EXPS_KEEP)' --drop '.*' $(ARGS)

clean-env:
	rm -rf $(VENV)
