"""Guarded deploys: the UpdateEndpoint DeploymentConfig of a run's strategy, and sagelift's default alarms.

An update of an endpoint is a SageMaker blue/green deployment. With ``endpoint.deployment`` a run chooses
how traffic moves to the new fleet (all at once, a canary share first, or linear steps, each followed by
a baking period) and which CloudWatch alarms roll the update back when they trip while it bakes. When
the conf names no alarm, a canary or linear deploy is guarded by two alarms sagelift keeps per model
(errors and latency of the model's variant, ``DEFAULT_ALARMS``), named deterministically from the model
so a re-run updates them in place and teardown finds them.

A run that asks for nothing (all at once, no alarms) sends UpdateEndpoint exactly as before: no
DeploymentConfig, no alarm. Plain builders, golden-tested and checked against botocore's model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelift.domain.endpoint_settings import (
    DEFAULT_CANARY_PERCENT,
    DEFAULT_LINEAR_STEP_PERCENT,
    DeploymentStrategy,
)
from sagelift.domain.plan import RunNames

ROUTING_TYPES = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
ALARM_NAME_PREFIX = "sagelift-"
ALARM_NAMESPACE = "AWS/SageMaker"
# AutoRollbackConfiguration.Alarms holds 1 to 10 alarms.
MAX_ROLLBACK_ALARMS = 10


@dataclass(frozen=True)
class DefaultAlarm:
    """One alarm sagelift keeps per model on a SageMaker endpoint metric of the model's variant."""

    suffix: str
    metric_name: str
    statistic: str
    threshold: float
    description: str
    comparison: str = "GreaterThanThreshold"
    period_seconds: int = 60
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 2


# Invocation5XXErrors is 1 for each invocation the model answered with a 5xx and 0 otherwise, so its
# average is the error rate. ModelLatency is in microseconds. Two bad minutes out of three trip an alarm;
# minutes without traffic (a canary share that gets none) count as good, so an idle bake never rolls back.
DEFAULT_ALARMS: tuple[DefaultAlarm, ...] = (
    DefaultAlarm(
        suffix="invocation-5xx-errors",
        metric_name="Invocation5XXErrors",
        statistic="Average",
        threshold=0.05,
        description="more than 5% of invocations answered with a 5xx error",
    ),
    DefaultAlarm(
        suffix="model-latency",
        metric_name="ModelLatency",
        statistic="Average",
        threshold=2_000_000.0,
        description="model latency above 2 seconds on average",
    ),
)


def derive_alarm_name(model_name: str, alarm: DefaultAlarm) -> str:
    return f"{ALARM_NAME_PREFIX}{model_name}-{alarm.suffix}"


def derive_default_alarm_names(model_name: str) -> tuple[str, ...]:
    """The names of the alarms sagelift keeps for ``model_name`` (the only alarms teardown deletes)."""
    return tuple(derive_alarm_name(model_name, alarm) for alarm in DEFAULT_ALARMS)


def is_guarded(strategy: DeploymentStrategy) -> bool:
    """Whether an update sends a DeploymentConfig: any strategy but the default all-at-once without alarms."""
    return strategy.type != "all_at_once" or bool(strategy.alarms)


def uses_default_alarms(strategy: DeploymentStrategy) -> bool:
    """A guarded strategy whose conf names no alarm: sagelift's per-model alarms guard it."""
    return is_guarded(strategy) and not strategy.alarms


def deployment_alarm_names(model_name: str, strategy: DeploymentStrategy) -> tuple[str, ...]:
    """The alarms that roll an update back: the conf's, else sagelift's defaults; none when unguarded."""
    if not is_guarded(strategy):
        return ()
    return tuple(strategy.alarms) or derive_default_alarm_names(model_name)


def build_put_metric_alarm_requests(
    model_name: str, endpoint_name: str, variant_name: str, tags: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    """PutMetricAlarm bodies of the model's default alarms, on the endpoint's variant."""
    return [
        {
            "AlarmName": derive_alarm_name(model_name, alarm),
            "AlarmDescription": (
                f"sagelift: rolls back a guarded update of endpoint {endpoint_name} when {alarm.description}."
            ),
            "ActionsEnabled": False,  # SageMaker watches the state; nothing else acts on it
            "Namespace": ALARM_NAMESPACE,
            "MetricName": alarm.metric_name,
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant_name},
            ],
            "Statistic": alarm.statistic,
            "Period": alarm.period_seconds,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "Threshold": alarm.threshold,
            "ComparisonOperator": alarm.comparison,
            "TreatMissingData": "notBreaching",
            "Tags": [dict(tag) for tag in tags],
        }
        for alarm in DEFAULT_ALARMS
    ]


def linear_steps(strategy: DeploymentStrategy) -> int:
    """How many shifts a linear deploy makes (the last one may be smaller than the step)."""
    step = strategy.linear_step_percent or DEFAULT_LINEAR_STEP_PERCENT
    return -(-100 // step)


def build_deployment_config(
    strategy: DeploymentStrategy, alarm_names: Sequence[str]
) -> dict[str, Any] | None:
    """UpdateEndpoint's DeploymentConfig for ``strategy``; None for the unguarded default."""
    if not is_guarded(strategy):
        return None
    routing: dict[str, Any] = {
        "Type": ROUTING_TYPES[strategy.type],
        "WaitIntervalInSeconds": strategy.bake_seconds,
    }
    if strategy.type == "canary":
        routing["CanarySize"] = {
            "Type": "CAPACITY_PERCENT",
            "Value": strategy.canary_percent or DEFAULT_CANARY_PERCENT,
        }
    elif strategy.type == "linear":
        routing["LinearStepSize"] = {
            "Type": "CAPACITY_PERCENT",
            "Value": strategy.linear_step_percent or DEFAULT_LINEAR_STEP_PERCENT,
        }
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": strategy.termination_wait_seconds,
    }
    if strategy.max_execution_timeout_seconds is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = strategy.max_execution_timeout_seconds
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


def build_guarded_update_endpoint_request(
    names: RunNames, strategy: DeploymentStrategy, alarm_names: Sequence[str]
) -> dict[str, Any]:
    """UpdateEndpoint's body: the run's config, with the strategy's DeploymentConfig when guarded."""
    request: dict[str, Any] = {"EndpointName": names.endpoint, "EndpointConfigName": names.endpoint_config}
    config = build_deployment_config(strategy, alarm_names)
    if config is not None:
        request["DeploymentConfig"] = config
    return request


def deployment_seconds(strategy: DeploymentStrategy) -> int:
    """How long the strategy's shifting and baking keep an update going beyond provisioning: what the
    wait for the endpoint adds to the platform's budget (a timeout, when given, bounds it)."""
    if not is_guarded(strategy):
        return 0
    bakes = linear_steps(strategy) if strategy.type == "linear" else 1
    total = bakes * strategy.bake_seconds + strategy.termination_wait_seconds
    if strategy.max_execution_timeout_seconds is not None:
        total = max(total, strategy.max_execution_timeout_seconds)
    return total
