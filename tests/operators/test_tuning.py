"""tune_model and train_model on Airflow with tuning (issue 17 item 1): which of the two runs, and
tune_model waiting in the worker (platform deferrable false) with its progress in the task log and the
best job in its XCom. The deferred path runs in scenario 21 (tests/scenarios)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sagelift.operators.sagemaker import SageMakerTrainModelOperator
from sagelift.operators.tuning import SageMakerTuneModelOperator
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.task_context import step_plan, step_session, use_scientist_keys

PLATFORM = {
    "region": REGION,
    "sagemaker": {"deferrable": False, "check_interval_seconds": 1},
    "accounts": {SCIENTIST_ACCOUNT: {}},
}
CONF = {
    "training": {"metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]},
    "tuning": {
        "objective_metric": "validation:auc",
        "parameter_ranges": {"subsample": {"type": "continuous", "min": 0.5, "max": 1}},
        "max_jobs": 3,
        "max_parallel_jobs": 1,
    },
}


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any, **_: Any) -> None:
        self.lines.append(message % args if args else message)

    warning = error = info


def test_with_tuning_train_model_skips_and_tune_model_waits_in_the_worker(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    plan, session = step_plan(CONF, PLATFORM, run_id="tune-op-1"), step_session(conn_id)
    trainer = SageMakerTrainModelOperator(task_id="train_model", plan=plan, session=session)
    with pytest.raises(AirflowSkipException, match="the conf sets tuning, so tune_model runs"):
        trainer.execute({})
    tuner = SageMakerTuneModelOperator(task_id="tune_model", plan=plan, session=session)
    log = _Log()
    monkeypatch.setattr(type(tuner), "log", property(lambda self: log))
    with (
        SageMakerLifecycle(time_scale=20)
        .tuning(seconds=60, objective_values=(0.8, 0.95, 0.9))
        .installed(local_aws)
    ):
        result = tuner.execute({})
    json.dumps(result, default=str)  # the XCom serializes
    best = result["Training"]
    assert best["TrainingJobName"] == result["Tuning"]["BestTrainingJob"]["TrainingJobName"]
    assert best["FinalMetricDataList"][0]["Value"] == 0.95
    assert result["facts"]["best"]["objective_value"] == 0.95
    progress = [line for line in log.lines if "training jobs completed" in line]
    assert len(progress) >= 2 and len(set(progress)) == len(progress), log.lines
    assert any(line.startswith(f"Best training job {best['TrainingJobName']}") for line in log.lines)


def test_without_tuning_tune_model_skips_saying_why(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    tuner = SageMakerTuneModelOperator(
        task_id="tune_model", plan=step_plan({}, PLATFORM, run_id="tune-op-2"), session=step_session(conn_id)
    )
    with pytest.raises(AirflowSkipException, match="the conf sets no tuning, so train_model runs"):
        tuner.execute({})


def test_a_failed_tuning_job_fails_the_task_for_good(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    tuner = SageMakerTuneModelOperator(
        task_id="tune_model",
        plan=step_plan(CONF, PLATFORM, run_id="tune-op-3"),
        session=step_session(conn_id),
    )
    life = SageMakerLifecycle(time_scale=20).tuning(
        seconds=20, outcome="Failed", failure_reason="Out of capacity"
    )
    with (
        life.installed(local_aws),
        pytest.raises(AirflowFailException, match="ended Failed: Out of capacity"),
    ):
        tuner.execute({})
