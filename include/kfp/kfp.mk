# The Kubeflow Pipelines side of sagelift (include/kfp/README.md). Included by the project Makefile.
# The kfp SDK pins kubernetes<31 and the Airflow cncf.kubernetes provider needs a newer one, so the
# SDK lives in its own environment, include/kfp/.venv, built by uv from include/kfp/uv.lock with the
# machine's python3 (UV_PYTHON / UV_PYTHON_DOWNLOADS come from the project Makefile).
KFP_DIR := include/kfp
KFP_VENV := $(KFP_DIR)/.venv
# The compiled package is package data of sagelift (the operator and the wheel read it from there).
KFP_PACKAGE := plugins/sagelift/assets/kfp/sagemaker_deploy.yaml
# sagelift.domain (pure) and sagelift_kfp are imported from the work tree, as the component image has them.
KFP_PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/$(KFP_DIR):$(CURDIR)
KFP_RUN := env -u UV_PROJECT_ENVIRONMENT PYTHONPATH=$(KFP_PYTHONPATH) $(KFP_VENV)/bin/python

.PHONY: kfp-env kfp-compile kfp-check kfp-test

$(KFP_VENV)/.synced: $(UV) $(KFP_DIR)/pyproject.toml $(KFP_DIR)/uv.lock
	cd $(KFP_DIR) && env -u UV_PROJECT_ENVIRONMENT $(abspath $(UV)) sync --frozen --compile-bytecode
	touch $@

kfp-env: $(KFP_VENV)/.synced

# Regenerate the committed package after changing include/kfp/pipeline.py (then commit the YAML).
kfp-compile: kfp-env
	$(KFP_RUN) $(KFP_DIR)/pipeline.py --output $(KFP_PACKAGE)

# Fails when the committed package is not what the source compiles to with the default settings.
kfp-check: kfp-env
	@tmp=$$(mktemp --suffix=.yaml); trap 'rm -f $$tmp' EXIT; \
	env -u SAGELIFT_KFP_BASE_IMAGE -u SAGELIFT_KFP_PACKAGES -u SAGELIFT_KFP_PLATFORM_CONFIGMAP \
	  $(KFP_RUN) $(KFP_DIR)/pipeline.py --output $$tmp && \
	if ! diff -u $(KFP_PACKAGE) $$tmp; then \
	  echo "$(KFP_PACKAGE) is out of date with $(KFP_DIR)/pipeline.py: run 'make kfp-compile' and commit the result." >&2; \
	  exit 1; \
	fi; echo "$(KFP_PACKAGE) matches $(KFP_DIR)/pipeline.py"

kfp-test: kfp-env
	cd $(KFP_DIR) && env -u UV_PROJECT_ENVIRONMENT PYTHONPATH=$(KFP_PYTHONPATH) .venv/bin/python -m pytest tests
