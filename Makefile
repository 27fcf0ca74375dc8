# Two commands matter: `make run` (the desk with demo data) and `make test` (the whole suite).
# Both build .venv from a Python >= 3.12 found on this machine; `make PYTHON=/path/to/python` overrides.
# `make lint` (ruff) and `make typecheck` (mypy) run first in .ci/run and must stay clean.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export DJANGO_SETTINGS_MODULE := abusedesk.settings

# Run each candidate: pyenv shims for other versions exist on PATH but exit 127, so only running tells.
PYTHON ?= $(shell for c in python3.14 python3.13 python3.12 python3; do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit; }; \
	done; \
	root=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
	for p in $$(ls -d $$root/versions/3.* 2>/dev/null | sort -t. -k2 -n -r); do \
	  $$p/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p/bin/python3; exit; }; \
	done)

.PHONY: run test test-postgres lint typecheck bench clean
.DEFAULT_GOAL := run

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "abusedesk needs Python >= 3.12: install python3.12 (or newer), or run make PYTHON=/path/to/python3.12"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '.[dev]'
	@touch $@

venv: $(BIN)/.installed

run: $(BIN)/.installed
	@mkdir -p var
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy abusedesk reports moderation

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
