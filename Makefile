# azs3copy: `make help` lists the targets. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# The machine's CA bundle variable makes botocore verify even plain-HTTP emulator calls against it; harmless,
# but some tools (rclone) break on it, so each target that needs it unset says so itself.

.PHONY: help venv node deps lint test test-unit test-integration clean

# Topic targets (terraform, local runtime and demo, faults, bench) live in mk/*.mk.
-include mk/*.mk

# Topic targets (terraform, local runtime and demo, faults, bench) live in mk/*.mk.

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt layers/azs3copy/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/dev.txt
	$(PIP) install -q --no-deps -e layers/azs3copy
	touch $@

venv: $(STAMP) ## Create .venv with the pinned dependencies and the package (editable)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.package-lock.json ## Install Azurite into ./node_modules

deps: venv node ## Everything the tests and the demo need

lint: venv ## ruff (lint and format check) and mypy on the package
	$(VENV)/bin/ruff check layers lambdas scripts tests bench devenv
	$(VENV)/bin/ruff format --check layers lambdas scripts tests bench devenv
	$(VENV)/bin/mypy layers/azs3copy/src/azs3copy

test-unit: venv ## Unit tests (fakes and moto in-process)
	$(PY) -m pytest tests/unit -q

test-integration: deps ## Integration tests against Azurite and moto server
	$(PY) -m pytest tests/integration -q

test: deps lint tf-config layers function-zips $(CHECKOV) ## Everything: lint, unit, integration, Terraform, end to end, faults
	$(PY) -m pytest tests -q -p no:cacheprovider -n 2

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
