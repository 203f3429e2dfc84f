# The two README commands: `make demo` and `make test`. Both create .venv on first use.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TRAIN_STAMP := $(VENV)/.train-installed
# Tests run on up to 4 processes (pytest-xdist; one per core): most of them wait on one core for the broker,
# a model or a simulation, so two cores take about two thirds of the time. PARALLEL= runs them in one process.
PARALLEL ?= -n auto --maxprocesses 4 --dist worksteal

.PHONY: demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# PyTorch (CPU build) for training and its tests; the runtime needs only onnxruntime.
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/pip install -q torch==2.13.0
	touch $@

demo: $(STAMP)
	$(BIN)/satwatch demo

lint: $(STAMP) typecheck
	$(BIN)/ruff check .

# mypy over the package as installed (satwatch.services, satwatch.producers, ...), so that imports between
# packages are checked, not silently Any: .ci/typecheck_tree.py links the sources into build/typecheck by
# pyproject's package-dir (errors show build/typecheck/satwatch/services/x.py for services/x.py).
typecheck: $(STAMP)
	$(BIN)/python .ci/typecheck_tree.py build/typecheck
	MYPYPATH=build/typecheck $(BIN)/mypy -p satwatch

test: $(TRAIN_STAMP) lint
	$(BIN)/pytest -q -p no:cacheprovider $(PARALLEL)

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow" $(PARALLEL)

clean:
	rm -rf $(VENV) var build *.egg-info
