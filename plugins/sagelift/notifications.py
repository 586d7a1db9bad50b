"""Failure (and optional success) notifications for sagemaker_deploy, through the providers' notifiers.

``SageliftNotifier`` is wired as the DAG's task ``on_failure_callback`` and the final task's
``on_success_callback``. When called it reads the Variable ``sagelift_notifications`` (see
sagelift.domain.notify), picks the target for the run's model and hands the message to the Amazon
provider's SnsNotifier and, when the Slack provider is installed, its SlackWebhookNotifier. Nothing is
read at DAG import; a notification that cannot be sent is logged and never fails the task.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.sdk import Variable
from airflow.sdk.bases.notifier import BaseNotifier
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.notify import VARIABLE_KEY, build_notification_message, resolve_notification_target


class SageliftNotifier(BaseNotifier):
    def __init__(self, event: str = "failure") -> None:
        super().__init__()
        if event not in ("failure", "success"):
            raise ValueError(f"event must be 'failure' or 'success', got {event!r}")
        self.event = event

    def notify(self, context: Any) -> None:
        dag_run, ti = context.get("dag_run"), context.get("ti")
        conf = dict(getattr(dag_run, "conf", None) or {})
        model_name = conf.get("model_name") if isinstance(conf.get("model_name"), str) else None
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
        invoke_url = None
        if self.event == "success" and ti is not None:
            invoke_url = (ti.xcom_pull(task_ids="expose_api") or {}).get("invoke_url")
        subject, message = build_notification_message(
            self.event,
            dag_id=getattr(dag_run, "dag_id", "?"),
            run_id=getattr(dag_run, "run_id", "?"),
            model_name=model_name,
            task_id=getattr(ti, "task_id", None),
            reason=str(exception) if exception else None,
            url=getattr(ti, "log_url", None),
            invoke_url=invoke_url,
        )
        if target.sns_topic_arn:
            try:
                SnsNotifier(
                    aws_conn_id=target.aws_conn_id,
                    target_arn=target.sns_topic_arn,
                    message=message,
                    subject=subject,
                ).notify(context)
            except (BotoCoreError, ClientError) as err:
                self.log.warning("Could not publish to %s: %s", target.sns_topic_arn, err)
        if target.slack_webhook_conn_id:
            self._notify_slack(target.slack_webhook_conn_id, f"*{subject}*\n{message}", context)

    def _notify_slack(self, conn_id: str, text: str, context: Any) -> None:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
        except ImportError:
            self.log.warning(
                "slack_webhook_conn_id is set but apache-airflow-providers-slack is not installed."
            )
            return
        SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=text).notify(context)
