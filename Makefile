# tokenomy — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
E2E_DIR := .e2e
CLAUDE_CODE_VERSION ?= 2.1.197
# An older official SDK, in its own venv (1.x and 2.x cannot share one).
SDK1_SPEC ?= anthropic<2
SDK1_VENV := $(E2E_DIR)/sdk1
# The Python Claude Agent SDK (it bundles its own Claude Code CLI), in its own venv.
AGENT_SDK_SPEC ?= claude-agent-sdk==0.2.187
AGENT_VENV := $(E2E_DIR)/agent
# LiteLLM's proxy, the peer in bench/gateway_overhead.py (never 1.82.7 or 1.82.8).
LITELLM_SPEC ?= litellm[proxy]==1.103.7
LITELLM_VENV := .bench/litellm

.PHONY: help install demo test lint typecheck contracts unit e2e e2e-clients e2e-sdk1 e2e-agent-sdk bench bench-peers bench-gateway soak clean chromium

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

# The e2e installs are attempted here too; each one skips (never fails) when offline.
unit: $(STAMP) e2e-sdk1 e2e-clients chromium
	$(VENV)/bin/pytest -q

test: lint typecheck contracts unit

# Real third-party clients, installed from the npm registry / PyPI into .e2e/.
# Each install is attempted once and never fails the build: offline, its tests skip.
e2e-clients: e2e-agent-sdk
	@mkdir -p $(E2E_DIR)
	@if [ ! -x $(E2E_DIR)/node_modules/.bin/claude ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    timeout 300 npm install --prefix $(E2E_DIR) --silent --no-audit --no-fund \
	      @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) >/dev/null 2>&1 \
	    || echo "e2e: npm registry unreachable; the Claude Code tests will be skipped"; \
	  else echo "e2e: npm not found; the Claude Code tests will be skipped"; fi; fi

# Headless Chromium renders the HTML report in tests/analysis/test_html.py. Installed once
# (apt-get, as root) when missing; without it that test is skipped, never failed.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    ( timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 \
	      apt-get install -y -qq chromium ) >/dev/null 2>&1 \
	    || echo "chromium: install failed (offline?); the HTML report's browser test will be skipped"; \
	  else echo "chromium: not installed and cannot apt-get it here (needs root and apt); the HTML report's browser test will be skipped"; fi; fi

e2e-sdk1:
	@mkdir -p $(E2E_DIR)
	@if ! $(SDK1_VENV)/bin/python -c 'import anthropic' >/dev/null 2>&1; then \
	  ( $(PYTHON) -m venv $(SDK1_VENV) \
	    && timeout 300 $(SDK1_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	      '$(SDK1_SPEC)' ) >/dev/null 2>&1 \
	  || echo "e2e: PyPI unreachable; the anthropic 1.x conformance test will be skipped"; fi

e2e-agent-sdk:
	@mkdir -p $(E2E_DIR)
	@if ! $(AGENT_VENV)/bin/python -c 'import claude_agent_sdk' >/dev/null 2>&1; then \
	  ( $(PYTHON) -m venv $(AGENT_VENV) \
	    && timeout 600 $(AGENT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	      '$(AGENT_SDK_SPEC)' ) >/dev/null 2>&1 \
	  || echo "e2e: PyPI unreachable; the claude-agent-sdk test will be skipped"; fi

e2e: $(STAMP) e2e-clients e2e-sdk1
	$(VENV)/bin/pytest -q -m e2e

bench: $(STAMP)
	$(PY) bench/cost.py
	$(PY) bench/overhead.py

# Peer tools for side-by-side benchmarks, each in its own venv under .bench/.
bench-peers:
	@mkdir -p .bench
	@if [ ! -x $(LITELLM_VENV)/bin/litellm ]; then \
	  ( $(PYTHON) -m venv $(LITELLM_VENV) \
	    && timeout 900 $(LITELLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	      '$(LITELLM_SPEC)' ) >/dev/null 2>&1 \
	  || echo "bench: could not install $(LITELLM_SPEC); the LiteLLM column will be missing"; fi

bench-gateway: $(STAMP) bench-peers
	$(PY) bench/gateway_overhead.py

# 10 minutes at a steady rate with 5% upstream faults (loopback only).
soak: $(STAMP)
	$(PY) bench/soak.py

clean:
	rm -rf $(VENV) $(E2E_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
