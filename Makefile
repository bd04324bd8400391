# The two commands of the quick start: `make run` and `make test`.
# Both create .venv from requirements.lock when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# Server binaries for `make services` and the tests (requirements-services.lock).
SERVICES_STAMP := $(VENV)/.services-installed
SPARK_STAMP := $(VENV)/.installed-spark
# Stage commands (`churn ...`) and dvc resolve from the project's environment.
export PATH := $(BIN):$(PATH)

.PHONY: run test test-fast lint install lock help mutation services services-down services-status bench

run: $(STAMP) ## pull or recreate the raw data, reproduce the pipeline, print a summary
	churn ensure-data
	dvc repro
	churn drift-report --if-stale
	churn summary

# One worker per core; a test file stays on one worker (--dist loadfile), so the module-scoped
# projects the end-to-end tests reproduce are built once, as in a serial run.
test: $(STAMP) $(SERVICES_STAMP) $(SPARK_STAMP) ## the whole test suite, end-to-end and Spark tests included, on every core
	pytest -n auto --dist loadfile

test-fast: $(STAMP) $(SERVICES_STAMP) ## unit tests only (no end-to-end, no Spark), on every core (pytest-xdist)
	pytest -m "not e2e and not spark" -n auto

lint: $(STAMP) ## ruff on src/ and tests/, mypy --strict on src/
	ruff check src tests
	mypy

# Mutation testing of the code that decides what ships (gates, verdict, champion comparison,
# promotion, data contract, model-file allow-list). Slow, so not part of `make test`; the
# weekly Mutation workflow runs it. The registry tests reuse one trained project throughout.
# CHURN_PRELOAD=0: mutmut runs the tests inside its own process, whose main module is the
# mutmut script; a stage's side process (multiprocessing's fork server) would import that
# script again and fail, so the side jobs run in line. Mutation is about the logic, not them.
mutation: $(STAMP) ## mutation testing of the safety-critical modules (slow; fails on a surviving mutant)
	rm -rf mutants
	CHURN_PRELOAD=0 CHURN_TEST_REGISTRY_CACHE=$(CURDIR)/.mutation-cache $(BIN)/python -m tests.mutation.run

.PHONY: lifecycle
lifecycle: $(STAMP) ## the whole lifecycle on simulated data, in a throw-away project: deploy, monitor, drift, refresh, retrain, recover
	$(BIN)/python scripts/lifecycle.py

bench: $(STAMP) ## benchmarks at 100k, 1M and 5M rows (long); python -m benchmarks --quick for a smoke run
	python -m benchmarks

install: $(STAMP) ## only create/refresh .venv

# The environment build says what it installs, one line per step (the tools stay --quiet),
# and how long it took: the first build takes about a minute.
$(STAMP): STARTED := $(shell date +%s)
$(STAMP): requirements.lock pyproject.toml
	@echo "make: building $(VENV) from requirements.lock ($$(grep -c '^[A-Za-z0-9].*==' requirements.lock) pinned packages)"
	@test -x $(BIN)/python || { echo "make:   creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "make:   installing uv (its hashed pin in requirements.lock)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r <(sed -n '/^uv==/,/^    #/p' requirements.lock)
	@echo "make:   syncing $(VENV) with requirements.lock (uv pip sync; about a minute the first time)"
	@$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	@echo "make:   installing churn itself (editable)"
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	@touch $@
	@echo "make: $(VENV) ready in $$(( $$(date +%s) - $(STARTED) )) s"

lock: ## re-resolve requirements.lock after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark -c requirements.lock --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements-spark.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra services --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -c requirements.lock \
		-o requirements-services.lock

# Team mode on this machine (README "Team mode"): PostgreSQL, an S3 server and an MLflow
# server on 127.0.0.1, data under .services/. Ports: CHURN_PG_PORT, CHURN_S3_PORT,
# CHURN_MLFLOW_PORT (e.g. `make services CHURN_MLFLOW_PORT=5500`).
$(SERVICES_STAMP): requirements-services.lock $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements-services.lock
	touch $@

services: $(STAMP) $(SERVICES_STAMP) ## start PostgreSQL, S3 and MLflow locally; writes .services/env
	@test -x /usr/lib/postgresql/15/bin/initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| test -n "$$PG_BIN" || command -v pg_config >/dev/null \
		|| { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
			&& { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; } \
		|| { echo "error: PostgreSQL server binaries missing: install the postgresql package (as root: apt-get install -y postgresql)" >&2; exit 2; }
	$(BIN)/python scripts/services.py up

services-down: ## stop what `make services` started
	$(BIN)/python scripts/services.py down

services-status: ## what `make services` runs, and where
	$(BIN)/python scripts/services.py status

# The Spark extra (pyspark, Java 17+ needed at run time): for `make test`, never for `make run`.
$(SPARK_STAMP): $(STAMP) requirements-spark.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements-spark.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
