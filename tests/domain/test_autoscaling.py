"""Golden Application Auto Scaling and InvokeEndpoint bodies (issue 16 items 1 and 8), each checked
against botocore's service model; when an update must deregister first; how an answer is reported."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from sagelift.domain.autoscaling import (
    build_delete_scaling_policy_request,
    build_deregister_scalable_target_request,
    build_put_scaling_policy_request,
    build_register_scalable_target_request,
    policy_is_current,
    target_is_current,
    variant_changes,
)
from sagelift.domain.endpoint_settings import Autoscaling, SmokeTest
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.smoke import body_excerpt, build_invoke_endpoint_request, describe_answer
from tests.support.botocore_validation import validate_request

GOLDEN = Path(__file__).parent / "golden" / "autoscaling.json"
SCALING = Autoscaling(
    min_capacity=1,
    max_capacity=4,
    target_invocations_per_instance=70,
    scale_in_cooldown_seconds=300,
    scale_out_cooldown_seconds=60,
)


def _bodies() -> dict[str, dict]:
    return {
        "RegisterScalableTarget": build_register_scalable_target_request(
            "churn-predictor", "AllTraffic", SCALING
        ),
        "PutScalingPolicy": build_put_scaling_policy_request("churn-predictor", "AllTraffic", SCALING),
        "DeleteScalingPolicy": build_delete_scaling_policy_request("churn-predictor", "AllTraffic"),
        "DeregisterScalableTarget": build_deregister_scalable_target_request("churn-predictor", "AllTraffic"),
    }


def test_autoscaling_requests_match_golden_and_botocore() -> None:
    bodies = _bodies()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(bodies, indent=2, sort_keys=True) + "\n")
    assert bodies == json.loads(GOLDEN.read_text())
    for operation, body in bodies.items():
        assert validate_request("application-autoscaling", operation, body) == [], operation


def test_invoke_request_sends_text_or_decoded_base64_and_passes_botocore() -> None:
    text = build_invoke_endpoint_request("churn-predictor", SmokeTest(body='{"x": [1, 2]}'))
    assert text == {
        "EndpointName": "churn-predictor",
        "Body": b'{"x": [1, 2]}',
        "ContentType": "application/json",
    }
    image = b"\x89PNG\r\n\x1a\n\x00\x01"
    binary = build_invoke_endpoint_request(
        "churn-predictor",
        SmokeTest(body=base64.b64encode(image).decode(), content_type="image/png", body_base64=True),
    )
    assert binary["Body"] == image and binary["ContentType"] == "image/png"
    for body in (text, binary):
        assert validate_request("sagemaker-runtime", "InvokeEndpoint", body) == []
    with pytest.raises(SageliftValidationError, match=r"endpoint\.smoke_test\.body"):
        build_invoke_endpoint_request("m", SmokeTest(body="not base64!", body_base64=True))


def test_current_target_and_policy_need_no_write_and_any_change_does() -> None:
    register = build_register_scalable_target_request("m", "AllTraffic", SCALING)
    policy = build_put_scaling_policy_request("m", "AllTraffic", SCALING)
    assert target_is_current({**register, "RoleARN": "arn:aws:iam::1:role/x"}, register)
    assert not target_is_current({**register, "MaxCapacity": 3}, register)
    assert not target_is_current(None, register)
    described = {**policy, "PolicyARN": "arn", "Alarms": []}
    assert policy_is_current(described, policy)
    changed = build_put_scaling_policy_request(
        "m", "AllTraffic", Autoscaling(1, 4, 70, scale_in_cooldown_seconds=600)
    )
    assert not policy_is_current(described, changed)
    assert not policy_is_current(None, policy)


@pytest.mark.parametrize(
    ("current", "new", "changes"),
    [
        (
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}],
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "ModelName": "new"}],
            False,
        ),
        (
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}],
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge"}],
            True,
        ),
        (
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}],
            [{"VariantName": "Blue", "InstanceType": "ml.m5.large"}],
            True,
        ),
        (
            [{"VariantName": "Other", "InstanceType": "ml.m5.large"}],
            [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge"}],
            False,
        ),
    ],
)
def test_an_update_changes_the_scaled_variant_only_when_its_instance_type_changes_or_it_goes(
    current: list, new: list, changes: bool
) -> None:
    assert variant_changes(current, new, "AllTraffic") is changes


def test_an_answer_is_reported_bounded_and_escaped() -> None:
    hostile = b"<script>\x1b[31m\n\xff" + "é".encode() + b"x" * 500
    excerpt = body_excerpt(hostile)
    assert excerpt.isascii() and excerpt.isprintable()
    assert "\\x1b" in excerpt and "\\n" in excerpt and excerpt.endswith("...'")
    assert len(excerpt) < 200
    assert describe_answer(500, b'{"error": "boom"}') == 'status 500, body \'{"error": "boom"}\''
    assert (
        describe_answer(None, None, "ValidationError: not found") == "no answer (ValidationError: not found)"
    )
