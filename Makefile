# Two entry points: `make demo` (set up, then run the main job) and `make test` (set up with dev tools, test).
# torch is installed first, pinned, so that pip never pulls a multi-GB CUDA build as a dependency.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: demo test test-slow lint typecheck bench-import setup setup-dev

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	touch $@

$(VENV)/.core: $(VENV)/.base pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PY) -m pip install -q -e '.[dev]' $(TORCH)
	touch $@ $(VENV)/.core

setup: $(VENV)/.core
setup-dev: $(VENV)/.dev

demo: setup
	$(PY) -m sentencekit.cli.main models fetch all-MiniLM-L6-v2
	$(PY) examples/quickstart.py all-MiniLM-L6-v2

test: setup-dev
	$(PY) -m pytest -q

test-slow: setup-dev
	$(PY) -m pytest -q -m slow

lint: setup-dev
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

typecheck: setup-dev
	$(VENV)/bin/mypy

bench-import: setup-dev
	$(PY) benchmarks/import_time.py
