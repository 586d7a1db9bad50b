"""Where model locks live (platform.locks_s3_uri, platform.locks) and what onboarding grants for them."""

from __future__ import annotations

import json

import boto3
import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.lock import plan_lock, run_holder
from sagelift.domain.onboarding import render_policies
from sagelift.domain.plan import Plan
from sagelift.domain.platform import PlatformConfig
from sagelift.steps import lock as locks
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.task_context import step_plan

ACCOUNT = SCIENTIST_ACCOUNT
BASE = {"region": REGION, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline"}


def _platform(**settings) -> dict:
    return {**BASE, "accounts": {ACCOUNT: {}}, **settings}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"locks_s3_uri": "https://bucket/locks/"}, "platform.locks_s3_uri"),
        ({"locks_s3_uri": "s3://sagelift-{model_name}/"}, "platform.locks_s3_uri"),
        ({"locks_s3_uri": "s3://b/locks/{run_id}/"}, "platform.locks_s3_uri"),
        ({"accounts": {ACCOUNT: {"locks_s3_uri": 7}}}, f"platform.accounts.{ACCOUNT}.locks_s3_uri"),
        ({"locks": {"wait_budget_seconds": -1}}, "platform.locks.wait_budget_seconds"),
        ({"locks": {"wait_budget_seconds": True}}, "platform.locks.wait_budget_seconds"),
        ({"locks": {"check_interval_seconds": 0}}, "platform.locks.check_interval_seconds"),
        ({"locks": {"lease_seconds": 0}}, "platform.locks.lease_seconds"),
        ({"locks": {"lease_secs": 60}}, "platform.locks.lease_secs"),
        ({"locks": []}, "platform.locks"),
    ],
)
def test_bad_lock_settings_are_refused_naming_the_field(settings, field):
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict(_platform(**settings))
    assert raised.value.fields == [field]
    assert len(str(raised.value).splitlines()[0]) <= 200


def test_lock_settings_default_to_a_bounded_wait_and_a_derived_lease():
    platform = PlatformConfig.from_dict(_platform(locks_s3_uri="s3://sagelift-state-{account_id}-{region}"))
    assert platform.locks_uri(ACCOUNT) == f"s3://sagelift-state-{ACCOUNT}-{REGION}"
    assert (platform.locks.wait_budget_seconds, platform.locks.lease_seconds) == (6 * 3600, None)
    assert PlatformConfig.from_dict(_platform()).locks_uri(ACCOUNT) is None


def _statements(policies: dict) -> dict:
    return {s["Sid"]: s for s in policies["execution-permissions"]["Statement"]}


def _render(platform: dict) -> dict:
    return render_policies(
        PlatformConfig.from_dict(platform),
        ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )


def test_the_execution_role_may_use_only_its_own_account_s_locks():
    statements = _statements(_render(_platform(locks_s3_uri="s3://sagelift-state-{account_id}/locks/")))
    objects = statements["TakeAndGiveBackTheAccountsModelLocks"]
    assert objects["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    assert objects["Resource"] == f"arn:aws:s3:::sagelift-state-{ACCOUNT}/locks/{ACCOUNT}/*"
    listing = statements["SeeAMissingModelLockAsMissing"]
    assert (listing["Action"], listing["Resource"]) == (
        "s3:ListBucket",
        f"arn:aws:s3:::sagelift-state-{ACCOUNT}",
    )
    unserialized = _statements(_render(_platform()))
    assert not {"TakeAndGiveBackTheAccountsModelLocks", "SeeAMissingModelLockAsMissing"} & set(unserialized)


def test_the_lock_statements_pass_the_parliament_linter():
    from parliament import analyze_policy_string

    document = _render(_platform(locks_s3_uri="s3://sagelift-state-{account_id}/locks/"))[
        "execution-permissions"
    ]
    policy = analyze_policy_string(json.dumps(document))
    serious = [f.issue for f in policy.findings if f.severity in ("HIGH", "MEDIUM", "CRITICAL")]
    assert serious == []


# What IAM action each S3 call of the lock needs (a conditional DeleteObject also reads the object's ETag:
# S3 asks for s3:GetObject besides s3:DeleteObject).
IAM_ACTIONS = {
    "PutObject": {"s3:PutObject"},
    "GetObject": {"s3:GetObject"},
    "HeadObject": {"s3:GetObject"},
    "DeleteObject": {"s3:DeleteObject", "s3:GetObject"},
}


def test_the_grant_is_exactly_what_the_lock_s_calls_need(local_aws):
    """Every S3 call the lock makes, in every path (take, wait, take over, check, give back), is recorded
    and mapped to its IAM action; the policy grants those on the lock objects and nothing more."""
    platform = _platform(locks_s3_uri="s3://sagelift-state-{account_id}/locks/", locks={"lease_seconds": 1})
    local_aws.client("s3", ACCOUNT).create_bucket(Bucket=f"sagelift-state-{ACCOUNT}")
    key, secret = local_aws.create_access_key(ACCOUNT, user="iam-test")
    s3 = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
    ).client("s3", endpoint_url=local_aws.url)
    calls: list[tuple[str, str]] = []
    s3.meta.events.register(
        "provide-client-params.s3.*",
        lambda model, params, **_: calls.append((model.name, f"{params['Bucket']}/{params.get('Key', '')}")),
    )
    first, second = (Plan.from_xcom(step_plan(None, platform, run_id=f"manual__{n}")) for n in "ab")
    lock = plan_lock(first)
    locks.try_acquire(s3, lock, run_holder(first))
    locks.try_acquire(s3, lock, run_holder(second))  # held: read
    locks.verify_held(s3, first)
    locks.runs_in_progress(s3, first)
    locks.release(s3, lock, first.names.run_key)
    locks.read_lock(s3, lock)  # missing: 404, which needs s3:ListBucket on the bucket
    locks.verify_held(s3, second)  # taken again after a release

    needed = {action for operation, _ in calls for action in IAM_ACTIONS[operation]}
    objects = {resource for _, resource in calls}
    granted = _statements(_render(platform))["TakeAndGiveBackTheAccountsModelLocks"]
    assert needed == set(granted["Action"])
    prefix = granted["Resource"].removeprefix("arn:aws:s3:::").removesuffix("*")
    assert objects == {f"sagelift-state-{ACCOUNT}/locks/{ACCOUNT}/churn-predictor.json"}
    assert all(o.startswith(prefix) for o in objects)
