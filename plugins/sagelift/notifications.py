"""Failure, pending-approval (and optional success) notifications for sagemaker_deploy, through the
providers' notifiers.

``SageliftNotifier`` is wired as the DAG's task ``on_failure_callback``, the final task's
``on_success_callback`` and approve_deploy's ``notifiers`` (called when the approval request is written,
so the account's deployers learn that a run waits for them and where to answer). When called it reads the Variable ``sagelift_notifications`` (see
sagelift.domain.notify), picks the target for the run's model and hands the message to the Amazon
provider's SnsNotifier and, when the Slack provider is installed, its SlackWebhookNotifier. Nothing is
read at DAG import; a notification that cannot be sent is logged and never fails the task.

What the message says comes only from Airflow (DAG, run, task, log URL) and from the plan validate
pushed (the model name): never from the raw conf, which may hold anything a user typed. When a service
refuses the full alert, a minimal one (the outcome only) is sent instead. The providers' notifiers are
called through ``notify()``, which does not render templates, so nothing in a message is Jinja.
The notifiers are imported when a notification is sent, not at DAG import: every parse and every task
of the DAG would otherwise pay for the SNS notifier's imports (~0.3 s with bytecode).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Variable
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.notes import failure_note
from sagelift.domain.notify import (
    EVENTS,
    VARIABLE_KEY,
    Alert,
    build_alert,
    render_minimal_slack,
    render_minimal_sns,
    render_slack,
    render_sns,
    resolve_notification_target,
)
from sagelift.hooks.airflow_api import AirflowApiHook
from sagelift.operators.apigateway import ApiGatewayExposeOperator
from sagelift.operators.validate import ValidateRunOperator


class SageliftNotifier(BaseNotifier):
    def __init__(self, event: str = "failure") -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
        self.event = event

    def notify(self, context: Any) -> None:
        if self.event != "approval":
            self._notify(context)
            return
        # Called inside approve_deploy's execute: BaseNotifier re-raises, and a notice must never fail it.
        try:
            self._notify(context)
        except Exception as err:
            self.log.warning("Could not send the approval notice: %s", err)

    def _notify(self, context: Any) -> None:
        dag_run, ti = context.get("dag_run"), context.get("ti")
        model_name = _validated_model_name(ti, _task_of(context, ValidateRunOperator))
        if self.event == "failure" and dag_run is not None:
            # The run's page says why it failed (a task cannot set the note through the Task SDK).
            note = failure_note(getattr(ti, "task_id", None), context.get("exception"), model_name)
            AirflowApiHook().set_run_note(str(dag_run.dag_id), str(dag_run.run_id), note)
        try:
            target = resolve_notification_target(
                Variable.get(VARIABLE_KEY, default=None, deserialize_json=True), model_name
            )
        except SageliftValidationError as err:
            self.log.warning("Not notifying: %s", err)
            return
        if not target.wants(self.event):
            return
        exception = context.get("exception")
        reason = str(exception) if exception else None
        if self.event == "approval":
            reason = _approval_reason(context.get("task"))
        invoke_url = None
        expose = _task_of(context, ApiGatewayExposeOperator)
        if self.event == "success" and ti is not None and expose is not None:
            facts = ti.xcom_pull(task_ids=expose)
            invoke_url = facts.get("invoke_url") if isinstance(facts, Mapping) else None
        alert = build_alert(
            self.event,
            dag_id=str(getattr(dag_run, "dag_id", "?")),
            run_id=str(getattr(dag_run, "run_id", "?")),
            model_name=model_name,
            task_id=getattr(ti, "task_id", None),
            reason=reason,
            log_url=getattr(ti, "log_url", None),
            invoke_url=invoke_url if isinstance(invoke_url, str) else None,
        )
        if target.sns_topic_arn:
            self._notify_sns(target.aws_conn_id, target.sns_topic_arn, alert, context)
        if target.slack_webhook_conn_id:
            self._notify_slack(target.slack_webhook_conn_id, alert, context)

    def _notify_sns(self, aws_conn_id: str | None, topic_arn: str, alert: Alert, context: Any) -> None:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        for kind, (subject, message) in (("full", render_sns(alert)), ("minimal", render_minimal_sns(alert))):
            try:
                SnsNotifier(
                    aws_conn_id=aws_conn_id,
                    target_arn=topic_arn,
                    message=message,
                    subject=subject,
                ).notify(context)
            except (BotoCoreError, ClientError) as err:
                self.log.warning("SNS refused the %s alert to %s: %s", kind, topic_arn, err)
            else:
                return

    def _notify_slack(self, conn_id: str, alert: Alert, context: Any) -> None:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
            from slack_sdk.errors import SlackClientError
        except ImportError:
            self.log.warning(
                "slack_webhook_conn_id is set but apache-airflow-providers-slack is not installed."
            )
            return
        for kind, text in (("full", render_slack(alert)), ("minimal", render_minimal_slack(alert))):
            try:
                SlackWebhookNotifier(
                    slack_webhook_conn_id=conn_id, text=text, unfurl_links=False, unfurl_media=False
                ).notify(context)
            except (AirflowException, SlackClientError, OSError) as err:
                self.log.warning("Slack refused the %s alert (connection %s): %s", kind, conn_id, err)
            else:
                return


def _approval_reason(task: Any) -> str | None:
    """What waits and for how long, from approve_deploy's request: its subject is built from the
    validated plan and the registered version (sagelift.domain.approval.request_subject), never the conf."""
    subject = getattr(task, "subject", None)
    if not isinstance(subject, str):
        return None
    timeout = getattr(task, "response_timeout", None)
    within = f" within {int(timeout.total_seconds())} s" if timeout is not None else ""
    return f"{subject} One of the account's deployers approves or rejects it{within}; unanswered, it is rejected."


def _task_of(context: Any, operator_class: Any) -> str | None:
    """The task of the run's DAG that is an ``operator_class`` (the DAG wires them; no id is assumed)."""
    ti = context.get("ti")
    dag = context.get("dag") or getattr(getattr(ti, "task", None), "dag", None)
    tasks: list[Any] = list(getattr(dag, "tasks", ()))
    return next((str(t.task_id) for t in tasks if isinstance(t, operator_class)), None)


def _validated_model_name(ti: Any, validate_task_id: str | None) -> str | None:
    """The model name of the plan validate returned; None when the run has none (validate failed)."""
    if ti is None or validate_task_id is None:
        return None
    plan = ti.xcom_pull(task_ids=validate_task_id)
    params = plan.get("params") if isinstance(plan, Mapping) else None
    name = params.get("model_name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None
