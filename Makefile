# tokenomy — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
E2E_DIR := .e2e
CLAUDE_CODE_VERSION ?= 2.1.197

.PHONY: help install demo test lint typecheck contracts unit e2e e2e-clients bench clean

help:
	@echo "make demo   — the main job on the built-in emulator (no API key)"
	@echo "make test   — install everything and run every check (lint, types, contracts, tests)"
	@echo "make e2e    — install real clients (Claude Code, claude-agent-sdk) and run the end-to-end tests"
	@echo "make bench  — run the benchmarks and rewrite docs/benchmarks.md"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tokenomy demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

unit: $(STAMP)
	$(VENV)/bin/pytest -q

test: lint typecheck contracts unit

# Real third-party clients, installed from the npm registry / PyPI into .e2e/.
e2e-clients:
	@mkdir -p $(E2E_DIR)
	@if [ ! -x $(E2E_DIR)/node_modules/.bin/claude ]; then \
	  cd $(E2E_DIR) && timeout 300 npm install --silent --no-audit --no-fund \
	    @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) \
	  || echo "e2e: npm registry unreachable; Claude Code tests will be skipped"; fi

e2e: $(STAMP) e2e-clients
	$(VENV)/bin/pytest -q -m e2e

bench: $(STAMP)
	$(PY) bench/cost.py
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) $(E2E_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
