"""The standard tag document: both forms accepted, malformed documents refused precisely."""

from __future__ import annotations

import json

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.tags import derive_run_tags, merge_tags, parse_tag_document

SOURCE = "s3://platform/tags.json"


def test_map_and_list_forms_are_equivalent():
    as_map = parse_tag_document(json.dumps({"CostCenter": "cc-1", "Owner": "team"}), SOURCE)
    as_list = parse_tag_document(
        json.dumps([{"Key": "CostCenter", "Value": "cc-1"}, {"Key": "Owner", "Value": "team"}]), SOURCE
    )
    assert as_map == as_list == [{"Key": "CostCenter", "Value": "cc-1"}, {"Key": "Owner", "Value": "team"}]


MALFORMED = [
    ("not JSON", b"{CostCenter: cc}", "is not valid JSON"),
    ("a string", json.dumps("CostCenter=cc"), "must be a JSON object"),
    ("non-string value", json.dumps({"CostCenter": 4711}), "tag values must be strings"),
    ("list entry without Key", json.dumps([{"Value": "x"}]), '{"Key": ..., "Value": ...}'),
    (
        "list entry with extra field",
        json.dumps([{"Key": "a", "Value": "b", "Extra": 1}]),
        '{"Key": ..., "Value": ...}',
    ),
    ("reserved prefix", json.dumps({"aws:createdBy": "me"}), "the aws: prefix is reserved"),
    ("key too long", json.dumps({"k" * 129: "v"}), "keys are 1-128 characters"),
    ("value too long", json.dumps({"k": "v" * 257}), "values are at most 256 characters"),
    ("bad characters", json.dumps({"Cost#Center": "x"}), "may contain letters, digits, spaces"),
    (
        "duplicate ignoring case",
        json.dumps([{"Key": "Owner", "Value": "a"}, {"Key": "owner", "Value": "b"}]),
        "unique ignoring case",
    ),
    ("too many", json.dumps({f"k{i}": "v" for i in range(51)}), "at most 50 tags"),
    ("empty key", json.dumps({"": "v"}), "keys are 1-128 characters"),
]


@pytest.mark.parametrize(("case", "document", "rule"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_documents_are_refused_with_the_rule(case, document, rule):
    with pytest.raises(SageliftValidationError) as raised:
        parse_tag_document(document, SOURCE)
    assert SOURCE in str(raised.value)
    assert rule in str(raised.value)


def test_run_tags_win_and_the_merge_respects_the_limit():
    run = derive_run_tags(
        model_name="m",
        dag_id="sagemaker_deploy",
        run_id="manual__2026-11-29T10:00:00+00:00",
        account_id="333333333333",
    )
    merged = merge_tags(
        [{"Key": "SAGELIFT:MODEL-NAME", "Value": "spoofed"}, {"Key": "Owner", "Value": "t"}], run
    )
    assert {t["Key"]: t["Value"] for t in merged}["sagelift:model-name"] == "m"
    assert len(merged) == 6
    with pytest.raises(SageliftValidationError, match="at most 50 tags"):
        merge_tags([{"Key": f"k{i}", "Value": "v"} for i in range(47)], run)


@pytest.mark.parametrize(
    ("user", "value"),
    [
        ("alice", "alice"),
        ("Jane O'Brien, ML", "Jane O_Brien_ ML"),
        ("x" * 256, "x" * 256),
        (None, "unverified"),  # a plan built without a user: the KFP components
    ],
)
def test_the_user_a_run_acted_for_is_a_run_tag_that_keeps_the_aws_rules(user, value):
    run = derive_run_tags(
        model_name="m", dag_id="d", run_id="r", account_id="333333333333", triggered_by=user
    )
    assert {t["Key"]: t["Value"] for t in run}["sagelift:triggered-by"] == value
    merge_tags([], run)  # raises when a tag breaks an AWS rule
