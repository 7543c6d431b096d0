# grove-py developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := .cache/bin
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help venv controlplane helm image crds install test test-faults test-unit sandbox sandbox-down lint clean-sandbox

help:
	@echo "make venv          create $(VENV) and pip install -e '.[dev]'"
	@echo "make controlplane  build etcd/kube-apiserver/kube-controller-manager/kube-scheduler/kubectl + kwok into $(BIN)"
	@echo "make helm          build helm (from its Go module, hack/helm) into $(BIN)"
	@echo "make install       all three of the above"
	@echo "make image         build the grove-py container image (needs podman, docker or buildah)"
	@echo "make test          install, then run every test (unit + integration against a local control plane)"
	@echo "make test-faults   only the SIGKILL-during-rollouts fault test (part of make test)"
	@echo "make test-unit     unit tests only (no control plane)"
	@echo "make sandbox       install, then start a detached sandbox cluster (3 CPU + 2 GPU KWOK nodes)"
	@echo "make sandbox-down  stop the sandbox"
	@echo "make lint          ruff + mypy"
	@echo "make crds          regenerate api/crds and the chart's copies (deploy/helm/grove-py/crds)"

# The venv is refreshed whenever pyproject.toml changes (stamp file), so a second `make install` is instant.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

# Go's build cache makes this a few seconds when nothing changed; a cold build takes ~10 min on 2 cores.
controlplane:
	bash hack/controlplane/build.sh

helm:
	bash hack/helm/build.sh

IMAGE ?= grove-py:0.1.0
ENGINE ?= $(shell command -v podman || command -v docker || command -v buildah)
# The development machine has no working container engine: the recipe is built where one exists (issue #10).
image:
	@test -n "$(ENGINE)" || { echo "make image: no container engine (podman, docker or buildah) here; build the Containerfile on a machine with one" >&2; exit 1; }
	@$(ENGINE) info >/dev/null 2>&1 || { echo "make image: $(ENGINE) is installed but cannot build here (no daemon or no permission); build the Containerfile on a machine with a working engine" >&2; exit 1; }
	$(if $(findstring buildah,$(ENGINE)),$(ENGINE) bud,$(ENGINE) build) -f Containerfile -t $(IMAGE) .

# The chart ships copies of the generated CRDs (Helm reads only files inside the chart); tests/deploy checks them.
crds: venv
	$(VENV)/bin/grove crds
	cp api/crds/*.yaml deploy/helm/grove-py/crds/
	cp deploy/admission/podcliqueset-policy.yaml deploy/helm/grove-py/files/

install: venv controlplane helm

test: install
	$(VENV)/bin/pytest -q -m "not gpu" $(PYTEST_ARGS)

test-faults: install
	$(VENV)/bin/pytest -q -s -m faults $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q -m "not integration and not gpu" $(PYTEST_ARGS)

sandbox: install
	$(VENV)/bin/grove sandbox up --nodes 3 --gpu-nodes 2

sandbox-down: venv
	$(VENV)/bin/grove sandbox down

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check grove/devcluster grove/sandbox.py tests/conftest.py tests/controlplane
	$(VENV)/bin/mypy grove controllers
