"""The change set's diffs and rendering (sagelift.domain.changes): request bodies against descriptions."""

from __future__ import annotations

import json

from sagelift.domain.changes import (
    Change,
    ChangeSet,
    FieldChange,
    diff_patch,
    diff_request,
    diff_tags,
    update_or_unchanged,
)


def test_only_the_request_s_own_fields_are_compared_and_numbers_as_aws_compares_them() -> None:
    wanted = {
        "EndpointConfigName": "m-2",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "InitialVariantWeight": 1.0, "InstanceType": "b"}
        ],
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    described = {
        "EndpointConfigName": "m-1",
        "EndpointConfigArn": "arn:...",
        "ProductionVariants": [{"VariantName": "AllTraffic", "InitialVariantWeight": 1, "InstanceType": "a"}],
    }
    assert diff_request(wanted, described) == [
        FieldChange("EndpointConfigName", "m-1", "m-2"),
        FieldChange("ProductionVariants[0].InstanceType", "a", "b"),
    ]
    assert diff_request({"Enabled": True}, {"Enabled": 1}) == [FieldChange("Enabled", 1, True)]
    assert diff_request({"List": [1, 2]}, {"List": [1]}) == [FieldChange("List", [1], [1, 2])]
    assert diff_request({"New": {"a": 1}}, None) == [FieldChange("New", None, {"a": 1})]


def test_tags_are_added_never_removed() -> None:
    have = [{"Key": "keep", "Value": "1"}, {"Key": "sagelift:run-id", "Value": "r1"}]
    want = {"sagelift:run-id": "r2", "team": "t"}
    assert diff_tags(want, have) == [
        FieldChange("Tags.sagelift:run-id", "r1", "r2"),
        FieldChange("Tags.team", None, "t"),
    ]
    assert diff_tags(have, have) == []


def test_api_gateway_patches_read_as_field_changes() -> None:
    current = {"policy": "{}", "binaryMediaTypes": ["image/png"], "throttle": {"rateLimit": 100.0}}
    ops = [
        {"op": "replace", "path": "/policy", "value": '{"Version":"2012-10-17"}'},
        {"op": "add", "path": "/binaryMediaTypes/image~1*"},
        {"op": "remove", "path": "/binaryMediaTypes/image~1png"},
        {"op": "replace", "path": "/throttle/rateLimit", "value": "100"},  # the same number: no change
    ]
    assert diff_patch(ops, current) == [
        FieldChange("policy", "{}", '{"Version":"2012-10-17"}'),
        FieldChange("binaryMediaTypes", None, "image/*"),
        FieldChange("binaryMediaTypes", "image/png", None),
    ]


def test_a_change_set_renders_each_change_and_travels_as_json() -> None:
    changes = ChangeSet(
        model_name="m",
        account_id="333333333333",
        run_id="r",
        changes=(
            Change("SageMaker endpoint config", "m-2", "create", note="1 x ml.m5.large"),
            update_or_unchanged("SageMaker endpoint", "m", [FieldChange("EndpointConfigName", "m-1", "m-2")]),
            update_or_unchanged("API Gateway REST API", "m", []),
            Change("scalable target", "endpoint/m/variant/AllTraffic", "delete"),
        ),
        notes=("a note",),
    )
    text = changes.render()
    assert text.splitlines() == [
        "Plan for model m in account 333333333333 (run r): 1 to create, 1 to update, 1 to delete, "
        "1 unchanged. Nothing was changed.",
        "+ create    SageMaker endpoint config m-2  (1 x ml.m5.large)",
        "~ update    SageMaker endpoint m",
        "      EndpointConfigName: m-1 -> m-2",
        "= unchanged API Gateway REST API m",
        "- delete    scalable target endpoint/m/variant/AllTraffic",
        "note: a note",
    ]
    assert changes.note() == (
        "**m** in account 333333333333: plan only, 1 to create, 1 to update, 1 to delete; nothing was changed."
    )
    data = json.loads(json.dumps(changes.to_xcom()))
    assert data["counts"] == {"create": 1, "update": 1, "delete": 1, "unchanged": 1}
    assert ChangeSet.from_xcom(data) == changes


def test_long_values_are_clipped_when_shown() -> None:
    line = FieldChange("policy", None, "x" * 500).render()
    assert line.startswith("policy: (absent) -> xxx") and line.endswith("...") and len(line) < 160
