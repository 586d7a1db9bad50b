"""Approval before deploy, the pure part (issue 17 item 8): the platform's settings and their rules, which
runs wait (and that KFP refuses them, pointing to Airflow), the lock held through the wait, the request's
Markdown and what an answer means."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagelift.domain.approval import (
    MAX_CHANGES,
    Decision,
    read_decision,
    request_body,
    skip_reason,
)
from sagelift.domain.changes import Change, ChangeSet, FieldChange
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.lock import lease_seconds_for
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.summary import build_run_summary, render_run_summary
from tests.conftest import ROOT
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf
from tests.support.task_context import step_plan

APPROVERS = ("alice", "ines")


def platform(requires_approval: Any = True, **top: Any) -> dict[str, Any]:
    account = {"deployers": {"users": ["alice"], "groups": ["ml"]}, "requires_approval": requires_approval}
    return {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: account},
        "groups": {"ml": ["ines", "alice"]},
        **top,
    }


def plan(engine: str = "airflow", requires_approval: bool = True, **conf: Any) -> Plan:
    raw = build_plan(demo_conf(**conf), platform(requires_approval), "sagemaker_deploy", "r1", engine=engine)
    return Plan.from_xcom(raw)


def test_approval_is_off_by_default_and_waits_a_day() -> None:
    config = PlatformConfig.from_dict({"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}})
    assert config.accounts[SCIENTIST_ACCOUNT].requires_approval is False
    assert config.approval_timeout_seconds == 24 * 3600
    assert config.approvers(SCIENTIST_ACCOUNT) == ()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (platform("yes"), f"platform.accounts.{SCIENTIST_ACCOUNT}.requires_approval: true or false"),
        (
            platform(approval_timeout_seconds=59),
            "platform.approval_timeout_seconds: a whole number of seconds",
        ),
        (platform(approval_timeout_seconds=7 * 24 * 3600 + 1), "platform.approval_timeout_seconds"),
        (platform(approval_timeout_seconds=True), "platform.approval_timeout_seconds"),
    ],
)
def test_bad_approval_settings_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(SageliftValidationError) as refused:
        PlatformConfig.from_dict(raw)
    assert field in str(refused.value)


def test_the_approvers_are_the_account_s_deployers_groups_expanded_once() -> None:
    assert PlatformConfig.from_dict(platform()).approvers(SCIENTIST_ACCOUNT) == APPROVERS


def test_kfp_refuses_a_run_that_needs_approval_pointing_to_the_airflow_dag() -> None:
    with pytest.raises(SageliftValidationError) as refused:
        plan(engine="kfp")
    assert str(refused.value) == (
        f"account_id: account {SCIENTIST_ACCOUNT} requires approval (platform.accounts.<id>.requires_approval); "
        "KFP cannot ask: use the Airflow DAG sagemaker_deploy"
    )


@pytest.mark.parametrize(
    ("engine", "requires", "conf"),
    [
        ("airflow", True, {}),  # Airflow asks
        ("kfp", False, {}),  # nothing to ask
        ("kfp", True, {"plan_only": True}),  # a plan changes nothing
        ("kfp", True, {"model_docker_image": None}),  # a train-only run deploys nothing
    ],
)
def test_other_runs_are_not_refused(engine: str, requires: bool, conf: dict[str, Any]) -> None:
    plan(engine=engine, requires_approval=requires, **conf)


def test_who_waits_and_why_the_others_skip() -> None:
    assert plan().needs_approval and skip_reason(plan().params, plan().platform) is None
    other = plan(requires_approval=False)
    assert not other.needs_approval
    assert "does not require approval" in str(skip_reason(other.params, other.platform))
    train_only = plan(model_docker_image=None)
    assert "train-only" in str(skip_reason(train_only.params, train_only.platform))


def test_the_lock_is_held_through_the_approval_wait() -> None:
    waiting, not_waiting = plan(), plan(requires_approval=False)
    assert lease_seconds_for(waiting) - lease_seconds_for(not_waiting) == 24 * 3600


def _body(changes: ChangeSet, registered: dict[str, Any] | None = None) -> str:
    registered = registered or {"model_package_group": "m", "version": 3, "metrics": {"validation:auc": 0.9}}
    return request_body(
        registered, changes, run_id="r1", triggered_by="alice", approvers=APPROVERS, timeout_seconds=7200
    )


def test_the_body_escapes_run_values_hides_environments_and_stays_bounded() -> None:
    hostile = "[click](https://evil.example)"
    changes = ChangeSet(
        "m",
        SCIENTIST_ACCOUNT,
        "r1",
        changes=(
            Change(
                "SageMaker model",
                hostile,
                "update",
                (FieldChange("PrimaryContainer.Environment.TOKEN", "a", "s3cr3t"),),
            ),
            *(Change("image", f"i{n}", "unchanged") for n in range(MAX_CHANGES + 5)),
        ),
    )
    body = _body(changes, {"version": hostile, "metrics": {hostile: 1}})
    assert "[click](" not in body and "\\[click\\]\\(https" in body
    assert "s3cr3t" not in body and "PrimaryContainer\\.Environment\\.TOKEN: (not shown)" in body
    assert "and 6 more" in body and "2 h" in body and "alice, ines" in body


def test_an_answer_means_approved_only_from_an_approver() -> None:
    user = {"id": "ines", "name": "ines"}
    approve = {"chosen_options": ["Approve"], "responded_by_user": user, "timedout": False}
    assert read_decision(approve, APPROVERS) == Decision(approved=True, by="ines", timed_out=False)
    outsider = {**approve, "responded_by_user": {"id": "7", "name": "mallory"}}
    assert read_decision(outsider, APPROVERS).refused_approver
    reject = {**approve, "chosen_options": ["Reject"]}
    assert read_decision(reject, APPROVERS) == Decision(approved=False, by="ines", timed_out=False)
    timeout = {"chosen_options": ["Reject"], "responded_by_user": None, "timedout": True}
    assert read_decision(timeout, APPROVERS).timed_out
    assert read_decision({"error": "x", "error_type": "timeout"}, APPROVERS).timed_out
    assert Decision(False, None, True).status == "Rejected"
    assert len(Decision(True, "x" * 2000, False).description("r1")) <= 1024


def test_the_kfp_glue_s_validate_refuses_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGELIFT_PLATFORM", json.dumps(platform()))
    monkeypatch.syspath_prepend(str(ROOT / "include" / "kfp"))
    from sagelift_kfp import steps

    with pytest.raises(SageliftValidationError) as refused:
        steps.plan_run(demo_conf(), "sagemaker-deploy", "kfp-approval-1")
    assert "KFP cannot ask: use the Airflow DAG sagemaker_deploy" in str(refused.value)


def test_the_run_summary_shows_the_version_as_approved_and_by_whom() -> None:
    registered = {"model_package_group": "churn-predictor", "model_package_arn": "arn:p/1", "version": 1}
    approval = {"status": "Approved", "version": 1, "model_package_arn": "arn:p/1", "approved_by": "ines"}
    inputs: dict[str, Any] = {"images": None, "training": None, "model": None, "endpoint": None, "api": None}
    pending = build_run_summary(
        step_plan(), registered={**registered, "status": "PendingManualApproval"}, **inputs
    )
    approved = build_run_summary(
        step_plan(), registered={**registered, "status": "PendingManualApproval"}, approval=approval, **inputs
    )

    assert pending["registry"]["status"] == "PendingManualApproval"
    assert (approved["registry"]["status"], approved["registry"]["approved_by"]) == ("Approved", "ines")
    assert "churn-predictor version 1 is Approved (approved by ines)" in render_run_summary(approved)
