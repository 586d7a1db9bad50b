"""Who is told when a sagemaker_deploy run fails, waits for approval (or succeeds): settings and message,
without I/O.

Settings live in the Airflow Variable ``sagelift_notifications`` (JSON), platform-wide with per-model
overrides; a model's entry replaces the default's keys it names::

    {
      "default": {"sns_topic_arn": "arn:aws:sns:us-east-1:222222222222:sagelift-alerts",
                  "aws_conn_id": "aws_default",
                  "slack_webhook_conn_id": null,
                  "on_success": false,
                  "on_approval": true},
      "models": {"churn-predictor": {"slack_webhook_conn_id": "slack_churn_team", "on_success": true}}
    }

No Variable, or no target, means no notification. A failure is always told to the target; a run that
waits for a deployer's approval at approve_deploy unless ``on_approval`` is false; a success only with
``on_success``.

The message is built here too, only from what Airflow and validate vouch for (``Alert``), and rendered
once per service: plain text within SNS's limits; Slack mrkdwn with every variable part escaped and
inert; and a minimal variant, sent when the full alert is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import Problems
from sagelift.domain.params import MODEL_NAME_MAX, SAGEMAKER_NAME_RE

VARIABLE_KEY = "sagelift_notifications"
# Bounds of an alert's parts, in characters: far above what a real id or URL needs, far below any limit.
MAX_ID_CHARS = 250
MAX_URL_CHARS = 2_000
MAX_REASON_CHARS = 2_000
CUT_MARK = " [...cut]"
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# SNS Publish: subject under 100 ASCII characters; message at most 256 KB (262,144 bytes) including
# the subject and attributes, so a few KB are left for those.
SNS_SUBJECT_MAX_CHARS = 99
SNS_MESSAGE_MAX_BYTES = 256 * 1024 - 4 * 1024
SNS_MINIMAL_MAX_BYTES = 1_024
# Slack cuts a message's text at 40,000 characters and advises at most 4,000.
SLACK_TEXT_MAX_CHARS = 4_000
UNVALIDATED = "a run that was not validated"
UNVALIDATED_NOTE = (
    "The run's configuration was not validated, so none of its input is repeated here; the task log of "
    "validate names each field and the rule it breaks."
)
MINIMAL_NOTE = "(The full alert could not be sent; see the task log in Airflow.)"
SNS_TOPIC_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
TARGET_KEYS = {"sns_topic_arn", "aws_conn_id", "slack_webhook_conn_id", "on_success", "on_approval"}
EVENTS = ("failure", "success", "approval")
FLAGS = ("on_success", "on_approval")


@dataclass(frozen=True)
class NotificationTarget:
    sns_topic_arn: str | None = None
    aws_conn_id: str | None = "aws_default"
    slack_webhook_conn_id: str | None = None
    on_success: bool = False
    on_approval: bool = True

    @property
    def empty(self) -> bool:
        return not (self.sns_topic_arn or self.slack_webhook_conn_id)

    def wants(self, event: str) -> bool:
        wanted = {"failure": True, "success": self.on_success, "approval": self.on_approval}
        return not self.empty and wanted.get(event, False)


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
    for flag in FLAGS:
        if not isinstance(merged.get(flag, False), bool):
            problems.add(f"{where}.{flag}", "must be true or false")
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


@dataclass(frozen=True)
class Alert:
    """What a notification may say: only facts Airflow or validate vouch for, already bounded.

    ``model_name`` is the validated plan's, or None when the run never got one (it failed validate, or
    validate never ran): the raw conf is never read, so a crafted name cannot reach anyone's inbox.
    ``reason`` (the failed task's error; for an approval, what waits and until when) is stripped of
    control characters and cut to
    ``MAX_REASON_CHARS``; it is left out when the run was never validated, because validate's errors
    quote the raw input.
    """

    event: str
    dag_id: str
    run_id: str
    model_name: str | None
    task_id: str | None
    reason: str | None
    log_url: str | None
    invoke_url: str | None = None


def build_alert(
    event: str,
    *,
    dag_id: str,
    run_id: str,
    model_name: str | None,
    task_id: str | None,
    reason: str | None,
    log_url: str | None,
    invoke_url: str | None = None,
) -> Alert:
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    validated = model_name if isinstance(model_name, str) and _is_model_name(model_name) else None
    return Alert(
        event=event,
        dag_id=_bounded(dag_id, MAX_ID_CHARS),
        run_id=_bounded(run_id, MAX_ID_CHARS),
        model_name=validated,
        task_id=_bounded(task_id, MAX_ID_CHARS) if task_id else None,
        reason=_bounded(reason, MAX_REASON_CHARS) if reason and validated else None,
        log_url=_bounded(log_url, MAX_URL_CHARS) if log_url else None,
        invoke_url=_bounded(invoke_url, MAX_URL_CHARS) if invoke_url else None,
    )


def _is_model_name(name: str) -> bool:
    return len(name) <= MODEL_NAME_MAX and SAGEMAKER_NAME_RE.fullmatch(name) is not None


def _bounded(text: str, limit: int) -> str:
    """Control characters (but line breaks and tabs) removed; cut to ``limit`` characters, marked."""
    clean = CONTROL_RE.sub("", str(text))
    return clean if len(clean) <= limit else clean[: limit - len(CUT_MARK)] + CUT_MARK


def _outcome(alert: Alert) -> str:
    return {"success": "succeeded", "approval": "awaits approval"}.get(alert.event, "failed")


def _log_label(alert: Alert) -> str:
    """What the task's link opens: its log, or (approval) the page where a deployer answers."""
    return "Approve or reject on the task's page (Required Actions)" if alert.event == "approval" else "Logs"


def _headline(alert: Alert) -> str:
    model = f"model {alert.model_name}" if alert.model_name else UNVALIDATED
    where = f" at task {alert.task_id}" if alert.event != "success" and alert.task_id else ""
    return f"{alert.dag_id} run {alert.run_id} for {model} {_outcome(alert)}{where}."


def _subject(alert: Alert) -> str:
    return f"sagelift: {alert.dag_id} {_outcome(alert)} for {alert.model_name or UNVALIDATED}"


# --- SNS: plain text to every protocol (email, SQS, Lambda, SMS) ----------------------------------------


def _sns_subject(text: str) -> str:
    """SNS refuses (InvalidParameter) a subject that is not ASCII printable, has a line break, or is 100
    characters or longer."""
    ascii_only = "".join(c if " " <= c <= "~" else "?" for c in text).strip()
    return (ascii_only or "sagelift")[:SNS_SUBJECT_MAX_CHARS]


def _defang(text: str) -> str:
    """A URL inside an error message stays readable but is not turned into a link by mail clients."""
    return text.replace("://", "[:]//")


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    mark = CUT_MARK.encode()
    return data[: limit - len(mark)].decode("utf-8", "ignore") + CUT_MARK


def render_sns(alert: Alert) -> tuple[str, str]:
    """(subject, message) for SNS Publish, within SNS's limits."""
    lines = [_defang(_headline(alert))]
    if alert.event == "failure":
        if alert.reason:
            lines.append(f"Reason: {_defang(alert.reason)}")
        elif alert.model_name is None:
            lines.append(UNVALIDATED_NOTE)
    elif alert.event == "approval" and alert.reason:
        lines.append(_defang(alert.reason))
    if alert.invoke_url:
        lines.append(f"Invoke URL: {alert.invoke_url}")
    if alert.log_url:
        lines.append(f"{_log_label(alert)}: {alert.log_url}")
    return _sns_subject(_subject(alert)), _cut_bytes("\n".join(lines), SNS_MESSAGE_MAX_BYTES)


def render_minimal_sns(alert: Alert) -> tuple[str, str]:
    """What is sent when the full alert is refused: the outcome only, at most ``SNS_MINIMAL_MAX_BYTES``."""
    message = f"{_defang(_headline(alert))} {MINIMAL_NOTE}"
    return _sns_subject(_subject(alert)), _cut_bytes(message, SNS_MINIMAL_MAX_BYTES)


# --- Slack: mrkdwn, where <...> is a mention, a channel or a link ---------------------------------------


def escape_slack(text: str) -> str:
    """Slack's three control characters escaped, so ``<!channel>``, ``<@U123>`` or ``<https://x|y>`` in
    the text are shown, never acted on (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_code(text: str) -> str:
    """Inline code: no formatting, no auto-linked URL; a backtick in the text cannot close it."""
    return "`" + escape_slack(text).replace("`", "'") + "`"


def _slack_block(text: str) -> str:
    fence = "`" * 3
    return fence + escape_slack(text).replace("`", "'") + fence


def _slack_link(url: str, label: str) -> str:
    # Only Airflow's own URL is linked; escaping keeps a '|' or '>' in it from rewriting the link.
    return f"<{escape_slack(url).replace('|', '%7C')}|{label}>"


def _slack_head(alert: Alert) -> str:
    model = f"model {_slack_code(alert.model_name)}" if alert.model_name else UNVALIDATED
    head = f"*sagelift*: {_slack_code(alert.dag_id)} run {_slack_code(alert.run_id)} for {model} {_outcome(alert)}"
    if alert.event != "success" and alert.task_id:
        head += f" at task {_slack_code(alert.task_id)}"
    return head + "."


def render_slack(alert: Alert) -> str:
    """The webhook message's text, within Slack's limit: every variable part is code, never mrkdwn.

    Escaping can grow a reason up to five times; it is halved until the message fits.
    """
    reason, cut = alert.reason, False
    while True:
        text = _slack_text(alert, reason + CUT_MARK if reason is not None and cut else reason)
        if len(text) <= SLACK_TEXT_MAX_CHARS:
            return text
        if not reason:
            return render_minimal_slack(alert)[:SLACK_TEXT_MAX_CHARS]
        reason, cut = reason[: len(reason) // 2], True


def _slack_text(alert: Alert, reason: str | None) -> str:
    lines = [_slack_head(alert)]
    if alert.event == "failure":
        if reason:
            lines.append(_slack_block(reason))
        elif alert.model_name is None:
            lines.append(escape_slack(UNVALIDATED_NOTE))
    elif alert.event == "approval" and reason:
        lines.append(_slack_code(reason))
    if alert.invoke_url:
        lines.append(f"Invoke URL: {_slack_code(alert.invoke_url)}")
    if alert.log_url:
        label = _log_label(alert) if alert.event == "approval" else "Task log"
        lines.append(_slack_link(alert.log_url, label))
    return "\n".join(lines)


def render_minimal_slack(alert: Alert) -> str:
    return f"{_slack_head(alert)} {escape_slack(MINIMAL_NOTE)}"
