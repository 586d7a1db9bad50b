"""Registered retrain models: validated like any conf, each one a small DAG that starts sagemaker_deploy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.retrain import parse_retrain_model
from tests.conftest import ROOT

REGISTRY = ROOT / "include/retrain"


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
