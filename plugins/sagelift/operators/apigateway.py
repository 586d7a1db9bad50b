"""Step 8, expose_api: one stable API Gateway REST API per model in front of its SageMaker endpoint.

The workflow is the core's (sagelift.steps.api): the first run creates the API, its POST method
(/invocations, or /async-invocations for an async endpoint), the SageMaker integration, the response
mapping, a deployment and the stage; every later run finds the same API by name and owner tag, points
the integration at the current endpoint, brings the resource policy (the account's callers) and binary
media types to the platform's settings and deploys again on the same stage, so the invoke URL a
scientist shared keeps working. API Gateway applies these changes synchronously: nothing to wait for.

``ApiGatewayRemoveOperator`` is the teardown path: it deletes the model's API, usage plan and key, and
succeeds with nothing to do when they are already gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from airflow.sdk import BaseOperator

from sagelift.domain.teardown import TeardownPlan
from sagelift.links.apigateway import ApiGatewayInvokeUrlLink, ApiGatewayStageLink
from sagelift.operators.base import StepInputs, connection_clients, skip_if_train_only, step_errors

# The hook and the step (sagelift.steps.api) are imported when a task executes: the DAG file's parse and
# every other task's process load this module (for the operator and the notifier) without needing them.


class ApiGatewayExposeOperator(StepInputs, BaseOperator):
    """Expose the run's endpoint through the model's API Gateway REST API (task ``expose_api``).

    Pushes ``{"api_id", "api_name", "stage", "invoke_url", "deployment_id", ...}``.
    """

    template_fields: Sequence[str] = ("plan", "session", "tags", "endpoint")
    operator_extra_links = (ApiGatewayStageLink(), ApiGatewayInvokeUrlLink())
    ui_color = "#e7d5f5"

    def __init__(
        self, *, plan: Any = None, session: Any = None, tags: Any = None, endpoint: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags)
        self.endpoint = endpoint  # deploy_endpoint's result: on a shared endpoint, the model's key

    def execute(self, context: Any) -> dict[str, Any]:
        plan, session = self.read_plan(), self.read_session()
        skip_if_train_only(plan, "expose_api")
        from sagelift.hooks.apigateway import ApiGatewayHook
        from sagelift.steps.api import api_spec, expose_model_api

        hook = ApiGatewayHook(aws_conn_id=session.aws_conn_id, region_name=session.region)
        with step_errors():
            if plan.params.multi_model.enabled:  # /models/<model>/invocations on the team's shared endpoint
                from sagelift.steps import multi_model

                placement = multi_model.placement_of(self.endpoint)
                spec = api_spec(plan, self.read_tags(), placement)
                exposed = expose_model_api(hook, spec)
                multi_model.prune_versions(connection_clients(session)("s3"), plan, placement)
            else:
                spec = api_spec(plan, self.read_tags())
                exposed = expose_model_api(hook, spec)
        ApiGatewayStageLink.persist(
            context=context,
            operator=self,
            region_name=spec.region,
            aws_partition=spec.partition,
            api_id=exposed.api_id,
            stage=exposed.stage,
            invoke_url=exposed.invoke_url,
        )
        self.log.info(
            "%s API %s (%s) for model %s; deployment %s is live on stage %s. Invoke URL: %s",
            "Created" if exposed.created else "Updated",
            exposed.api_name,
            exposed.api_id,
            spec.model_name,
            exposed.deployment_id,
            exposed.stage,
            exposed.invoke_url,
        )
        if exposed.api_key_id:
            self.log.info(
                "Callers send the value of API key %s in the x-api-key header "
                "(aws apigateway get-api-key --api-key %s --include-value).",
                exposed.api_key_id,
                exposed.api_key_id,
            )
        return exposed.to_xcom()


class ApiGatewayRemoveOperator(StepInputs, BaseOperator):
    """Delete the model's API, usage plan and key (teardown); succeeds with nothing to do when gone."""

    template_fields: Sequence[str] = ("plan", "session")

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def execute(self, context: Any) -> dict[str, Any]:
        with step_errors():
            plan = TeardownPlan.from_xcom(self.plan)
        session = self.read_session()
        api_name = model_name = plan.model_name
        from sagelift.hooks.apigateway import ApiGatewayHook

        hook = ApiGatewayHook(aws_conn_id=session.aws_conn_id, region_name=session.region)
        with step_errors():
            removal = hook.remove_model_api(api_name, model_name)
        if removal.nothing_to_do:
            self.log.info(
                "No API named %s for model %s in account %s: nothing to remove.",
                api_name,
                model_name,
                plan.account_id,
            )
        else:
            self.log.info(
                "Removed API %s for model %s: APIs %s, usage plans %s, API keys %s.",
                api_name,
                model_name,
                removal.api_ids,
                removal.usage_plan_ids,
                removal.api_key_ids,
            )
        return {"api_name": api_name, **asdict(removal)}
