"""Failure and success notifications: what reaches the SNS topic configured for a model or platform-wide."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.notify import resolve_notification_target
from sagelift.notifications import SageliftNotifier
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT

CONN = f"sagelift_aws_{SCIENTIST_ACCOUNT}"


def _topic_with_queue(aws, name: str) -> tuple[str, str]:
    sns, sqs = aws.client("sns", SCIENTIST_ACCOUNT), aws.client("sqs", SCIENTIST_ACCOUNT)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    return topic, queue


def _received(aws, queue: str) -> list[str]:
    messages = aws.client("sqs", SCIENTIST_ACCOUNT).receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [m["Body"] for m in messages.get("Messages", [])]


def _context(model_name: str, task_id: str = "train_model", error: str | None = "training job failed"):
    dag_run = SimpleNamespace(dag_id="sagemaker_deploy", run_id="manual__1", conf={"model_name": model_name})
    ti = SimpleNamespace(task_id=task_id, log_url="http://airflow/log", xcom_pull=lambda task_ids: {})
    return {"dag_run": dag_run, "ti": ti, "exception": RuntimeError(error) if error else None}


@pytest.mark.slow
def test_a_failure_reaches_the_platform_topic_and_a_model_override_its_own(scenario, local_aws, monkeypatch):
    platform_topic, platform_queue = _topic_with_queue(local_aws, "sagelift-alerts")
    churn_topic, churn_queue = _topic_with_queue(local_aws, "churn-team")
    settings = {
        "default": {"sns_topic_arn": platform_topic, "aws_conn_id": CONN},
        "models": {"churn-predictor": {"sns_topic_arn": churn_topic}},
    }
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_NOTIFICATIONS", json.dumps(settings))

    SageliftNotifier("failure").notify(_context("fraud-scorer"))
    SageliftNotifier("failure").notify(_context("churn-predictor", task_id="deploy_endpoint"))
    SageliftNotifier("success").notify(_context("fraud-scorer", error=None))  # on_success is off

    (platform_message,) = _received(local_aws, platform_queue)
    assert "fraud-scorer failed at task train_model" in platform_message
    assert "training job failed" in platform_message
    (churn_message,) = _received(local_aws, churn_queue)
    assert "churn-predictor failed at task deploy_endpoint" in churn_message


def test_without_settings_nothing_is_sent_and_bad_settings_name_the_field():
    assert resolve_notification_target(None, "m").wants("failure") is False
    with pytest.raises(SageliftValidationError) as err:
        resolve_notification_target({"default": {"sns_topic_arn": f"arn:aws:sqs:{REGION}:1:x"}}, "m")
    assert err.value.fields == ["sagelift_notifications.default.sns_topic_arn"]
