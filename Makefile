# The developer's commands. `make run` and `make test` set up .venv themselves; the install runs again only
# when pyproject.toml changes (the stamp file records the last install).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jobctl-installed

.DEFAULT_GOAL := help
.PHONY: help run test chaos bench lint format install clean

help:
	@echo "make run     run jobctl (API, scheduler, worker, Flower; Redis if needed) in the foreground"
	@echo "make test    lint, type check and run the tests"
	@echo "make chaos   the fault-injection suite at full scale; writes docs/reliability.md"
	@echo "make bench   jobctl against raw Celery, full mode (10-15 min); writes docs/benchmarks.md"
	@echo "make lint    ruff check, ruff format --check, mypy and the import contracts (lint-imports)"
	@echo "make format  apply ruff's fixes and formatting"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/jobctl up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two pytest-xdist workers: the tests of one backend stay on one worker (tests/conftest.py), and most of a test's
# time is spent waiting on its subprocesses, so two share the 2 cores well.
test: lint
	$(BIN)/pytest -q -n 2 --dist loadgroup

# The full benchmark (`jobctl bench --quick` is the under-3-minutes version); see README "Benchmarks".
bench: $(STAMP)
	$(BIN)/jobctl bench --output docs/benchmarks.md

CHAOS_RESULTS := .chaos-results.jsonl
# `make chaos CHAOS_TESTS="tests/chaos/hosts"` runs some scenarios only: their rows in docs/reliability.md are
# replaced and the other scenarios' kept (`tests/chaos/report.py --merge`).
CHAOS_TESTS ?= tests/chaos
CHAOS_SOME := $(filter-out tests/chaos tests/chaos/,$(CHAOS_TESTS))
chaos: $(STAMP)
	rm -f $(CHAOS_RESULTS)
	JOBCTL_CHAOS_FULL=1 JOBCTL_CHAOS_REPORT=$(CURDIR)/$(CHAOS_RESULTS) $(BIN)/pytest -q $(CHAOS_TESTS); \
	status=$$?; $(BIN)/python -m tests.chaos.report $(CHAOS_RESULTS) docs/reliability.md \
	"make chaos$(if $(CHAOS_SOME), CHAOS_TESTS='$(CHAOS_TESTS)')" $(if $(CHAOS_SOME),--merge); exit $$status

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
