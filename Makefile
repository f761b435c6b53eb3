# Two commands set a fresh clone up:  `make study` (the main job)  and  `make test` (the tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export ECG_DATA_DIR ?= $(abspath data)
export TF_CPP_MIN_LOG_LEVEL ?= 3
DATASET ?= mit
PROFILE ?= fast
PYTEST_ARGS ?=

.PHONY: setup lock test test-all study lint ui

# Every package from the lock (pinned, hash-checked), then the project itself without dependencies.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# After editing pyproject.toml's dependencies: pin every package of .[cpu,dev] again, with hashes.
LOCK_COMMAND := uv pip compile pyproject.toml --extra cpu --extra dev --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 -o requirements.lock
lock: setup
	$(BIN)/$(LOCK_COMMAND)

setup: $(VENV)/.installed

lint: setup
	$(BIN)/ruff check ecg_mlflow tests benchmarks
	$(BIN)/ruff format --check ecg_mlflow tests benchmarks
	$(BIN)/lint-imports

# The default run: everything but the tests marked slow (multi-process `mlflow run` chains,
# parallel tuning workers); a few minutes.
test: lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

# CI: every test, slow ones included; the real-data tests run when ECG_DATA_DIR has mitdb/.
test-all: lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

study: setup
	@test -f "$(ECG_DATA_DIR)/mitdb/100.hea" || $(BIN)/ecg-mlflow data download mitdb --data-dir "$(ECG_DATA_DIR)"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow run . -e main -P dataset=$(DATASET) -P profile=$(PROFILE) \
		--env-manager local --experiment-name ecg-$(DATASET)

# The MLflow UI on the runs table: MLflow 3.17 opens experiments in its GenAI view unless the URL
# (or the "Model training" switch, which the browser remembers) asks for the classic one.
ui: setup
	@echo "http://127.0.0.1:5000 - click 'Model training' at the top left once (the browser remembers it),"
	@echo "or open an experiment as http://127.0.0.1:5000/#/experiments/<ID>/runs?workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" -h 127.0.0.1 -p 5000
