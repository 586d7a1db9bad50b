"""What a pipeline step reads from the steps before it, in one place.

Each step after ``validate`` works from the run's plan (validated parameters, derived names and the
platform configuration snapshot taken by ``validate``) plus the non-secret facts pushed by the steps
it depends on. Pulling them here keeps every operator thin and every step reading the same snapshot,
so a platform change in the middle of a run cannot mix two configurations in one deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.platform import PlatformConfig

VALIDATE = "validate"
ENSURE_PVC = "ensure_pvc"
ASSUME_ROLE_CHAIN = "assume_role_chain"
RESOLVE_TAGS = "resolve_tags"
COPY_IMAGES = "copy_images"
TRAIN_MODEL = "train_model"
CREATE_MODEL = "create_model"
DEPLOY_ENDPOINT = "deploy_endpoint"
EXPOSE_API = "expose_api"

TASK_IDS = (
    VALIDATE,
    ENSURE_PVC,
    ASSUME_ROLE_CHAIN,
    RESOLVE_TAGS,
    COPY_IMAGES,
    TRAIN_MODEL,
    CREATE_MODEL,
    DEPLOY_ENDPOINT,
    EXPOSE_API,
)

# Rendered into the stock AWS operators' templated fields, so the provider's own operators and their
# deferred triggers use the scientist account's connection and region chosen by the run.
AWS_CONN_ID_TEMPLATE = "{{ ti.xcom_pull(task_ids='assume_role_chain')['aws_conn_id'] }}"
REGION_TEMPLATE = "{{ ti.xcom_pull(task_ids='assume_role_chain')['region'] }}"


@dataclass(frozen=True)
class RunInputs:
    plan: dict[str, Any]
    session: dict[str, Any] | None
    tags: list[dict[str, str]] | None
    images: dict[str, Any] | None

    @property
    def params(self) -> dict[str, Any]:
        return self.plan["params"]

    @property
    def names(self) -> dict[str, str]:
        return self.plan["names"]

    @property
    def platform(self) -> PlatformConfig:
        return PlatformConfig.from_dict(self.plan["platform"])

    @property
    def account_id(self) -> str:
        return str(self.params["account_id"])

    @property
    def aws_conn_id(self) -> str:
        return self._session()["aws_conn_id"]

    @property
    def region(self) -> str:
        return self._session()["region"]

    def _session(self) -> dict[str, Any]:
        if not self.session:
            raise SageliftValidationError.single(
                ASSUME_ROLE_CHAIN, "no session facts from assume_role_chain; it must succeed before this step"
            )
        return self.session

    def tag_list(self) -> list[dict[str, str]]:
        return list(self.tags or [])


def pull_run_inputs(context: Any) -> RunInputs:
    """Collect the plan and upstream facts for the running task from XCom."""
    ti = context["ti"]
    plan = ti.xcom_pull(task_ids=VALIDATE)
    if not plan:
        raise SageliftValidationError.single(
            VALIDATE, "no plan in XCom; the validate task must succeed first"
        )
    return RunInputs(
        plan=plan,
        session=ti.xcom_pull(task_ids=ASSUME_ROLE_CHAIN),
        tags=ti.xcom_pull(task_ids=RESOLVE_TAGS),
        images=ti.xcom_pull(task_ids=COPY_IMAGES),
    )
