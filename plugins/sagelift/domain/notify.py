"""Who is told when a sagemaker_deploy run fails (or succeeds): settings and message, without I/O.

Settings live in the Airflow Variable ``sagelift_notifications`` (JSON), platform-wide with per-model
overrides; a model's entry replaces the default's keys it names::

    {
      "default": {"sns_topic_arn": "arn:aws:sns:us-east-1:222222222222:sagelift-alerts",
                  "aws_conn_id": "aws_default",
                  "slack_webhook_conn_id": null,
                  "on_success": false},
      "models": {"churn-predictor": {"slack_webhook_conn_id": "slack_churn_team", "on_success": true}}
    }

No Variable, or no target, means no notification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import Problems

VARIABLE_KEY = "sagelift_notifications"
SNS_TOPIC_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
TARGET_KEYS = {"sns_topic_arn", "aws_conn_id", "slack_webhook_conn_id", "on_success"}


@dataclass(frozen=True)
class NotificationTarget:
    sns_topic_arn: str | None = None
    aws_conn_id: str | None = "aws_default"
    slack_webhook_conn_id: str | None = None
    on_success: bool = False

    @property
    def empty(self) -> bool:
        return not (self.sns_topic_arn or self.slack_webhook_conn_id)

    def wants(self, event: str) -> bool:
        return not self.empty and (event == "failure" or self.on_success)


def _target(raw: Any, where: str, base: dict[str, Any], problems: Problems) -> dict[str, Any]:
    if raw is None:
        return dict(base)
    if not isinstance(raw, Mapping):
        problems.add(where, "must be an object")
        return dict(base)
    for key in sorted(set(raw) - TARGET_KEYS):
        problems.add(f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(TARGET_KEYS))}")
    merged = {**base, **{k: v for k, v in raw.items() if k in TARGET_KEYS}}
    topic = merged.get("sns_topic_arn")
    if topic is not None and (not isinstance(topic, str) or not SNS_TOPIC_RE.match(topic)):
        problems.add(f"{where}.sns_topic_arn", f"must be an SNS topic ARN, got {topic!r}")
    if not isinstance(merged.get("on_success", False), bool):
        problems.add(f"{where}.on_success", "must be true or false")
    return merged


def resolve_notification_target(raw: Mapping[str, Any] | None, model_name: str | None) -> NotificationTarget:
    """The target for ``model_name``: the default merged with the model's override."""
    if not raw:
        return NotificationTarget()
    problems = Problems()
    base = _target(raw.get("default"), f"{VARIABLE_KEY}.default", {}, problems)
    models = raw.get("models") or {}
    if model_name and isinstance(models, Mapping) and model_name in models:
        base = _target(models[model_name], f"{VARIABLE_KEY}.models.{model_name}", base, problems)
    problems.raise_if_any()
    return NotificationTarget(**base)


def build_notification_message(
    event: str,
    *,
    dag_id: str,
    run_id: str,
    model_name: str | None,
    task_id: str | None,
    reason: str | None,
    url: str | None,
    invoke_url: str | None = None,
) -> tuple[str, str]:
    """(subject, body). SNS subjects are at most 100 characters."""
    model = model_name or "unknown model"
    if event == "failure":
        subject = f"sagelift: {dag_id} failed for {model}"
        lines = [f"{dag_id} run {run_id} for model {model} failed at task {task_id}."]
        if reason:
            lines.append(f"Reason: {reason}")
    else:
        subject = f"sagelift: {dag_id} succeeded for {model}"
        lines = [f"{dag_id} run {run_id} for model {model} succeeded."]
        if invoke_url:
            lines.append(f"Invoke URL: {invoke_url}")
    if url:
        lines.append(f"Logs: {url}")
    return subject[:100], "\n".join(lines)
