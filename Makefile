# The two commands: `make run` (the product, locally) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: setup run test test-fast lint typecheck format bench chaos clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

setup: $(VENV)/.installed
	@bash scripts/ensure-system-packages.sh

run: setup
	@bash scripts/run.sh

test: setup
	$(PY) -m pytest -p no:cacheprovider tests

test-fast: setup
	$(PY) -m pytest -p no:cacheprovider -m "not slow" tests

# Style, then the layer contracts of .importlinter (include/ plain Python, plugins/ below dags/).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# mypy on include/ and plugins/ with the settings and the reasoned exceptions of pyproject.toml.
typecheck: setup
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The fault campaign of issue 14 (docs/operations.md, "Fault campaign"): about 15 minutes on 2 cores.
CHAOS_SEED ?= 1
CHAOS_ROUNDS ?= 12
chaos: setup
	$(PY) -m tests.chaos.campaign --seed $(CHAOS_SEED) --rounds $(CHAOS_ROUNDS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .airflow .run
