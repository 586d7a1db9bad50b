"""sagemaker_deploy's trigger form in a real browser: Debian's chromium driven by Playwright against the
live tier's ``airflow standalone`` (tests/live/conftest.py), with the local AWS behind it. Screenshots go
to test-artifacts/ui/.

Uses /usr/bin/chromium only (never a downloaded browser); skipped where it or Playwright is missing.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from sagelift.domain.params import (
    PARAMETERS,
    SECTION_ADVANCED,
    SECTION_DEPLOYMENT,
    SECTION_MODEL,
    SECTION_TRAINING,
)
from tests.conftest import ROOT
from tests.support.airflow_standalone import ADMIN
from tests.support.scenario import demo_conf

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
SECTIONS = (SECTION_MODEL, SECTION_DEPLOYMENT, SECTION_TRAINING, SECTION_ADVANCED)


@pytest.fixture(scope="module")
def airflow(world):
    world.life.training(seconds=10)
    return world.af


@pytest.fixture(scope="module")
def page(airflow):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(airflow.url + "/")
        page.fill("input[name=username]", ADMIN)
        page.fill("input[name=password]", airflow._password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "login" not in url)
        yield page
        browser.close()


def _open_trigger_form(page, airflow):
    page.goto(airflow.url + "/dags/sagemaker_deploy")
    page.get_by_role("button", name="Trigger").first.click()
    page.get_by_text("Trigger Dag - sagemaker_deploy").wait_for()
    return page.get_by_role("dialog")


def _runs(airflow) -> list[dict]:
    return airflow.get("/api/v2/dags/sagemaker_deploy/dagRuns").json()["dag_runs"]


def _new_run(airflow, known: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r["dag_run_id"] for r in _runs(airflow) if r["dag_run_id"] not in known]
        if new:
            return new[0]
        time.sleep(1)
    raise AssertionError("the form created no run")


def test_every_parameter_is_in_its_section_with_its_description(page, airflow):
    dialog = _open_trigger_form(page, airflow)
    labels = " ".join(dialog.locator("label").all_inner_texts())
    for section in SECTIONS:
        # One section is open at a time: open it, then every parameter of it shows title and description.
        dialog.get_by_role("button", name=section, exact=True).click()
        page.wait_for_timeout(800)
        shown = [t.strip() for t in dialog.locator("[data-part='helper-text']:visible").all_inner_texts()]
        for spec in (s for s in PARAMETERS if s.section == section):
            assert spec.description in shown, (spec.name, section, shown)
            assert spec.title in labels, spec.name
        slug = section.split(" ")[0].lower()
        dialog.screenshot(path=str(ARTIFACTS / f"trigger-form-{slug}.png"))
    assert {s.section for s in PARAMETERS} == set(SECTIONS)


def test_an_invalid_conf_shows_the_validation_error(page, airflow):
    known = {r["dag_run_id"] for r in _runs(airflow)}
    dialog = _open_trigger_form(page, airflow)
    # The defaults leave model_name and account_id empty: the validate task names both.
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    run_id = _new_run(airflow, known)
    assert airflow.wait_for_run("sagemaker_deploy", run_id, timeout=240)["state"] == "failed"

    page.goto(f"{airflow.url}/dags/sagemaker_deploy/runs/{run_id}/tasks/validate")
    page.get_by_text("Invalid run configuration", exact=False).first.wait_for()
    page.get_by_text("model_name: required", exact=False).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "invalid-conf-validate-log.png"), full_page=True)


def test_a_valid_conf_from_the_form_runs_to_success_against_the_local_aws(page, airflow):
    known = {r["dag_run_id"] for r in _runs(airflow)}
    conf = demo_conf(model_name="churn-ui")
    dialog = _open_trigger_form(page, airflow)
    # The fields of a bring-your-own-image run; training needs at least one channel (a JSON text box).
    fields = {
        SECTION_MODEL: {"Model name": conf["model_name"], "Scientist AWS account": conf["account_id"]},
        SECTION_DEPLOYMENT: {"Inference image": conf["model_docker_image"]},
        SECTION_TRAINING: {
            "Training image": conf["training_docker_image"],
            "Training output path": conf["training_s3_output_path"],
            "Training channels": json.dumps(conf["training_channels"]),
        },
    }
    for section, values in fields.items():
        dialog.get_by_role("button", name=section, exact=True).click()
        page.wait_for_timeout(800)
        for label, value in values.items():
            # The form's labels are not tied to their inputs: take the input of the label's own field.
            field = dialog.locator(
                f"xpath=.//label[normalize-space()='{label}']/ancestor::*[.//input or .//textarea][1]"
            )
            field.locator("input, textarea").first.fill(value)
    dialog.screenshot(path=str(ARTIFACTS / "valid-conf-form.png"))
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    run_id = _new_run(airflow, known)
    run = airflow.wait_for_run("sagemaker_deploy", run_id, timeout=420)
    assert run["state"] == "success", airflow.task_states("sagemaker_deploy", run_id)
    # The form sends the account as typed into a JSON-capable field: a number; validate accepts both.
    assert {k: str(run["conf"][k]) for k in ("model_name", "account_id", "training_docker_image")} == {
        k: conf[k] for k in ("model_name", "account_id", "training_docker_image")
    }
    page.goto(f"{airflow.url}/dags/sagemaker_deploy/runs/{run_id}")
    page.get_by_text("summarize_run").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "valid-conf-run-success.png"), full_page=True)
