"""sagelift.client against the live tier's real Airflow (tests/live/conftest.py), as bob in a notebook:
submit and watch a deploy, read why a bad conf failed, list the account's models, tear one down.

invoke is not called here: the invoke URL is API Gateway's public host, which the local AWS does not
serve; tests/test_client.py checks its SigV4 signature.
"""

from __future__ import annotations

import io
import time

import pytest

from sagelift.client import LineProgress, RunFailed, SageliftClient
from sagelift.domain.notes import escape_markdown
from tests.live.conftest import BOB
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "churn-notebook"


def _client(world) -> SageliftClient:
    return SageliftClient(world.af.url, username=BOB, password=world.af.password(BOB))


def test_a_notebook_deploys_lists_and_tears_down_a_model(world):
    world.life.training(seconds=100)  # ten real seconds: long enough for the progress to show training
    client = _client(world)
    shown = io.StringIO()

    summary = client.submit(demo_conf(model_name=MODEL), poll=1, timeout=600, progress=LineProgress(shown))

    assert summary["model_name"] == MODEL and summary["invoke_url"].endswith("/invocations")
    assert summary["run_id"].startswith(f"{MODEL}__manual__")
    # The note the client set when it triggered, replaced by summarize_run with the outcome.
    run = client.dag_run("sagemaker_deploy", summary["run_id"])
    assert run["note"].startswith(
        f"**{escape_markdown(MODEL)}** in account {SCIENTIST_ACCOUNT}: endpoint InService."
    )
    assert f"Invoke: POST {escape_markdown(summary['invoke_url'])}" in run["note"]
    lines = [line.split("] ", 1)[1] for line in shown.getvalue().splitlines()]
    assert "validate: success" in lines and "train_model: deferred" in lines, lines
    assert "training job: InProgress" in lines and "training job: Completed" in lines, lines
    assert lines[-1] == "run success"
    assert not [line for line in lines if "DagBag" in line or "::group::" in line], lines  # no bookkeeping

    # The endpoint is an Asset the deploy DAG produced, its event naming the run and the training data.
    # (Active, i.e. listed in the Assets view by default, after the scheduler's next orphanage check.)
    query = {"name_pattern": MODEL, "only_active": "false"}
    assets = world.af.api.get("/api/v2/assets", params=query).json()["assets"]
    (asset,) = [a for a in assets if a["name"] == f"sagemaker_endpoint/{SCIENTIST_ACCOUNT}/{MODEL}"]
    assert asset["uri"] == f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:endpoint/{MODEL}"
    events = world.af.api.get("/api/v2/assets/events", params={"asset_id": asset["id"]}).json()
    (event,) = events["asset_events"]
    assert event["source_dag_id"] == "sagemaker_deploy" and event["source_run_id"] == summary["run_id"]
    assert event["extra"]["training_data"] and event["extra"]["invoke_url"] == summary["invoke_url"]
    # The link's page is served by the API server.
    page = world.af.api.get("/sagelift/how-to-call")
    assert page.status_code == 200 and "How to call your model" in page.text

    (model,) = [m for m in client.list_models(SCIENTIST_ACCOUNT) if m["model_name"] == MODEL]
    assert model["invoke_url"] == summary["invoke_url"]
    assert model["endpoint_status"] == "InService" and model["run_id"] == summary["run_id"]

    client.teardown(MODEL, SCIENTIST_ACCOUNT, poll=1, timeout=300, progress=LineProgress(io.StringIO()))
    assert MODEL not in [m["model_name"] for m in client.list_models(SCIENTIST_ACCOUNT)]


def test_a_bad_conf_raises_with_validate_s_field_and_rule(world):
    with pytest.raises(RunFailed) as raised:
        _client(world).submit(
            demo_conf(model_name="churn-bad", training_instance_count=0),
            poll=1,
            timeout=300,
            progress=LineProgress(io.StringIO()),
        )
    failed = raised.value
    assert failed.task_id == "validate"
    assert failed.reason.startswith("Invalid run configuration. training_instance_count: "), str(failed)
    assert len(str(failed)) < 2000
    # The failure notifier replaces the run's note with the failed task and validate's first line.
    client, note = _client(world), ""
    for _ in range(30):
        note = client.dag_run("sagemaker_deploy", failed.run_id)["note"] or ""
        if "failed at validate" in note:
            break
        time.sleep(1)
    assert note.startswith("failed at validate."), note  # a conf validate refused names no model
    assert escape_markdown("training_instance_count") in note, note
