"""Failure and success notifications: what reaches the SNS topic configured for a model or platform-wide,
and what a Slack channel would be sent."""

from __future__ import annotations

import io
import json
import urllib.parse
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.notify import (
    SLACK_TEXT_MAX_CHARS,
    build_alert,
    render_minimal_slack,
    render_slack,
    resolve_notification_target,
)
from sagelift.notifications import SageliftNotifier
from sagelift.operators.apigateway import ApiGatewayExposeOperator
from sagelift.operators.validate import ValidateRunOperator
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT

CONN = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{SCIENTIST_ACCOUNT}:sagelift-alerts"
LOG_URL = "http://airflow.example.com/dags/sagemaker_deploy/runs/manual__1/tasks/train_model"
# What the reproduction put into model_name: Slack mentions and a phishing link.
CRAFTED = "<!channel> <@U024BE7LH> urgent: re-enter your AWS keys at <https://evil.example/login|the console>"


def _topic_with_queue(aws, name: str) -> tuple[str, str]:
    sns, sqs = aws.client("sns", SCIENTIST_ACCOUNT), aws.client("sqs", SCIENTIST_ACCOUNT)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # Not raw: the SNS envelope carries the subject too.
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def _received(aws, queue: str) -> list[dict[str, str]]:
    messages = aws.client("sqs", SCIENTIST_ACCOUNT).receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    envelopes = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    return [{"subject": e.get("Subject", ""), "message": e["Message"]} for e in envelopes]


def _context(
    validated_model: str | None,
    *,
    conf_model: Any = None,
    task_id: str = "train_model",
    error: str | None = "training job failed",
    task: Any = None,
) -> dict[str, Any]:
    """What Airflow hands a task callback. ``validated_model`` is what validate pushed (None: it failed);
    ``conf_model`` is the raw conf's model_name, which a notification must never repeat."""
    conf = {"model_name": validated_model if conf_model is None else conf_model}
    dag_run = SimpleNamespace(dag_id="sagemaker_deploy", run_id="manual__1", conf=conf)
    pushed = {"validate": {"params": {"model_name": validated_model}}} if validated_model else {}
    ti = SimpleNamespace(
        task_id=task_id, log_url=LOG_URL, xcom_pull=lambda task_ids, **_: pushed.get(task_ids)
    )
    # The notifier finds validate's and expose_api's tasks in the run's DAG by their operator.
    with DAG(dag_id="sagemaker_deploy", schedule=None) as dag:
        ValidateRunOperator(task_id="validate")
        ApiGatewayExposeOperator(task_id="expose_api")
    exception = RuntimeError(error) if error else None
    return {"dag_run": dag_run, "ti": ti, "dag": dag, "exception": exception, "task": task}


@pytest.fixture
def alerts(local_aws, monkeypatch):
    """The platform topic, subscribed by a queue; returns a function reading what arrived."""
    topic, queue = _topic_with_queue(local_aws, "sagelift-alerts")
    monkeypatch.setenv(
        "AIRFLOW_VAR_SAGELIFT_NOTIFICATIONS",
        json.dumps({"default": {"sns_topic_arn": topic, "aws_conn_id": CONN}}),
    )
    return lambda: _received(local_aws, queue)


@pytest.mark.slow
def test_a_failure_reaches_the_platform_topic_and_a_model_override_its_own(scenario, local_aws, monkeypatch):
    platform_topic, platform_queue = _topic_with_queue(local_aws, "sagelift-alerts")
    churn_topic, churn_queue = _topic_with_queue(local_aws, "churn-team")
    settings = {
        "default": {"sns_topic_arn": platform_topic, "aws_conn_id": CONN},
        "models": {"churn-predictor": {"sns_topic_arn": churn_topic}},
    }
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_NOTIFICATIONS", json.dumps(settings))

    SageliftNotifier("failure")(_context("fraud-scorer"))
    SageliftNotifier("failure")(_context("churn-predictor", task_id="deploy_endpoint"))
    SageliftNotifier("success")(_context("fraud-scorer", error=None))  # on_success is off
    # A raw conf naming churn-predictor cannot route a run that was never validated to that team.
    SageliftNotifier("failure")(_context(None, conf_model="churn-predictor", task_id="validate"))

    first, unvalidated = _received(local_aws, platform_queue)
    assert "fraud-scorer failed at task train_model" in first["message"]
    assert "training job failed" in first["message"]
    assert first["subject"] == "sagelift: sagemaker_deploy failed for fraud-scorer"
    assert "a run that was not validated failed at task validate" in unvalidated["message"]
    (churn,) = _received(local_aws, churn_queue)
    assert "churn-predictor failed at task deploy_endpoint" in churn["message"]


@pytest.mark.slow
def test_a_crafted_model_name_reaches_no_alert_and_validates_error_is_not_quoted(scenario, alerts):
    quoted = f"Invalid run configuration. model_name: letters, digits and '-', got {CRAFTED!r}"

    SageliftNotifier("failure")(_context(None, conf_model=CRAFTED, task_id="validate", error=quoted))

    (alert,) = alerts()
    assert alert["subject"] == "sagelift: sagemaker_deploy failed for a run that was not validated"
    assert alert["message"].startswith(
        "sagemaker_deploy run manual__1 for a run that was not validated failed at task validate.\n"
        "The run's configuration was not validated, so none of its input is repeated here"
    )
    for fragment in ("<!channel>", "<@U024BE7LH>", "evil.example", "re-enter your AWS keys"):
        assert fragment not in alert["message"]


@pytest.mark.slow
def test_a_300000_character_error_arrives_cut_and_jinja_in_it_stays_text(scenario, alerts):
    error = "{{ 7*191 }} https://evil.example/x " + "A" * 300_000

    SageliftNotifier("failure")(_context("churn-predictor", error=error))

    (alert,) = alerts()
    reason = alert["message"].splitlines()[1]
    assert reason.startswith("Reason: {{ 7*191 }} https[:]//evil.example/x AAAA")
    # 2,000 characters of the error, plus the two brackets that defang its "://"
    assert reason.endswith("A [...cut]") and len(reason) == len("Reason: ") + 2_000 + 2
    assert "1337" not in alert["message"]
    assert alert["message"].endswith(f"Logs: {LOG_URL}")


def _refuse_publishes_over(limit: int, refused: list[int]):
    """A local AWS request hook: SNS answers Publish with InvalidParameter when the message is longer
    than ``limit`` bytes, as it does past its own limit (here lowered, to stand for whatever makes SNS
    refuse a full alert: a stricter protocol, an attribute overhead, a policy)."""

    def hook(environ: dict[str, Any]) -> Any:
        if "/sns/" not in environ.get("HTTP_AUTHORIZATION", ""):
            return None
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode())
        message = form.get("Message", [""])[0]
        if form.get("Action") != ["Publish"] or len(message.encode()) <= limit:
            return None
        refused.append(len(message.encode()))

        def too_long(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            answer = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code>"
                b"<Message>Invalid parameter: Message too long</Message></Error>"
                b"<RequestId>refused</RequestId></ErrorResponse>"
            )
            start_response(
                "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(answer)))]
            )
            return [answer]

        return too_long

    return hook


@pytest.mark.slow
def test_when_sns_refuses_the_full_alert_a_minimal_one_still_arrives(scenario, local_aws, alerts):
    refused: list[int] = []
    local_aws.request_hook = _refuse_publishes_over(1_000, refused)
    try:
        SageliftNotifier("failure")(_context("churn-predictor", error="E" * 5_000))
    finally:
        local_aws.request_hook = None

    assert len(refused) == 1 and refused[0] > 2_000
    (alert,) = alerts()
    assert alert["subject"] == "sagelift: sagemaker_deploy failed for churn-predictor"
    assert alert["message"] == (
        "sagemaker_deploy run manual__1 for model churn-predictor failed at task train_model. "
        "(The full alert could not be sent; see the task log in Airflow.)"
    )


def test_sns_subjects_are_ascii_single_line_and_under_100_characters():
    from sagelift.domain.notify import render_sns

    alert = build_alert(
        "failure",
        dag_id="sagemaker_deploy",
        run_id="manual__ünïcode\nline",
        model_name="m" * 54,
        task_id="train_model",
        reason=None,
        log_url=None,
    )
    subject, message = render_sns(alert)

    assert subject == "sagelift: sagemaker_deploy failed for " + "m" * 54
    assert len(subject) < 100 and all(" " <= c <= "~" for c in subject)
    assert message.startswith("sagemaker_deploy run manual__ünïcode\nline for model")


# --- Slack (the provider is not installed here: the text the webhook would receive) ------------------


def _slack_alert(reason: str, run_id: str = "manual__1") -> Any:
    return build_alert(
        "failure",
        dag_id="sagemaker_deploy",
        run_id=run_id,
        model_name="churn-predictor",
        task_id="train_model",
        reason=reason,
        log_url=LOG_URL + "?a=1&b=<2>",
    )


def test_slack_text_escapes_mentions_links_and_markup_in_every_variable_part():
    text = render_slack(_slack_alert(f"{CRAFTED} ``` *bold* & `tick`", run_id="manual__<!here>`x`"))

    assert text == (
        "*sagelift*: `sagemaker_deploy` run `manual__&lt;!here&gt;'x'` for model `churn-predictor` failed "
        "at task `train_model`.\n"
        "```&lt;!channel&gt; &lt;@U024BE7LH&gt; urgent: re-enter your AWS keys at "
        "&lt;https://evil.example/login|the console&gt; ''' *bold* &amp; 'tick'```\n"
        f"<{LOG_URL}?a=1&amp;b=&lt;2&gt;|Task log>"
    )
    # The only unescaped '<' opens Airflow's own log link.
    assert text.count("<") == 1


def test_slack_text_fits_slacks_limit_even_when_escaping_multiplies_the_reason():
    text = render_slack(_slack_alert("<&>" * 700))  # 2,100 characters, cut to 2,000, escaped to ~8,700

    assert len(text) <= SLACK_TEXT_MAX_CHARS
    assert "&lt;&amp;&gt;" in text and text.count("```") == 2 and "[...cut]```" in text


def test_the_minimal_slack_alert_names_the_outcome_only():
    assert render_minimal_slack(_slack_alert("anything")) == (
        "*sagelift*: `sagemaker_deploy` run `manual__1` for model `churn-predictor` failed at task "
        "`train_model`. (The full alert could not be sent; see the task log in Airflow.)"
    )


def test_without_settings_nothing_is_sent_and_bad_settings_name_the_field():
    assert resolve_notification_target(None, "m").wants("failure") is False
    with pytest.raises(SageliftValidationError) as err:
        resolve_notification_target({"default": {"sns_topic_arn": f"arn:aws:sqs:{REGION}:1:x"}}, "m")
    assert err.value.fields == ["sagelift_notifications.default.sns_topic_arn"]


APPROVAL_TASK = SimpleNamespace(
    subject="Deploy churn-predictor version 3 into account 333333333333?",
    response_timeout=timedelta(hours=24),
)


@pytest.mark.slow
def test_a_run_waiting_for_approval_tells_the_deployers_where_to_answer(scenario, local_aws, monkeypatch):
    topic, queue = _topic_with_queue(local_aws, "sagelift-alerts")
    quiet, quiet_queue = _topic_with_queue(local_aws, "fraud-team")
    settings = {
        "default": {"sns_topic_arn": topic, "aws_conn_id": CONN},
        "models": {"fraud-scorer": {"sns_topic_arn": quiet, "on_approval": False}},
    }
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_NOTIFICATIONS", json.dumps(settings))
    context = _context("churn-predictor", task_id="approve_deploy", error=None, task=APPROVAL_TASK)

    SageliftNotifier("approval")(context)
    SageliftNotifier("approval")(
        _context("fraud-scorer", task_id="approve_deploy", error=None, task=APPROVAL_TASK)
    )

    (notice,) = _received(local_aws, queue)
    assert notice["subject"] == "sagelift: sagemaker_deploy awaits approval for churn-predictor"
    assert notice["message"] == (
        "sagemaker_deploy run manual__1 for model churn-predictor awaits approval at task approve_deploy.\n"
        "Deploy churn-predictor version 3 into account 333333333333? One of the account's deployers approves "
        "or rejects it within 86400 s; unanswered, it is rejected.\n"
        f"Approve or reject on the task's page (Required Actions): {LOG_URL}"
    )
    assert _received(local_aws, quiet_queue) == []  # on_approval is off for that model


def test_an_approval_notice_that_fails_never_fails_approve_deploy(alerts, monkeypatch, capfd):
    """The notice is sent inside approve_deploy's execute, where BaseNotifier re-raises: an unexpected
    error is logged instead (service refusals are already, for every event)."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the alert could not be built")

    monkeypatch.setattr("sagelift.notifications.build_alert", broken)
    context = _context("churn-predictor", task_id="approve_deploy", error=None, task=APPROVAL_TASK)

    SageliftNotifier("approval")(context)  # no exception

    out, err = capfd.readouterr()
    assert "Could not send the approval notice: the alert could not be built" in out + err
    with pytest.raises(RuntimeError):  # a failure callback still reports its own error to Airflow
        SageliftNotifier("failure")(_context("churn-predictor"))


def test_the_approval_notice_in_slack_is_inert_and_links_the_task():
    alert = build_alert(
        "approval",
        dag_id="sagemaker_deploy",
        run_id="manual__1",
        model_name="churn-predictor",
        task_id="approve_deploy",
        reason="Deploy churn-predictor version <!channel> into account 333333333333?",
        log_url=LOG_URL,
    )
    assert render_slack(alert) == (
        "*sagelift*: `sagemaker_deploy` run `manual__1` for model `churn-predictor` awaits approval at task "
        "`approve_deploy`.\n"
        "`Deploy churn-predictor version &lt;!channel&gt; into account 333333333333?`\n"
        f"<{LOG_URL}|Approve or reject on the task's page (Required Actions)>"
    )
    target = resolve_notification_target({"default": {"sns_topic_arn": TOPIC_ARN}}, "m")
    assert target.wants("approval") and not target.wants("success")
    with pytest.raises(SageliftValidationError) as err:
        resolve_notification_target({"default": {"sns_topic_arn": TOPIC_ARN, "on_approval": "yes"}}, "m")
    assert err.value.fields == ["sagelift_notifications.default.on_approval"]
