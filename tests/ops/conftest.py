"""Operations tests reuse the end-to-end world: the local AWS scenario and whole sagemaker_deploy runs."""

from __future__ import annotations

from tests.e2e.conftest import deploy_dag, kubernetes_api, run_deploy, scenario  # noqa: F401
