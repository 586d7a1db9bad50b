"""Registered retrain models: validated like any conf, each one a small DAG that starts sagemaker_deploy."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sagelift.config import load_retrain_models
from sagelift.dags.retrain import build_retrain_dag
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import derive_run_key
from sagelift.domain.retrain import parse_retrain_model
from tests.conftest import ROOT
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf
from tests.support.task_context import FakeTaskInstance

REGISTRY = ROOT / "include/examples/retrain"
CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
# What an attacker with write access to a registration (or a careless copy-paste) could store: each is
# rendered to a secret, the platform configuration, 1337 or XYZ by anything that renders the conf.
PAYLOADS = {
    "RUNNER_SECRET": f"{{{{ conn.{CONN_ID}.password }}}}",
    "PLATFORM": "{{ var.value.sagelift_platform }}",
    "ARITHMETIC": "{{ 7*191 }}",
    "STATEMENT": "{% for c in 'xyz' %}{{ c | upper }}{% endfor %}",
}


def _registration(name: str) -> dict:
    return json.loads((REGISTRY / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "sagemaker_retrain.py"))


def test_every_registered_model_becomes_a_retrain_dag_starting_sagemaker_deploy_with_its_conf(dagbag):
    assert dagbag.import_errors == {}
    files = sorted(REGISTRY.glob("*.json"))
    assert len(files) >= 2
    for path in files:
        dag = dagbag.get_dag(f"sagemaker_retrain_{path.stem.replace('-', '_')}")
        (task,) = dag.tasks
        assert task.trigger_dag_id == "sagemaker_deploy"
        assert task.conf == json.loads(path.read_text())["conf"]
        assert dag.catchup is False


def test_a_scheduled_model_runs_on_its_cron_in_utc(dagbag):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    # What the scheduler uses: the core timetable the DAG's serialized form turns into.
    timetable = coerce_to_core_timetable(dagbag.get_dag("sagemaker_retrain_fraud_scorer").timetable)
    assert isinstance(timetable, CronTriggerTimetable)
    start = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=start, latest=None, catchup=True),
    )
    second = timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval,
        restriction=TimeRestriction(earliest=start, latest=None, catchup=True),
    )
    assert first.run_after == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert second.run_after == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)


def test_a_data_triggered_model_is_scheduled_on_its_prefix_asset(dagbag):
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    demand = dagbag.get_dag("sagemaker_retrain_demand_forecast")
    assert isinstance(demand.timetable, AssetTriggeredTimetable)
    # The Amazon provider normalizes S3 asset URIs without the trailing "/".
    prefix = _registration("demand-forecast")["training_data_prefix"]
    assert demand.timetable.asset_condition.uri == prefix.rstrip("/")
    # Both a cron and a prefix: whichever comes first.
    churn = dagbag.get_dag("sagemaker_retrain_churn_predictor")
    assert churn.timetable.asset_condition.uri == _registration("churn-predictor")[
        "training_data_prefix"
    ].rstrip("/")
    assert churn.timetable.timetable.expression == "0 3 * * 1"


def test_a_registration_is_checked_against_the_parameter_schema():
    raw = _registration("fraud-scorer")
    raw["conf"] = {**raw["conf"], "training_instance_count": 0, "modle_name": "x"}
    raw["schedule"] = "every night"
    with pytest.raises(SageliftValidationError) as err:
        parse_retrain_model("fraud-scorer", raw)
    assert set(err.value.fields) >= {
        "fraud-scorer: schedule",
        "fraud-scorer: conf.training_instance_count",
        "fraud-scorer: conf.modle_name",
    }


def test_a_registration_needs_a_trigger_and_its_file_name_is_the_model_name():
    raw = _registration("fraud-scorer")
    del raw["schedule"]
    with pytest.raises(SageliftValidationError) as err:
        parse_retrain_model("fraud", raw)
    assert err.value.fields == ["fraud: schedule", "fraud: conf.model_name"]


def _register(folder: Path, conf: dict[str, Any]) -> dict[str, Any]:
    registration = {
        "owner": "priya.shah",
        "schedule": "0 3 * * 1",
        "description": "{{ 7*191 }} in the docs",
        "conf": conf,
    }
    (folder / f"{conf['model_name']}.json").write_text(json.dumps(registration))
    return registration


def _payload_conf() -> dict[str, Any]:
    return demo_conf(
        environment=dict(PAYLOADS),
        training_hyperparameters={"note": f"{{{{ conn.{CONN_ID}.login }}}}", "eta": "0.2"},
    )


def test_the_stored_conf_reaches_the_triggered_run_verbatim_never_rendered(tmp_path, monkeypatch):
    """The task runner's own steps: render the templated fields (with working conn and var accessors,
    so a rendered payload would really resolve), record them as rendered fields, execute."""
    from airflow.sdk.exceptions import DagRunTriggerException
    from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    secret = "runner-secret-key-do-not-leak"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "aws", "login": "AKIARUNNER", "password": secret}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", '{"platform": "document"}')
    registration = _register(tmp_path, _payload_conf())
    (model,) = load_retrain_models(tmp_path)
    dag = build_retrain_dag(model)
    (task,) = dag.tasks
    run_id = "scheduled__2026-03-02T03:00:00+00:00"
    ti = FakeTaskInstance({}, dag_id=dag.dag_id, task_id=task.task_id, run_id=run_id)
    context = {
        "dag": dag,
        "run_id": run_id,
        "ti": ti,
        "task_instance": ti,
        "conn": ConnectionAccessor(),
        "var": {
            "value": VariableAccessor(deserialize_json=False),
            "json": VariableAccessor(deserialize_json=True),
        },
    }

    task.render_template_fields(context)
    rendered = json.dumps(_serialize_rendered_fields(task))
    with pytest.raises(DagRunTriggerException) as triggered:
        task.execute(context)

    assert triggered.value.conf == registration["conf"]
    assert triggered.value.conf["environment"] == PAYLOADS
    assert triggered.value.dag_run_id == f"retrain__{dag.dag_id}__{run_id}"
    for leaked in (secret, "AKIARUNNER", '"platform": "document"', "1337", "XYZ"):
        assert leaked not in json.dumps(triggered.value.conf)
        assert leaked not in rendered
    assert dag.doc_md is not None and "{{ 7*191 }} in the docs" in dag.doc_md


@pytest.mark.slow
def test_a_scheduled_retrain_deploys_a_model_whose_environment_holds_the_payloads_literally(
    tmp_path, scenario, run_deploy, local_aws
):
    """The retrain DAG runs for real (dag.test): its task asks Airflow to create the sagemaker_deploy run,
    whose conf is read back from the metadata database. That conf is then deployed against the local AWS.
    (dag.test cannot run the triggered run itself, so a watcher marks it finished for the wait to end.)"""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    secret = json.loads(scenario.airflow_env()[f"AIRFLOW_CONN_{CONN_ID.upper()}"])["password"]
    registration = _register(tmp_path, _payload_conf())
    (model,) = load_retrain_models(tmp_path)
    dag = build_retrain_dag(model)
    stored: dict[str, Any] = {}
    done = threading.Event()

    def stand_in_for_the_scheduler() -> None:
        prefix = f"retrain__{dag.dag_id}__"
        while not done.wait(0.2):
            with create_session() as session:
                for run in session.query(DagRun).filter(DagRun.dag_id == "sagemaker_deploy"):
                    if run.run_id.startswith(prefix):
                        stored[run.run_id] = run.conf
                        run.state = "success"
                        return

    watcher = threading.Thread(target=stand_in_for_the_scheduler, daemon=True)
    watcher.start()
    try:
        retrain_run = dag.test()
    finally:
        done.set()
        watcher.join(10)

    assert str(retrain_run.state) == "success"
    ((deploy_run_id, conf),) = stored.items()
    assert deploy_run_id.startswith(f"retrain__{dag.dag_id}__")
    assert conf == registration["conf"]

    deployed = run_deploy(conf)

    assert deployed.state == "success", deployed.states
    name = f"churn-predictor-{derive_run_key('sagemaker_deploy', deployed.dag_run.run_id)}"
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    model_description = sm.describe_model(ModelName=name)
    assert model_description["PrimaryContainer"]["Environment"] == PAYLOADS
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["HyperParameters"]["note"] == f"{{{{ conn.{CONN_ID}.login }}}}"
    for leaked in (secret, "1337", "XYZ"):
        assert leaked not in json.dumps(model_description, default=str)
        assert leaked not in json.dumps(conf)


@pytest.mark.parametrize(
    ("owner", "rule"),
    [
        (None, "required: the Airflow user the retrains act for"),
        ("", "must be an Airflow user name"),
        (7, "must be an Airflow user name"),
        (" priya", "must be an Airflow user name"),
        ("priya\n", "must be an Airflow user name"),
    ],
)
def test_a_registration_names_the_user_its_retrains_act_for(owner, rule):
    raw = _registration("fraud-scorer")
    raw["owner"] = owner
    if owner is None:
        del raw["owner"]
    with pytest.raises(SageliftValidationError) as err:
        parse_retrain_model("fraud-scorer", raw)
    assert err.value.fields == ["fraud-scorer: owner"]
    assert rule in str(err.value)


def test_every_shipped_registration_has_an_owner_and_its_dag_says_who(dagbag):
    for path in sorted(REGISTRY.glob("*.json")):
        owner = json.loads(path.read_text())["owner"]
        model = parse_retrain_model(path.stem, json.loads(path.read_text()))
        assert model.owner == owner
        dag = dagbag.get_dag(model.dag_id)
        assert f"act for the registration's owner, `{owner}`" in dag.doc_md


def test_the_deploy_run_of_a_retrain_is_recognised_from_its_registration_file(tmp_path):
    from sagelift.config import registered_retrain

    registration = _register(tmp_path, demo_conf())
    (model,) = load_retrain_models(tmp_path)
    run_id = f"retrain__{model.dag_id}__scheduled__2026-03-02T03:00:00+00:00"
    conf = registration["conf"]

    found = registered_retrain("operator_triggered", run_id, conf, tmp_path)
    assert found is not None and found.owner == "priya.shah"
    # A user's run (manual), a changed conf or another DAG's run id is no retrain of this registration.
    assert registered_retrain("manual", run_id, conf, tmp_path) is None
    assert (
        registered_retrain("operator_triggered", run_id, {**conf, "environment": {"X": "1"}}, tmp_path)
        is None
    )
    assert (
        registered_retrain("operator_triggered", "retrain__sagemaker_retrain_other__x", conf, tmp_path)
        is None
    )
    (tmp_path / "elsewhere.json").write_text(json.dumps({"owner": "mallory"}))
    assert (
        registered_retrain("operator_triggered", run_id, {**conf, "model_name": "../elsewhere"}, tmp_path)
        is None
    )


def _retrain_dag_ids() -> set[str]:
    from airflow.dag_processing.dagbag import DagBag

    # the package's DAG file itself, run afresh by each DagBag: the setting is read again
    bag = DagBag(dag_folder=str(ROOT / "plugins/sagelift/dags/sagemaker_retrain.py"))
    assert bag.import_errors == {}
    return set(bag.dag_ids)


def test_without_a_retrain_registry_no_example_is_active(airflow_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", raising=False)
    assert _retrain_dag_ids() == set()


def test_the_registry_is_the_folder_the_setting_names(airflow_db, monkeypatch, tmp_path):
    _register(tmp_path, demo_conf())
    monkeypatch.setenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", str(tmp_path))
    (model,) = load_retrain_models(tmp_path)
    assert _retrain_dag_ids() == {model.dag_id}


def test_a_registry_folder_that_is_not_there_is_a_warning(airflow_db, monkeypatch, tmp_path, caplog):
    missing = tmp_path / "retrain-typo"
    monkeypatch.setenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", str(missing))
    with caplog.at_level("WARNING", logger="sagelift.config"):
        assert _retrain_dag_ids() == set()
    (warning,) = [r for r in caplog.records if r.name == "sagelift.config"]
    assert warning.levelname == "WARNING" and str(missing) in warning.getMessage()


def test_a_deploy_run_finds_its_registration_in_the_folder_the_setting_names(monkeypatch, tmp_path):
    from sagelift.config import registered_retrain

    conf = _register(tmp_path, demo_conf())["conf"]
    (model,) = load_retrain_models(tmp_path)
    run_id = f"retrain__{model.dag_id}__scheduled__2026-03-02T03:00:00+00:00"
    monkeypatch.setenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", str(tmp_path))
    assert registered_retrain("operator_triggered", run_id, conf) == model
    monkeypatch.delenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY")
    assert registered_retrain("operator_triggered", run_id, conf) is None
