# The local environment (issue 4): Azurite + moto server + terraform/envs/local + the local runtime,
# the demo, and the end-to-end tests. State, pids and logs live in .local/ (see devenv/environment.py).

LOCAL_ENV := $(PY) -m devenv.environment

.PHONY: up down local-status demo test-e2e

up: deps tf-config layers function-zips ## Start Azurite, moto server, terraform apply envs/local, the local runtime (.local/)
	$(LOCAL_ENV) up

down: ## Stop what `make up` started (by pid) and remove its state
	@if test -x $(PY); then $(LOCAL_ENV) down; else echo "nothing was running (no .venv)"; fi

local-status: venv ## Which parts of the local environment are running
	$(LOCAL_ENV) status

demo: up ## The whole system on this machine: dataset into Azurite, run, progress, report, verify, run again
	$(PY) -m devenv.demo

test-e2e: deps tf-config layers function-zips ## End to end: make up, copy from Azurite, verify bytes, second run copies nothing, make down
	$(PY) -m pytest tests/e2e -q
