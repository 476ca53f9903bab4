# mxcluster — the two commands: `make demo` and `make test` (both create .venv/ if missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest sysdeps venv bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## system packages the tests use (ssh client, swaks, ...), installed when missing
sysdeps:
	bash scripts/sysdeps.sh

lint: venv
	$(BIN)/ruff check src tests bench scripts

typecheck: venv
	$(BIN)/mypy

pytest: venv sysdeps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the one gate: lint, types and the whole test suite (slow tests included)
test: lint typecheck pytest

## three local machines on 127.0.0.11-13; Ctrl-C stops them
demo: venv
	$(BIN)/python scripts/demo.py

## regenerate docs/reference from the registries
docs: venv
	$(BIN)/python scripts/gen_reference.py

## every bench/bench_*.py, full size (minutes); BENCH_ARGS="--quick" or e.g. "cluster"
bench: venv
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
