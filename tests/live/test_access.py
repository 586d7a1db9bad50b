"""Who may deploy where, on a real Airflow with two users of its SimpleAuthManager (tests/live/conftest.py).

alice may deploy only into her own account (444444444444); bob into the scientist account 333333333333.
alice's trigger into bob's account is refused through the REST API and through the UI's trigger form,
naming her and the account and nobody else; so is her teardown of bob's model. bob's run succeeds and
everything it creates is tagged as his; his teardown then removes it. A data-triggered retrain, which no
user starts, acts for the owner its registration names.

Every run starts at once (the ``started`` fixture) and runs side by side; the tests wait for each.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from typing import Any

import pytest

from sagelift.domain.ownership import is_per_run_name
from sagelift.domain.params import SECTION_MODEL
from sagelift.domain.plan import derive_run_key
from tests.conftest import ROOT
from tests.live.conftest import ALICE, ALICE_ACCOUNT, BOB
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "sagemaker_deploy"
TEARDOWN = "sagemaker_teardown"
BOB_MODEL, ALICE_MODEL, ALICE_UI_MODEL = "churn-bob", "churn-alice", "churn-alice-ui"
CHURN = json.loads((ROOT / "include/examples/retrain/churn-predictor.json").read_text())
RETRAIN_DAG = "sagemaker_retrain_churn_predictor"
TRIGGERED_BY = "sagelift:triggered-by"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "ui"


def refusal(action: str, user: str = ALICE, account: str = SCIENTIST_ACCOUNT) -> str:
    return (
        f"account_id: user '{user}' may not {action} account {account}: not one of its deployers "
        "(platform.accounts.<account>.deployers)"
    )


def _trigger(client, dag_id: str, conf: dict[str, Any], user: str) -> str:
    response = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["triggering_user_name"] == user  # who Airflow records, from the caller's token
    return str(run["dag_run_id"])


def _bobs_conf() -> dict[str, Any]:
    """Deploys an existing artifact: no training, the shortest whole run."""
    return {
        "model_name": BOB_MODEL,
        "account_id": SCIENTIST_ACCOUNT,
        "model_docker_image": demo_conf()["model_docker_image"],
        "model_artifact_s3_path": f"s3://{DATA_BUCKET}/models/churn/model.tar.gz",
    }


def _post_data_event(airflow) -> None:
    prefix = CHURN["training_data_prefix"].rstrip("/")  # as the Amazon provider normalizes S3 asset URIs
    airflow.wait_for_dag(RETRAIN_DAG)
    deadline = time.monotonic() + 60
    assets: list[dict] = []
    while not assets and time.monotonic() < deadline:
        found = airflow.api.get("/api/v2/assets", params={"uri_pattern": prefix}).json()["assets"]
        assets = [a for a in found if a["uri"] == prefix]
        time.sleep(0.5)
    posted = airflow.api.post("/api/v2/assets/events", json={"asset_id": assets[0]["id"]})
    assert posted.status_code == 200, posted.text


@dataclass
class Started:
    alice_run: str
    alice_teardown: str
    bob_run: str


@pytest.fixture(scope="module")
def started(world) -> Started:
    world.life.training(seconds=10)
    airflow = world.af
    airflow.wait_for_dag(DAG_ID)
    airflow.wait_for_dag(TEARDOWN)
    with airflow.client(ALICE) as alice, airflow.client(BOB) as bob:
        started = Started(
            alice_run=_trigger(alice, DAG_ID, demo_conf(model_name=ALICE_MODEL), ALICE),
            alice_teardown=_trigger(
                alice,
                TEARDOWN,
                {"model_name": BOB_MODEL, "account_id": SCIENTIST_ACCOUNT, "confirm": BOB_MODEL},
                ALICE,
            ),
            bob_run=_trigger(bob, DAG_ID, _bobs_conf(), BOB),
        )
    _post_data_event(airflow)
    return started


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _refusals(airflow, dag_id: str, run_id: str) -> set[str]:
    """The refusals in validate's log as the UI gets it: the failure's message is in the entry's
    error details (exc_value), not its event."""
    response = airflow.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/validate/logs/1", full_content="true"
    )
    response.raise_for_status()
    return {text for text in _strings(response.json()["content"]) if "may not" in text}


def _failed_at_validate(airflow, dag_id: str, run_id: str) -> None:
    assert airflow.wait_for_run(dag_id, run_id, timeout=240)["state"] == "failed"
    states = airflow.task_states(dag_id, run_id)
    assert states.pop("validate") == "failed"
    assert set(states.values()) == {"upstream_failed"}, states


def _tags(world, model: str, run_id: str) -> dict[str, dict[str, str]]:
    """The tags of what a run created: its model and endpoint config, the endpoint and the API."""
    sm = world.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    per_run = f"{model}-{derive_run_key(DAG_ID, run_id)}"
    arns = {
        "model": sm.describe_model(ModelName=per_run)["ModelArn"],
        "endpoint config": sm.describe_endpoint_config(EndpointConfigName=per_run)["EndpointConfigArn"],
        "endpoint": sm.describe_endpoint(EndpointName=model)["EndpointArn"],
    }
    tags = {
        kind: {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
        for kind, arn in arns.items()
    }
    apis = world.aws.client("apigateway", SCIENTIST_ACCOUNT).get_rest_apis()["items"]
    (api,) = [a for a in apis if a["name"] == model]
    tags["API"] = api.get("tags", {})
    return tags


def _names_in_account(world, model: str) -> list[str]:
    """The SageMaker resources in bob's account named for ``model`` (the name or a run of it)."""
    sm = world.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    names = [
        *(m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]),
        *(c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]),
        *(e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]),
        *(j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]),
    ]
    return [name for name in names if name == model or is_per_run_name(name, model)]


def test_alices_rest_trigger_into_bobs_account_is_refused_naming_her_and_the_account(world, started):
    _failed_at_validate(world.af, DAG_ID, started.alice_run)
    (line,) = _refusals(world.af, DAG_ID, started.alice_run)
    assert line == "Invalid run configuration. " + refusal("deploy into")
    for other in (BOB, "admin", ALICE_ACCOUNT, "scientists", CHURN["owner"]):
        assert other not in line
    assert _names_in_account(world, ALICE_MODEL) == []


def test_alices_teardown_of_bobs_model_is_refused(world, started):
    _failed_at_validate(world.af, TEARDOWN, started.alice_teardown)
    (line,) = _refusals(world.af, TEARDOWN, started.alice_teardown)
    assert line == "Teardown refused. " + refusal("tear down in")


def test_bobs_rest_trigger_succeeds_and_everything_it_creates_is_tagged_as_his(world, started):
    run = world.af.wait_for_run(DAG_ID, started.bob_run, timeout=420)
    assert run["state"] == "success", world.af.task_states(DAG_ID, started.bob_run)
    tags = _tags(world, BOB_MODEL, started.bob_run)
    assert {kind: t.get(TRIGGERED_BY) for kind, t in tags.items()} == dict.fromkeys(tags, BOB)

    # His teardown succeeds too, and leaves the account as the other live tests expect it.
    with world.af.client(BOB) as bob:
        teardown = _trigger(
            bob,
            TEARDOWN,
            {"model_name": BOB_MODEL, "account_id": SCIENTIST_ACCOUNT, "confirm": BOB_MODEL},
            BOB,
        )
    assert world.af.wait_for_run(TEARDOWN, teardown, timeout=240)["state"] == "success"
    assert _names_in_account(world, BOB_MODEL) == []


def test_a_data_triggered_retrain_acts_for_the_owner_its_registration_names(world, started):
    airflow = world.af
    deadline = time.monotonic() + 180
    runs: list[dict] = []
    while not runs and time.monotonic() < deadline:
        listed = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
        runs = [r for r in listed if r["dag_run_id"].startswith(f"retrain__{RETRAIN_DAG}__")]
        time.sleep(1)
    (run,) = runs
    # Nobody triggered it: Airflow records no user, and the run type says a task (the retrain DAG's) did.
    assert run["triggering_user_name"] is None and run["run_type"] == "operator_triggered"
    done = airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=420)
    assert done["state"] == "success", airflow.task_states(DAG_ID, run["dag_run_id"])
    tags = _tags(world, CHURN["conf"]["model_name"], run["dag_run_id"])
    assert {t[TRIGGERED_BY] for t in tags.values()} == {CHURN["owner"]}


@pytest.fixture(scope="module")
def alices_page(world):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(world.af.url + "/")
        page.fill("input[name=username]", ALICE)
        page.fill("input[name=password]", world.af.password(ALICE))
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "login" not in url)
        yield page
        browser.close()


def _alices_form_run(airflow, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
        mine = [r for r in listed if (r.get("conf") or {}).get("model_name") == ALICE_UI_MODEL]
        if mine:
            return mine[0]
        time.sleep(1)
    raise AssertionError("the form created no run")


def test_alices_trigger_from_the_ui_into_bobs_account_is_refused(world, started, alices_page):
    airflow, page = world.af, alices_page
    page.goto(airflow.url + f"/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    page.get_by_text(f"Trigger Dag - {DAG_ID}").wait_for()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=SECTION_MODEL, exact=True).click()
    page.wait_for_timeout(800)
    for label, value in {"Model name": ALICE_UI_MODEL, "Scientist AWS account": SCIENTIST_ACCOUNT}.items():
        # The form's labels are not tied to their inputs: take the input of the label's own field.
        field = dialog.locator(
            f"xpath=.//label[normalize-space()='{label}']/ancestor::*[.//input or .//textarea][1]"
        )
        field.locator("input, textarea").first.fill(value)
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    run = _alices_form_run(airflow)
    assert run["triggering_user_name"] == ALICE
    _failed_at_validate(airflow, DAG_ID, run["dag_run_id"])
    # What alice sees in the UI: the validate task's log names her and the account.
    page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run['dag_run_id']}/tasks/validate")
    page.get_by_text(
        f"user '{ALICE}' may not deploy into account {SCIENTIST_ACCOUNT}", exact=False
    ).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "access-refused-validate-log.png"), full_page=True)
    assert _names_in_account(world, ALICE_UI_MODEL) == []
