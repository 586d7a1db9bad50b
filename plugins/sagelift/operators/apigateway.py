"""Step 8, expose_api: one stable API Gateway REST API per model in front of its SageMaker endpoint.

The first run creates the API, its /invocations POST method, the SageMaker integration, the response
mapping, a deployment and the stage. Every later run finds the same API by name and owner tag, points
the integration at the current endpoint and deploys again on the same stage, so the invoke URL a
scientist shared keeps working. API Gateway applies these changes synchronously: nothing to wait for.

``ApiGatewayRemoveOperator`` is the teardown path: it deletes the model's API, usage plan and key, and
succeeds with nothing to do when they are already gone.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow.sdk import BaseOperator

from sagelift.domain.apigateway import (
    ApiSpec,
    derive_api_spec,
)
from sagelift.hooks.apigateway import ApiGatewayHook
from sagelift.hooks.apigateway_client import expose_model_api
from sagelift.links.apigateway import ApiGatewayInvokeUrlLink, ApiGatewayStageLink
from sagelift.operators.run_inputs import RunInputs, pull_run_inputs


def spec_from_run_inputs(inputs: RunInputs) -> ApiSpec:
    platform = inputs.platform
    return derive_api_spec(
        api_name=inputs.names["api"],
        model_name=str(inputs.params["model_name"]),
        account_id=inputs.account_id,
        region=inputs.region,
        endpoint_name=inputs.names["endpoint"],
        invoke_role_arn=platform.api_invoke_role_arn(inputs.account_id),
        settings=platform.api,
        tags=inputs.tag_list(),
        dag_id=str(inputs.plan.get("dag_id", "")),
        run_id=str(inputs.plan.get("run_id", "")),
    )


class ApiGatewayExposeOperator(BaseOperator):
    """Expose the run's endpoint through the model's API Gateway REST API (task ``expose_api``).

    Reads the plan, the scientist account's connection and the run's tags from upstream XCom; pushes
    ``{"api_id", "api_name", "stage", "invoke_url", "deployment_id", ...}``.
    """

    operator_extra_links = (ApiGatewayStageLink(), ApiGatewayInvokeUrlLink())
    ui_color = "#e7d5f5"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        spec = spec_from_run_inputs(inputs)
        hook = ApiGatewayHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
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


class ApiGatewayRemoveOperator(BaseOperator):
    """Delete the model's API, usage plan and key (teardown); succeeds with nothing to do when gone."""

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        api_name, model_name = inputs.names["api"], str(inputs.params["model_name"])
        hook = ApiGatewayHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
        removal = hook.remove_model_api(api_name, model_name)
        if removal.nothing_to_do:
            self.log.info(
                "No API named %s for model %s in account %s: nothing to remove.",
                api_name,
                model_name,
                inputs.account_id,
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
