"""A run's note: its outcome at a glance on the run's page and in the runs list of the Airflow UI.

validate writes who runs what where; summarize_run replaces it with the endpoint's status and the invoke
URL; a failed task's notifier with the task and the first line of its error (for validate: the field
and the rule). Airflow renders a note as Markdown, so every part that comes from a run (names, URLs,
an error that may quote a conf value) is escaped and inert, and a note stays within the 1,000
characters the REST API accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NOTE_MAX_CHARS = 1000
PART_MAX_CHARS = 300
_PUNCTUATION_RE = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def escape_markdown(text: Any, limit: int = PART_MAX_CHARS) -> str:
    """``text`` on one line, clipped, with every ASCII punctuation character backslash-escaped: inert in
    CommonMark (no link, image, emphasis, code span, heading or HTML can start in it)."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 3] + "..."
    return _PUNCTUATION_RE.sub(r"\\\1", flat)


def _bounded(lines: list[str]) -> str:
    note = "\n\n".join(line for line in lines if line)
    return note if len(note) <= NOTE_MAX_CHARS else note[: NOTE_MAX_CHARS - 3] + "..."


def start_note(model_name: str, account_id: str, user: str | None, why: str | None = None) -> str:
    by = (
        f" for {escape_markdown(user, 80)}" + (f" ({escape_markdown(why, 120)})" if why else "")
        if user
        else ""
    )
    return _bounded(
        [
            f"**{escape_markdown(model_name, 80)}** into account {escape_markdown(account_id, 20)}{by}: running."
        ]
    )


def outcome_note(summary: Mapping[str, Any]) -> str:
    """The summary's model, endpoint status and invoke URL (shown as text, not a link: the URL takes a
    signed POST, a browser cannot open it)."""
    status = next(
        (
            item.get("status")
            for item in summary.get("resources") or []
            if isinstance(item, Mapping) and item.get("kind") == "endpoint"
        ),
        None,
    )
    head = f"**{escape_markdown(summary.get('model_name'), 80)}** in account {escape_markdown(summary.get('account_id'), 20)}"
    lines = [head + (f": endpoint {escape_markdown(status, 40)}." if status else ": succeeded.")]
    if summary.get("invoke_url"):
        auth = summary.get("authorization")
        lines.append(
            f"Invoke: POST {escape_markdown(summary['invoke_url'])}"
            + (f" ({escape_markdown(auth, 20)})" if auth else "")
        )
    return _bounded(lines)


def failure_note(task_id: str | None, error: Any, model_name: str | None = None) -> str:
    """The failed task and the first line of its error (validate's: the field and the rule)."""
    first = str(error or "").strip().splitlines()[0] if str(error or "").strip() else "no error message"
    who = f"**{escape_markdown(model_name, 80)}**: " if model_name else ""
    return _bounded([f"{who}failed at {escape_markdown(task_id or 'a task', 80)}.", escape_markdown(first)])


# --- the endpoint as an Airflow Asset -------------------------------------------------------------------
ENDPOINTS_ALIAS = "sagelift_model_endpoints"
TRAINING_DATA_LISTED_MAX = 10


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def endpoint_asset(summary: Mapping[str, Any], training_data: list[str]) -> dict[str, Any] | None:
    """The run's endpoint as an Asset (``name``, ``uri``: the endpoint's ARN) and the event's ``extra``
    (the run, its training data, the invoke URL); None for a run that deployed no endpoint."""
    endpoint = next(
        (
            item
            for item in summary.get("resources") or []
            if isinstance(item, Mapping) and item.get("kind") == "endpoint" and item.get("name")
        ),
        None,
    )
    region, account = summary.get("region"), summary.get("account_id")
    if endpoint is None or not region or not account:
        return None
    name = str(endpoint["name"])
    return {
        "name": f"sagemaker_endpoint/{account}/{name}",
        "uri": f"arn:{_partition(str(region))}:sagemaker:{region}:{account}:endpoint/{name.lower()}",
        "extra": {
            "model_name": summary.get("model_name"),
            "run_id": summary.get("run_id"),
            "endpoint_status": endpoint.get("status"),
            "invoke_url": summary.get("invoke_url"),
            "training_data": training_data[:TRAINING_DATA_LISTED_MAX],
        },
    }


def training_data_uris(channels: Any) -> list[str]:
    """The S3 URIs of a run's training channels, in order (what the endpoint's model learned from)."""
    uris = []
    for channel in channels or []:
        uri = (
            channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
            if isinstance(channel, Mapping)
            else None
        )
        if isinstance(uri, str):
            uris.append(uri)
    return uris
