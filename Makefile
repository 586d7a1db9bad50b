# sagelift: two commands, `make demo` and `make test`, on a machine with only python3 and the
# package registries. uv is bootstrapped from the package index (scripts/bootstrap_uv.py) and builds
# .venv from uv.lock with the machine's python3; it never downloads an interpreter.

PYTHON ?= python3
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
export UV_PROJECT_ENVIRONMENT := $(VENV)

include include/kfp/kfp.mk

.PHONY: help env system-deps demo test lint typecheck pytest onboard submit plan wheel compose-env clean

help:
	@echo "make demo   run sagemaker_deploy against a local AWS and print what it created"
	@echo "make test   lint, type-check and run every test tier"

$(UV):
	$(PYTHON) scripts/bootstrap_uv.py $(UV)

# Bytecode is compiled once here (~30 s): the environment sets PYTHONDONTWRITEBYTECODE=1 and uv does not
# compile by default, and without .pyc every Airflow task process re-compiles what it imports (~3x slower).
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	touch $@

env: $(VENV)/.synced

system-deps:
	@$(PYTHON) scripts/system_deps.py

# The stand-ins the e2e tests use (registries, skopeo, the Kubernetes double) need system-deps too.
demo: env system-deps
	$(VENV)/bin/python -m tests.support.demo include/examples/demo.json

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy plugins dags

# Three workers, whole modules each (module-scoped Airflow and registries stay in one process): the e2e
# tiers wait on subprocesses (Airflow, moto, registries, kfp.local) as much as they compute, so a third
# worker fills the waits on 2 cores. tests/live/ is two units, each with its own Airflow; they and the
# other long modules are handed out first (tests/conftest.py). The 30 slowest tests are listed at the end:
# what to look at when the suite nears its 12 minutes.
pytest: env system-deps kfp-env
	$(VENV)/bin/python -m pytest -n 3 --dist loadfile --durations=30

test: lint typecheck kfp-check pytest kfp-test

# Render IAM policies and the account connection for onboarding a scientist account, e.g.
# make onboard PLATFORM=platform.json ACCOUNT=333333333333 RUNNER=arn:aws:iam::111111111111:role/workers \
#      DATA=s3://bucket/data/ OUTPUT=s3://bucket/output/
onboard: env
	$(VENV)/bin/python scripts/onboard.py --platform $(PLATFORM) --account $(ACCOUNT) --runner $(RUNNER) \
	  $(foreach d,$(DATA),--data $(d)) $(foreach o,$(OUTPUT),--output $(o))

# Print what a run of a conf would create, update or leave unchanged, and change nothing (no Airflow needed):
# validate, the role chain from this shell's AWS identity, read-only calls. The platform configuration is
# PLATFORM (a JSON file) or $$SAGELIFT_PLATFORM: make plan CONF=include/examples/demo.json PLATFORM=platform.json
plan: env
	$(VENV)/bin/python scripts/plan.py $(CONF) $(if $(PLATFORM),--platform $(PLATFORM))

# Submit a conf file to a running Airflow and wait for the outcome (AIRFLOW_URL, AIRFLOW_USERNAME,
# AIRFLOW_PASSWORD or AIRFLOW_TOKEN in the environment): make submit CONF=include/examples/demo.json
submit:
	$(PYTHON) scripts/submit_run.py $(CONF)

# The installable package and its locked dependencies as pip constraints, in dist/: what the recipes in
# deploy/ install (README: Official Helm chart, Astronomer, Amazon MWAA).
wheel: $(UV)
	rm -rf dist
	$(UV) build --wheel --out-dir dist
	$(UV) export --frozen --no-dev --all-extras --no-hashes --no-emit-project --no-header \
	  --output-file dist/constraints.txt

# docker compose's .env for the full local stack: a new Fernet key and API secrets, kept once written.
compose-env:
	$(PYTHON) scripts/compose_env.py

clean:
	rm -rf $(VENV) .tools .airflow include/kfp/.venv dist
