"""train_model on Airflow renews its run's model lock before it starts the training job (README "Runs of
one model take turns"): the lease starts again, and a run whose lapsed lock another run has taken stops
there, naming that run, instead of training for hours and stopping at deploy_endpoint.
tune_model and batch_transform call the same helper (operators.lock.renew_model_lock); the S3 protocol
is tested in tests/steps/test_lock.py."""

from __future__ import annotations

import time

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.lock import plan_lock, run_holder
from sagelift.domain.plan import Plan
from sagelift.operators.sagemaker import SageMakerTrainModelOperator
from sagelift.steps import lock as locks
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.task_context import step_plan, step_session, use_scientist_keys

BUCKET = f"sagelift-state-{SCIENTIST_ACCOUNT}"
KEY = f"locks/{SCIENTIST_ACCOUNT}/churn-predictor.json"


def _platform(lease_seconds: int | None = None) -> dict:
    return {
        "region": REGION,
        "sagemaker": {"deferrable": False, "check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "locks_s3_uri": "s3://sagelift-state-{account_id}/locks/",
        "locks": {"lease_seconds": lease_seconds},
    }


@pytest.fixture
def admin_s3(local_aws: LocalAws):
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    s3.create_bucket(Bucket=BUCKET)
    return s3


def _training_jobs(local_aws: LocalAws) -> list[str]:
    sagemaker = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]]


def test_train_model_renews_the_lock_it_holds_before_training(
    local_aws: LocalAws, admin_s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    plan = step_plan(None, _platform(), run_id="renew-1")
    assert locks.try_acquire(
        admin_s3, plan_lock(Plan.from_xcom(plan)), run_holder(Plan.from_xcom(plan))
    ).acquired
    taken = admin_s3.head_object(Bucket=BUCKET, Key=KEY)["LastModified"]
    time.sleep(1.1)  # S3's clock counts whole seconds

    SageMakerTrainModelOperator(task_id="train_model", plan=plan, session=step_session(conn_id)).execute({})

    assert admin_s3.head_object(Bucket=BUCKET, Key=KEY)["LastModified"] > taken
    assert _training_jobs(local_aws) == [Plan.from_xcom(plan).names.training_job]


def test_train_model_stops_before_training_when_another_run_took_the_lock(
    local_aws: LocalAws, admin_s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    slow = step_plan(None, _platform(lease_seconds=1), run_id="slow")
    later = Plan.from_xcom(step_plan(None, _platform(), run_id="later"))
    lock = plan_lock(later)
    assert locks.try_acquire(admin_s3, lock, run_holder(Plan.from_xcom(slow))).acquired
    time.sleep(2.2)  # slow's lease lapsed (queued, say, for hours): the later run takes the lock over
    assert locks.try_acquire(admin_s3, lock, run_holder(later)).took_over is not None

    trainer = SageMakerTrainModelOperator(task_id="train_model", plan=slow, session=step_session(conn_id))
    with pytest.raises(AirflowFailException, match="is now locked by run later of sagemaker_deploy"):
        trainer.execute({})

    assert _training_jobs(local_aws) == []
