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
# The voice-activity model's wheel (installed without its torch dependency): its
# one version source is scripts/versions.env, which the worker-ml image reads too.
SILERO_VAD_VERSION := $(shell sed -n 's/^SILERO_VAD_VERSION=//p' scripts/versions.env)

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml scripts/versions.env
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[venv] installing mediaflow[dev] into $(VENV)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@# Only its ONNX model is used; its metadata requires torch (see pyproject.toml).
	@$(PY) -m pip install -q --no-deps 'silero-vad==$(SILERO_VAD_VERSION)'
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with mediaflow and its dev dependencies

.PHONY: tools
tools: ## Build/install the pinned stack binaries (cached in ~/.cache/mediaflow)
	@scripts/tools.sh

# The same ruff and mypy runs as .pre-commit-config.yaml; the tools are pinned in pyproject.toml.
MYPY_PATHS := api operator/mediaflow_operator worker/mediaflow_worker tests

.PHONY: images
images: tools ## Build the operator and worker images from their Dockerfiles (buildah; bases bootstrapped from Debian)
	@scripts/images.sh

.PHONY: lint
lint: venv ## ruff (lint + format check), mypy --strict (packages and tests), import boundaries, hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PATHS)
	$(VENV)/bin/lint-imports
	@for f in $$(git ls-files '*Dockerfile' '*Dockerfile.*' '*Containerfile' | grep -v '\.dockerignore$$'); do echo "hadolint $$f"; $(VENV)/bin/hadolint "$$f" || exit 1; done

.PHONY: fmt
fmt: venv ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test-unit
test-unit: venv ## Pure-logic tests (no external process)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv tools images ## Tests against the real local stack (Kubernetes, MinIO, NATS, ffmpeg)
	$(PY) -m pytest -m "integration and not e2e" $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: venv tools images ## The whole flow: operator + worker + stack
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# The reliability tier restarts the stack's servers: it runs in a pytest session of its own.
.PHONY: test
test: venv tools images lint ## Everything: install, lint, then every test tier (the fault suite last)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)
	$(PY) -m pytest -m "not unit and not reliability" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory reliability-run

# HEAVY=1: the heavy variant (bigger bursts, more faults); a seed repeats a run's choices.
HEAVY ?=
SEED ?=

.PHONY: reliability
reliability: venv tools images ## The fault suite on the real stack; regenerates docs/reliability.md (HEAVY=1: heavier)
	@$(MAKE) --no-print-directory reliability-run

.PHONY: reliability-run
reliability-run:
	MEDIAFLOW_RELIABILITY_HEAVY=$(HEAVY) MEDIAFLOW_RELIABILITY_SEED=$(SEED) \
	  $(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS); \
	  status=$$?; $(PY) -m tests.reliability.results; exit $$status

.PHONY: stack-up
stack-up: venv tools images ## Start the local stack in the background; writes .mediaflow/stack.env
	@$(PY) -m tests.support.stack up --state-dir $(STATE_DIR)

.PHONY: stack-down
stack-down: ## Stop exactly the processes stack-up started
	@if [ -x $(PY) ]; then $(PY) -m tests.support.stack down --state-dir $(STATE_DIR); else echo "no stack running"; fi

SYSTEM_NAMESPACE ?= mediaflow-system
STORAGE_SECRET ?= mediaflow-storage

.PHONY: install
install: venv ## Apply the CRDs (and, on the local stack, the default storage Secret) to the current kubeconfig
	@scripts/with-stack-env.sh bash -c '\
	  kubectl apply --server-side --force-conflicts -f crds/ && \
	  kubectl wait --for condition=Established --timeout=60s -f crds/ && \
	  if [ -n "$${MEDIAFLOW_S3_ENDPOINT:-}" ]; then \
	    kubectl create namespace $(SYSTEM_NAMESPACE) --dry-run=client -o yaml | kubectl apply -f - && \
	    kubectl -n $(SYSTEM_NAMESPACE) create secret generic $(STORAGE_SECRET) \
	      --from-literal=endpoint="$$MEDIAFLOW_S3_ENDPOINT" --from-literal=accessKey="$$MEDIAFLOW_S3_ACCESS_KEY" \
	      --from-literal=secretKey="$$MEDIAFLOW_S3_SECRET_KEY" --from-literal=secure=false \
	      --dry-run=client -o yaml | kubectl apply -f - ; fi'

.PHONY: uninstall
uninstall: ## Delete the CRDs (and with them every Workflow) from the current kubeconfig
	@scripts/with-stack-env.sh kubectl delete --ignore-not-found -f crds/

.PHONY: run
run: venv ## Run the operator from the checkout against the current kubeconfig (or the local stack)
	@scripts/with-stack-env.sh env \
	  MEDIAFLOW_DEFAULT_STORAGE_SECRET=$${MEDIAFLOW_DEFAULT_STORAGE_SECRET:-$(SYSTEM_NAMESPACE)/$(STORAGE_SECRET)} \
	  $(PY) -m mediaflow_operator

.PHONY: crds
crds: venv ## Regenerate crds/ from the spec models (a test checks they agree)
	$(PY) -m mediaflow_api.crd

.PHONY: schemas
schemas: venv ## Regenerate schemas/ (notification JSON Schemas) and examples/notifications/ from the payload models (tests check they agree)
	$(PY) -m mediaflow_api.notification_schema
	$(PY) -m tests.support.notification_samples

# The pipeline benchmark starts a local stack of its own (like the test fixtures) and the
# operator with the fake worker image: docs/performance.md. BENCH_ARGS=--quick: a few minutes.
BENCH_ARGS ?=

.PHONY: bench
bench: venv tools images ## Benchmarks against a same-run baseline: worker vs plain ffmpeg, then upload -> Job on a local stack (docs/performance.md), then the understanding tasks
	$(PY) bench/worker_bench.py --runs 5
	$(PY) -m bench.pipeline_bench $(BENCH_ARGS)
	$(PY) bench/understanding_bench.py $(UNDERSTANDING_ARGS)

# UNDERSTANDING_ARGS: e.g. --only ocr,speech; MEDIAFLOW_ML_PROVIDERS asks for a GPU provider.
.PHONY: bench-understanding
bench-understanding: venv ## Accuracy and speed of the understanding tasks on media with known content (docs/understanding.md)
	$(PY) bench/understanding_bench.py $(UNDERSTANDING_ARGS)

.PHONY: up
up: venv tools images ## A running mediaflow: local stack (or kind where Docker runs), helm install, example Workflow, a sample upload processed
	@if docker info >/dev/null 2>&1 && command -v kind >/dev/null; then \
	  MEDIAFLOW_STATE_DIR=$(abspath $(STATE_DIR)) scripts/up.sh --kind; \
	else \
	  $(PY) -m tests.support.stack up --state-dir $(STATE_DIR) && \
	  MEDIAFLOW_STATE_DIR=$(abspath $(STATE_DIR)) scripts/up.sh; \
	fi

.PHONY: down
down: ## Remove what `make up` started (the local stack, or the kind cluster); nothing is left running
	@if [ -f $(STATE_DIR)/kind.kubeconfig ]; then \
	  kind delete cluster --name mediaflow && rm -f $(STATE_DIR)/kind.kubeconfig $(STATE_DIR)/stack.env; \
	else \
	  $(MAKE) --no-print-directory stack-down STATE_DIR=$(STATE_DIR); \
	fi
