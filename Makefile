# bloodssl: `make setup`, then `make reports` (regenerate every result) or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SRC ?=
PROFILE ?= default
DATASET ?= bloodmnist
# test processes: one per core (`pytest -n auto`, pytest-xdist); WORKERS=0 runs the tests in this process
WORKERS ?= auto
# a test file's tests on one worker, each notebook run a group of its own, handed out first (tests/conftest.py)
DIST := --dist loadgroup --no-loadscope-reorder
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: help setup data test test-fast lint reports fresh-reports readme bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(BIN)/bloodssl-ready  ## make .venv, install the package editable with its extras, register the kernel

$(BIN)/bloodssl-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[notebooks,transfer,fast,robustness,scale,dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name bloodssl --display-name "Python (bloodssl)"
	touch $@

data: setup  ## put the verified <DATASET>.npz in data/raw (default bloodmnist; SRC=path to use a copy)
	$(BIN)/python -m bloodssl.data --dataset $(DATASET) $(if $(SRC),--src "$(SRC)")

test: setup data  ## ruff (lint and format), unit tests and a papermill smoke run of every notebook with its checks
	$(BIN)/ruff check src tests notebooks
	$(BIN)/ruff format --check src tests
	$(BIN)/python -m pytest tests -n $(WORKERS) $(DIST)

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest tests -n $(WORKERS) $(DIST) -m "not notebooks"

lint: setup  ## ruff check and format check
	$(BIN)/ruff check src tests notebooks
	$(BIN)/ruff format --check src tests

reports: setup data  ## execute every notebook (PROFILE=default) into reports/ with HTML, then rebuild the README tables
	$(BIN)/python -m bloodssl.reports run --profile $(PROFILE) $(NOTEBOOKS)
	$(BIN)/python -m bloodssl.reports readme

fresh-reports: data  ## time `make reports` in a fresh clone of this commit (nothing reused), copy its reports/ back
	bash scripts/fresh_reports.sh
	$(BIN)/python -m bloodssl.reports readme

readme: setup  ## rebuild the README's results tables from reports/results/
	$(BIN)/python -m bloodssl.reports readme

bench: setup  ## training and inference images/s of every model per backend and batch size -> reports/results/bench.csv
	$(BIN)/python -m bloodssl.deploy.bench

clean:  ## remove caches and checkpoints (keeps data/raw and reports/)
	rm -rf models/* data/processed/* .pytest_cache .ruff_cache
