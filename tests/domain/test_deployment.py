"""Guarded deploys' request bodies (issue 16 item 2): golden, and checked against botocore's service model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagelift.domain.deployment import (
    build_deployment_config,
    build_guarded_update_endpoint_request,
    build_put_metric_alarm_requests,
    deployment_alarm_names,
    deployment_seconds,
    derive_default_alarm_names,
    is_guarded,
)
from sagelift.domain.endpoint_settings import DeploymentStrategy
from sagelift.domain.plan import derive_names
from tests.support.botocore_validation import validate_request

GOLDEN = Path(__file__).parent / "golden" / "deployment.json"
MODEL = "churn-predictor"
TAGS = [{"Key": "CostCenter", "Value": "cc-4711"}, {"Key": "sagelift:model-name", "Value": MODEL}]
NAMES = derive_names(MODEL, "sagemaker_deploy", "manual__2026-11-29T10:00:00+00:00")

STRATEGIES = {
    "all_at_once": DeploymentStrategy(),
    "all_at_once_with_alarms": DeploymentStrategy(alarms=("team-errors",), bake_seconds=300),
    "canary": DeploymentStrategy(type="canary", canary_percent=10, bake_seconds=600),
    "canary_team_alarms": DeploymentStrategy(
        type="canary",
        canary_percent=25,
        bake_seconds=900,
        termination_wait_seconds=120,
        max_execution_timeout_seconds=3600,
        alarms=("team-errors", "team-latency"),
    ),
    "linear": DeploymentStrategy(type="linear", linear_step_percent=25, bake_seconds=300),
}


def _bodies() -> dict[str, object]:
    bodies: dict[str, object] = {
        f"UpdateEndpoint {case}": build_guarded_update_endpoint_request(
            NAMES, strategy, deployment_alarm_names(MODEL, strategy)
        )
        for case, strategy in STRATEGIES.items()
    }
    bodies["PutMetricAlarm"] = build_put_metric_alarm_requests(MODEL, NAMES.endpoint, "AllTraffic", TAGS)
    return bodies


def test_bodies_match_golden_and_botocore_model():
    bodies = _bodies()
    for case, body in bodies.items():
        if case.startswith("UpdateEndpoint"):
            assert validate_request("sagemaker", "UpdateEndpoint", body) == [], case  # type: ignore[arg-type]
    for alarm in bodies["PutMetricAlarm"]:  # type: ignore[attr-defined]
        assert validate_request("cloudwatch", "PutMetricAlarm", alarm) == [], alarm["AlarmName"]
    if os.environ.get("SAGELIFT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(bodies, indent=2, sort_keys=True) + "\n")
    assert bodies == json.loads(GOLDEN.read_text())


def test_the_default_all_at_once_update_is_sent_as_before():
    strategy = DeploymentStrategy()
    assert not is_guarded(strategy)
    assert deployment_alarm_names(MODEL, strategy) == ()
    assert build_deployment_config(strategy, ()) is None
    assert build_guarded_update_endpoint_request(NAMES, strategy, ()) == {
        "EndpointName": MODEL,
        "EndpointConfigName": NAMES.endpoint_config,
    }
    assert deployment_seconds(strategy) == 0


def test_default_alarms_watch_errors_and_latency_of_the_models_variant_with_stable_names():
    names = derive_default_alarm_names(MODEL)
    assert names == (
        "sagelift-churn-predictor-invocation-5xx-errors",
        "sagelift-churn-predictor-model-latency",
    )
    assert derive_default_alarm_names(MODEL) == names  # a re-run updates the same alarms
    assert deployment_alarm_names(MODEL, STRATEGIES["canary"]) == names
    assert deployment_alarm_names(MODEL, STRATEGIES["canary_team_alarms"]) == ("team-errors", "team-latency")
    requests = build_put_metric_alarm_requests(MODEL, MODEL, "AllTraffic", TAGS)
    assert [(r["MetricName"], r["Namespace"]) for r in requests] == [
        ("Invocation5XXErrors", "AWS/SageMaker"),
        ("ModelLatency", "AWS/SageMaker"),
    ]
    for request in requests:
        assert request["Dimensions"] == [
            {"Name": "EndpointName", "Value": MODEL},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        assert {"Key": "sagelift:model-name", "Value": MODEL} in request["Tags"]


@pytest.mark.parametrize(
    ("case", "seconds"),
    [("canary", 600), ("canary_team_alarms", 3600), ("linear", 4 * 300), ("all_at_once_with_alarms", 300)],
)
def test_the_wait_grows_by_the_strategys_baking(case, seconds):
    assert deployment_seconds(STRATEGIES[case]) == seconds


def test_strict_validation_catches_a_timeout_sagemaker_refuses():
    body = build_guarded_update_endpoint_request(
        NAMES,
        DeploymentStrategy(type="canary", canary_percent=10, max_execution_timeout_seconds=60),
        ("a",),
    )
    errors = validate_request("sagemaker", "UpdateEndpoint", body)
    assert any("MaximumExecutionTimeoutInSeconds" in e for e in errors)
