"""The smoke test with revert (issue 16 item 8): one request to the endpoint after it is InService.

When the conf gives ``endpoint.smoke_test``, deploy_endpoint (both engines) sends its sample through
sagemaker-runtime InvokeEndpoint with the chain's session once the endpoint serves the run's config.
The answer passes when its status is the expected one: 200 for a normal answer, the model's own status
for SageMaker's ``ModelError`` (the container answered something else; ``OriginalStatusCode``). A wrong
status, or an invocation that ends in an error, reverts the endpoint to the config it served before
this run's update and fails the step (final, never retried: a retry would only deploy the same model
again), naming the status and the first bytes of the body, bounded and escaped (sagelift.domain.smoke).

The config to revert to is read from the endpoint's description before the update
(``remember_previous``, called before reconcile) and kept on the endpoint as the tag
``sagelift:previous-endpoint-config``, so a retried task or a resumed deferral, which find the endpoint
already on the run's config, still know it. An endpoint this run created has no previous config: the
step fails and the endpoint stays on the run's config. A revert that changes the scaled variant
deregisters its scalable target first (sagelift.steps.autoscaling); the previous run's scaling is not
put back (its conf is not known here): the next successful run registers it again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from sagelift.domain.endpoint_settings import SmokeTest
from sagelift.domain.smoke import EXCERPT_BYTES, body_excerpt, build_invoke_endpoint_request, describe_answer
from sagelift.steps import autoscaling as scaling
from sagelift.steps.endpoint import attempts, changing_to, list_tags
from sagelift.steps.errors import StepFailed, describe_or_none, error_code

log = logging.getLogger(__name__)

PREVIOUS_CONFIG_TAG = "sagelift:previous-endpoint-config"


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered: ``status`` None when the call ended in an error (``error``)."""

    status: int | None
    body: bytes = b""
    error: str | None = None


def remember_previous(client: Any, endpoint_name: str, config_name: str) -> str | None:
    """Before reconcile: the config the endpoint serves now, when this run's update will replace it,
    recorded on the endpoint; otherwise (already on or moving to the run's config) the one recorded
    by an earlier try; None when the endpoint is new or Failed (nothing to revert to)."""
    current = describe_or_none(client.describe_endpoint, EndpointName=endpoint_name)
    if current is None or current.get("EndpointStatus") == "Failed":
        return None
    serving = str(current.get("EndpointConfigName") or "")
    if serving != config_name and changing_to(current) != config_name:
        if current.get("EndpointStatus") != "InService":
            return None  # another deploy is changing it: reconcile retries the step later
        client.add_tags(
            ResourceArn=current["EndpointArn"], Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": serving}]
        )
        return serving
    return recorded_previous(client, current["EndpointArn"], config_name)


def recorded_previous(client: Any, endpoint_arn: str, config_name: str) -> str | None:
    value = {t.get("Key"): t.get("Value") for t in list_tags(client, endpoint_arn)}.get(PREVIOUS_CONFIG_TAG)
    return str(value) if value and value != config_name else None


def invoke(runtime: Any, endpoint_name: str, smoke: SmokeTest) -> Answer:
    """Send the sample; the answer's status and first bytes, or the error the call ended in."""
    try:
        response = runtime.invoke_endpoint(**build_invoke_endpoint_request(endpoint_name, smoke))
    except ClientError as err:
        model: dict[str, Any] = dict(err.response)  # ModelError's members sit beside Error
        if error_code(err) == "ModelError" and model.get("OriginalStatusCode") is not None:
            body = str(model.get("OriginalMessage") or "").encode("utf-8", "replace")
            return Answer(int(model["OriginalStatusCode"]), body[: EXCERPT_BYTES + 1])
        return Answer(None, error=f"{error_code(err)}: {err.response.get('Error', {}).get('Message', '')}")
    except BotoCoreError as err:
        return Answer(None, error=type(err).__name__)
    stream = response["Body"]
    try:
        body = stream.read(EXCERPT_BYTES + 1)
    finally:
        stream.close()
    return Answer(int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)), body)


def smoke_test(
    sagemaker: Any,
    runtime: Any,
    autoscaling: Any,
    endpoint_name: str,
    config_name: str,
    smoke: SmokeTest,
    *,
    variant_name: str,
    interval_seconds: int,
    budget_seconds: int,
) -> Answer:
    """Invoke the endpoint; on a wrong status or an error, revert it and raise StepFailed."""
    answer = invoke(runtime, endpoint_name, smoke)
    if answer.status == smoke.expected_status:
        log.info("Smoke test of endpoint %s passed: status %s.", endpoint_name, answer.status)
        return answer
    what = describe_answer(answer.status, answer.body, answer.error and body_excerpt(answer.error, 200))
    expected = f"expected status {smoke.expected_status}"
    described = dict(sagemaker.describe_endpoint(EndpointName=endpoint_name))
    previous = recorded_previous(sagemaker, described["EndpointArn"], config_name)
    if previous is None:
        raise StepFailed(
            f"Smoke test of endpoint {endpoint_name} failed: {what} ({expected}). The endpoint was created "
            f"by this run, so there is no previous config to revert to: it stays on {config_name}."
        )
    state = revert(
        sagemaker,
        autoscaling,
        endpoint_name,
        config_name,
        previous,
        variant_name=variant_name,
        interval_seconds=interval_seconds,
        budget_seconds=budget_seconds,
    )
    raise StepFailed(
        f"Smoke test of endpoint {endpoint_name} failed: {what} ({expected}). "
        f"Reverted the endpoint to its previous config {previous}: {state}."
    )


def revert(
    sagemaker: Any,
    autoscaling: Any,
    endpoint_name: str,
    config_name: str,
    previous: str,
    *,
    variant_name: str,
    interval_seconds: int,
    budget_seconds: int,
) -> str:
    """UpdateEndpoint back to ``previous`` and wait; how the endpoint ended, in words."""
    ours = describe_or_none(sagemaker.describe_endpoint_config, EndpointConfigName=config_name) or {}
    theirs = describe_or_none(sagemaker.describe_endpoint_config, EndpointConfigName=previous)
    if theirs is None:
        return f"not possible, config {previous} no longer exists; the endpoint stays on {config_name}"
    scaling.release_for_update(
        autoscaling,
        endpoint_name,
        variant_name,
        _variants(ours),
        _variants(theirs),
    )
    log.warning("Reverting endpoint %s to config %s.", endpoint_name, previous)
    try:
        sagemaker.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=previous)
    except ClientError as err:
        now = describe_or_none(sagemaker.describe_endpoint, EndpointName=endpoint_name)
        if error_code(err) != "ValidationException" or now is None or changing_to(now) != previous:
            raise
    with contextlib.suppress(WaiterError):  # judged from the description below
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint_name,
            WaiterConfig={
                "Delay": interval_seconds,
                "MaxAttempts": attempts(budget_seconds, interval_seconds),
            },
        )
    now = dict(sagemaker.describe_endpoint(EndpointName=endpoint_name))
    status, serving = now.get("EndpointStatus"), now.get("EndpointConfigName")
    if status == "InService" and serving == previous:
        return f"it is InService on {previous}"
    return f"the endpoint is {status} on {serving} ({body_excerpt(now.get('FailureReason') or '', 200)})"


def _variants(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(config.get("ProductionVariants") or [])
