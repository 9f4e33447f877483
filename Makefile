# mediaflow — developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE_DIR := .mediaflow
export MEDIAFLOW_CACHE ?= $(HOME)/.cache/mediaflow
# The stack's binaries (kubectl, helm, minio, ...) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(MEDIAFLOW_CACHE)/bin:$(PATH)
# Real-world media for corpus tests (see README); empty = those tests skip.
export MEDIAFLOW_MEDIA_CORPUS ?=
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[venv] installing mediaflow[dev] into $(VENV)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with mediaflow and its dev dependencies

.PHONY: tools
tools: ## Build/install the pinned stack binaries (cached in ~/.cache/mediaflow)
	@scripts/tools.sh

.PHONY: lint
lint: venv ## ruff (lint + format check) and hadolint on the Dockerfiles
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@for f in $$(git ls-files '*Dockerfile'); do echo "hadolint $$f"; $(VENV)/bin/hadolint "$$f" || exit 1; done

.PHONY: fmt
fmt: venv ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test-unit
test-unit: venv ## Pure-logic tests (no external process)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv tools ## Tests against the real local stack (Kubernetes, MinIO, NATS, ffmpeg)
	$(PY) -m pytest -m "integration and not e2e" $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: venv tools ## The whole flow: operator + worker + stack
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: test
test: venv tools lint ## Everything: install, lint, then every test tier
	$(PY) -m pytest -m unit $(PYTEST_ARGS)
	$(PY) -m pytest -m "not unit" $(PYTEST_ARGS)

.PHONY: stack-up
stack-up: venv tools ## Start the local stack in the background; writes .mediaflow/stack.env
	@$(PY) -m tests.support.stack up --state-dir $(STATE_DIR)

.PHONY: stack-down
stack-down: ## Stop exactly the processes stack-up started
	@if [ -x $(PY) ]; then $(PY) -m tests.support.stack down --state-dir $(STATE_DIR); else echo "no stack running"; fi

.PHONY: up
up: ## (coming with the Helm chart issue) a running mediaflow with an example Workflow
	@echo "make up arrives with the Helm chart issue; for now: make stack-up, make install, make run"; exit 2
