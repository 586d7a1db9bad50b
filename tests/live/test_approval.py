"""Approval in the Airflow UI (issue 17 item 8), in a real browser against the live tier's Airflow.

Two runs deploy an existing artifact into the account that requires approval
(tests/live/approval_account.py); both pause at approve_deploy in Airflow 3.3's ``awaiting_input``
state. In Debian's chromium (Playwright), ``admin`` (one of the account's deployers) opens each task's
Required Actions page, sees the version, its metrics and the plan, and approves one run and rejects the
other. After the approval the endpoint is InService on that run's config and the version is Approved;
after the rejection the run failed at approve_deploy, nothing after it ran, the model has no endpoint
and the version is Rejected. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from sagelift.domain.plan import derive_names
from tests.live import approval_account
from tests.live.approval_account import APPROVAL_ACCOUNT
from tests.live.test_trigger_form import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support.airflow_standalone import ADMIN

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "sagemaker_deploy"
APPROVED_MODEL, REJECTED_MODEL = "approval-yes", "approval-no"
LATER_STEPS = (
    "recommend_instance",
    "create_model",
    "deploy_endpoint",
    "batch_transform",
    "expose_api",
    "summarize_run",
)


def _wait_for_task(airflow, run_id: str, task_id: str, states: set[str], timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = airflow.task_states(DAG_ID, run_id).get(task_id)
        if state in states:
            return str(state)
        if airflow.dag_run(DAG_ID, run_id)["state"] in ("failed", "success"):
            break
        time.sleep(1)
    raise AssertionError(f"{task_id} of {run_id} is {state}: {airflow.task_states(DAG_ID, run_id)}")


@pytest.fixture(scope="module")
def runs(world) -> dict[str, str]:
    airflow = world.af
    started = {
        model: airflow.trigger(DAG_ID, approval_account.conf(model))
        for model in (APPROVED_MODEL, REJECTED_MODEL)
    }
    for run_id in started.values():
        _wait_for_task(airflow, run_id, "approve_deploy", {"awaiting_input"})
    return started


@pytest.fixture(scope="module")
def page(world):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(world.af.url + "/")
        page.fill("input[name=username]", ADMIN)
        page.fill("input[name=password]", world.af.password(ADMIN))
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "login" not in url)
        yield page
        browser.close()


def _answer(page, airflow, run_id: str, model: str, option: str) -> None:
    """Open the task's Required Actions page, check what it shows, and answer."""
    page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}/tasks/approve_deploy/required_actions")
    page.get_by_text(f"Deploy {model} version 1 into account {APPROVAL_ACCOUNT}?").first.wait_for()
    page.get_by_text("What the run will change").first.wait_for()
    page.get_by_text(f"SageMaker endpoint {model}", exact=False).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / f"approval-{option.lower()}-request.png"), full_page=True)
    page.get_by_role("button", name=option, exact=True).click()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"approval-{option.lower()}-answered.png"), full_page=True)


def _version(world, model: str) -> dict:
    sm = world.aws.client("sagemaker", APPROVAL_ACCOUNT)
    [summary] = sm.list_model_packages(ModelPackageGroupName=model)["ModelPackageSummaryList"]
    return sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])


def test_an_approved_run_deploys_its_version(world, runs, page) -> None:
    airflow, run_id = world.af, runs[APPROVED_MODEL]
    assert _version(world, APPROVED_MODEL)["ModelApprovalStatus"] == "PendingManualApproval"

    _answer(page, airflow, run_id, APPROVED_MODEL, "Approve")

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240)["state"] == "success"
    version = _version(world, APPROVED_MODEL)
    assert version["ModelApprovalStatus"] == "Approved"
    assert f"approved by {ADMIN}" in version["ApprovalDescription"]
    endpoint = world.aws.client("sagemaker", APPROVAL_ACCOUNT).describe_endpoint(EndpointName=APPROVED_MODEL)
    names = derive_names(APPROVED_MODEL, DAG_ID, run_id)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        names.endpoint_config,
    )


def test_a_rejected_run_stops_before_deploy(world, runs, page) -> None:
    airflow, run_id = world.af, runs[REJECTED_MODEL]

    _answer(page, airflow, run_id, REJECTED_MODEL, "Reject")

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240)["state"] == "failed"
    states = airflow.task_states(DAG_ID, run_id)
    assert states["approve_deploy"] == "failed"
    assert {task: states[task] for task in LATER_STEPS} == {task: "upstream_failed" for task in LATER_STEPS}
    # the failure's message is in the log entry's error details, not its event
    response = airflow.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_deploy/logs/1", full_content="true"
    )
    log = json.dumps(response.json()["content"])
    assert f"approve_deploy: rejected by '{ADMIN}'; {REJECTED_MODEL} version 1 is Rejected" in log
    assert _version(world, REJECTED_MODEL)["ModelApprovalStatus"] == "Rejected"
    sm = world.aws.client("sagemaker", APPROVAL_ACCOUNT)
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [APPROVED_MODEL]
    assert [m["ModelName"] for m in sm.list_models()["Models"] if REJECTED_MODEL in m["ModelName"]] == []
