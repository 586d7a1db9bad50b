"""register_model on Airflow: the provider's SageMakerRegisterModelVersionOperator over the core's registry.

The stock operator's identity (its hook, its template fields showing the image, the artifact and the
group once the task ran) with sagelift's workflow: ``steps.model_registry.register_run`` registers the
run's version or adopts it on a retry, with the quality gate's verdict as its status. A Rejected version
fails the task for good (the run stops before approve_deploy and create_model, naming the metric and both
values); a train-only run skips. The XCom is the registry contract documented in
sagelift.steps.model_registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerRegisterModelVersionOperator

from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.operators.base import INPUT_FIELDS, StepInputs, aws_session_fields, skip_step, step_errors
from sagelift.steps import model_registry


class SageMakerRegisterModelOperator(StepInputs, SageMakerRegisterModelVersionOperator):
    """Register the run's model package version (quality gate, approval status); see the module doc."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*SageMakerRegisterModelVersionOperator.template_fields, *INPUT_FIELDS)

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        images: Any = None,
        training: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_uri="", model_url="", package_group_name="", **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags, images=images)
        self.training = training  # only orders this step after train_model (the job is read from SageMaker)

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.read_plan()
        if reason := model_registry.skip_reason(plan):
            skip_step(reason)
        aws_session_fields(self, self.read_session())
        client = cast(SageMakerHook, self.hook).client
        with step_errors():
            registered = model_registry.register_run(client, plan, self.read_tags(), self.read_images())
        self.package_group_name = str(registered.get("model_package_group", ""))
        self.image_uri = str(registered.get("image", ""))
        self.model_url = str(registered.get("model_data_url", ""))
        return registered
