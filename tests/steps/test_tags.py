"""Where a run may read its standard tags from (issue 14 item 11), and how the document is read: only the
platform's tags_s3_uri or documents under platform.allowed_tag_document_prefixes, within 256 KB and 8
levels of nesting, checked by validate and again where resolve_tags reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import PlatformConfig
from sagelift.steps.errors import StepFailed
from sagelift.steps.tags import resolve_tags
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import demo_conf

PLATFORM_TAGS = "s3://platform-config/tags/standard.json"
DAG_ID, RUN_ID = "sagemaker_deploy", "manual__2026-12-01T10:00:00+00:00"


def platform(**settings: Any) -> dict[str, Any]:
    return {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}, "tags_s3_uri": PLATFORM_TAGS, **settings}


def refusal(tags_s3_path: str, **settings: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        build_plan(demo_conf(tags_s3_path=tags_s3_path), platform(**settings), DAG_ID, RUN_ID)
    assert err.value.fields == ["tags_s3_path"]
    first_line = str(err.value).splitlines()[0]
    assert len(first_line) <= 200
    return first_line


def test_by_default_a_run_may_name_only_the_platforms_own_tag_document() -> None:
    assert build_plan(demo_conf(tags_s3_path=PLATFORM_TAGS), platform(), DAG_ID, RUN_ID)
    assert "is neither the platform's tags_s3_uri nor under" in refusal(
        "s3://someone-elses-bucket/secrets.json"
    )
    assert "platform.allowed_tag_document_prefixes" in refusal("s3://platform-config/tags/other.json")
    # without a tags_s3_uri, no document at all
    with pytest.raises(SageliftValidationError, match=r"^tags_s3_path: "):
        build_plan(
            demo_conf(tags_s3_path=PLATFORM_TAGS),
            {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}},
            DAG_ID,
            RUN_ID,
        )


def test_the_platform_allows_prefixes_and_single_documents() -> None:
    allowed = {"allowed_tag_document_prefixes": ["s3://team-tags/teams/", "s3://team-tags/extra.json"]}
    for uri in (
        "s3://team-tags/teams/risk.json",
        "s3://team-tags/teams/a/b.json",
        "s3://team-tags/extra.json",
    ):
        assert build_plan(demo_conf(tags_s3_path=uri), platform(**allowed), DAG_ID, RUN_ID)
    for uri in (
        "s3://team-tags/teams-evil/risk.json",  # a prefix matches at a '/' only
        "s3://team-tags/extra.json.bak",  # an object entry matches exactly
        "s3://team-tags/other.json",
    ):
        assert "is neither the platform's tags_s3_uri nor under" in refusal(uri, **allowed)
    for uri in (
        "s3://team-tags/teams/../secrets.json",
        "s3://team-tags/teams//x.json",
        "s3://team-tags/teams/./x",
    ):
        assert "'.' or '..' path segment" in refusal(uri, **allowed)


@pytest.mark.parametrize(
    "value",
    [
        "s3://team-tags/",  # not a list
        ["https://team-tags.s3.amazonaws.com/tags.json"],
        ["s3://team-tags/a/../b/"],
        ["s3://team-tags//"],
        [f"s3://team-tags/{i}/" for i in range(51)],
    ],
)
def test_the_setting_validates_itself(value: object) -> None:
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(platform(allowed_tag_document_prefixes=value))
    assert err.value.fields == ["platform.allowed_tag_document_prefixes"]


# --- resolve_tags reads only what validate allowed, within bounds -------------------------------------
def tampered_plan(tags_s3_path: str, **settings: Any) -> Plan:
    """A plan validate built, with tags_s3_path changed afterwards (what the step's own check sees)."""
    data = build_plan(demo_conf(), platform(**settings), DAG_ID, RUN_ID)
    data["params"]["tags_s3_path"] = tags_s3_path
    return Plan.from_xcom(data)


def test_the_step_refuses_a_document_validate_would_refuse_before_reading_it(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="secrets.json", Body=b'{"Secret": "hunter2"}')
    before = local_aws.request_count()

    with pytest.raises(
        StepFailed, match=r"^tags_s3_path: 's3://someone-elses-bucket/secrets.json' is neither"
    ):
        resolve_tags(tampered_plan("s3://someone-elses-bucket/secrets.json"), s3)

    assert local_aws.request_count() == before


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (json.dumps({"CostCenter": "cc-1"}).encode(), None),
        (b"[" * 10_000 + b"]" * 10_000, "nests objects and lists more than 8 levels deep"),
        (b'{"a":' * 10_000 + b'"x"' + b"}" * 10_000, "more than 8 levels deep"),
        (json.dumps({"Big": "x" * 300_000}).encode(), "is 300011 bytes; at most 262144"),
        (b'"just a string"', "must be a JSON object"),
    ],
)
def test_an_allowed_document_is_read_within_bounds(
    local_aws: LocalAws, body: bytes, rule: str | None
) -> None:
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    s3.create_bucket(Bucket="team-tags")
    s3.put_object(Bucket="team-tags", Key="teams/risk.json", Body=body)
    plan = tampered_plan(
        "s3://team-tags/teams/risk.json", allowed_tag_document_prefixes=["s3://team-tags/teams/"]
    )
    if rule is None:
        assert {"Key": "CostCenter", "Value": "cc-1"} in resolve_tags(plan, s3)
        return
    with pytest.raises((StepFailed, SageliftValidationError)) as err:
        resolve_tags(plan, s3)
    assert rule in str(err.value)
    assert len(str(err.value).splitlines()[0]) <= 200
