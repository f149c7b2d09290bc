# The two README commands: `make run` (the demo on embedded SQLite) and `make test`.
# Both create the virtual environment and install the project on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8080
# Two workers: one per core; each builds its own databases, so they never meet.
PYTEST_ARGS ?=

.PHONY: run test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "simplane needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/simplane demo --host $(HOST) --port $(PORT)

test: $(STAMP)
	@bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Benchmarks: PostgreSQL (started if down), wrk and FreeRADIUS (installed if missing).
# BENCH_ARGS picks benchmarks or a scale, e.g. `make bench BENCH_ARGS='radius --scale 0.1'`.
BENCH_ARGS ?=
bench: $(STAMP)
	@bash scripts/install-bench-deps.sh
	@bash scripts/start-services.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) simplane-data .pytest_cache .hypothesis
