"""Approval before deploy: which runs wait for a deployer's answer, what the approver is shown, what the
answer means.

An account the platform marks ``requires_approval`` (platform.accounts.<account>.requires_approval)
pauses a run that deploys at approve_deploy, after register_model and before create_model, until one of
the account's deployers approves it in the Airflow UI (the standard provider's ApprovalOperator). The
approver sees the model package version, its metrics and the plan of what the run will change (the
change set of sagelift.steps.plan_changes). Approve: the version becomes Approved and the run deploys
it. Reject, or no answer within ``platform.approval_timeout_seconds``: the version becomes Rejected and
the run stops before create_model, so nothing in the account changes.

KFP has no such pause: its validate refuses a run that needs approval and points to the Airflow DAG.

Pure: the request's text and the answer's meaning; the operator (sagelift.operators.approval) and the
step (sagelift.steps.approval) do the waiting and the calls. Every part of the request's Markdown that
comes from a run or an account is escaped (``escape_markdown``), and model environment values are never
shown (they are the one place a conf may carry a credential-like value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagelift.domain.changes import Change, ChangeSet
from sagelift.domain.errors import Problems
from sagelift.domain.notes import escape_markdown

if TYPE_CHECKING:  # plan.py imports this module: the types only, for annotations
    from sagelift.domain.params import RunParams
    from sagelift.domain.platform import PlatformConfig

TASK_ID = "approve_deploy"
APPROVE = "Approve"
REJECT = "Reject"
ENGINE_FIELD = "account_id"
AIRFLOW_DAG = "sagemaker_deploy"
# What the request shows at most: the change list and the metrics stay readable, the body bounded.
MAX_CHANGES = 40
MAX_METRICS = 30
BODY_MAX_CHARS = 12000
# SageMaker's ModelApprovalDescription / ApprovalDescription is at most 1024 characters.
DESCRIPTION_MAX = 1024
HIDDEN = "(not shown)"
# Request fields whose values are never put in the request (a model's environment may hold a token).
HIDDEN_PATHS = ("Environment",)


def needs_approval(params: RunParams, platform: PlatformConfig) -> bool:
    """A run that deploys (not train-only, not plan-only) into an account that requires approval."""
    account = platform.accounts.get(params.account_id)
    return bool(account and account.requires_approval and params.deploys and not params.plan_only)


def check_engine_approval(
    params: RunParams, platform: PlatformConfig, engine: str, problems: Problems
) -> None:
    """The KFP engine cannot pause for a human: it refuses a run that needs approval, pointing to Airflow."""
    if engine != "airflow" and needs_approval(params, platform):
        problems.add(
            ENGINE_FIELD,
            f"account {params.account_id} requires approval (platform.accounts.<id>.requires_approval); "
            f"{engine.upper()} cannot ask: use the Airflow DAG {AIRFLOW_DAG}",
        )


def skip_reason(params: RunParams, platform: PlatformConfig) -> str | None:
    """Why approve_deploy does not wait in this run, or None when it does."""
    account = platform.accounts.get(params.account_id)
    if account is None or not account.requires_approval:
        return (
            f"{TASK_ID} skipped: account {params.account_id} does not require approval "
            "(platform.accounts.<account>.requires_approval)"
        )
    if not params.deploys:
        return f"{TASK_ID} skipped: a train-only run deploys nothing"
    if params.plan_only:
        return f"{TASK_ID} skipped: plan_only: the run changes nothing"
    return None


# --- what the approver is shown ---------------------------------------------------------------------
def _metric_items(metrics: Any) -> list[tuple[str, Any]]:
    """The registered metrics as (name, value): a name -> value object, or a list of {name, value}."""
    if isinstance(metrics, Mapping):
        return [(str(k), v) for k, v in metrics.items()]
    items: list[tuple[str, Any]] = []
    for entry in metrics or ():
        if isinstance(entry, Mapping):
            name = entry.get("name", entry.get("MetricName", entry.get("Name")))
            value = entry.get("value", entry.get("Value"))
            if name is not None:
                items.append((str(name), value))
    return items


def _change_lines(change: Change) -> list[str]:
    # escaped, not in a code span: CommonMark keeps a code span's backslashes, so it would show them
    head = f"**{change.action}** {escape_markdown(change.kind, 60)} {escape_markdown(change.name, 120)}"
    lines = [f"- {head}" + (f": {escape_markdown(change.note, 200)}" if change.note else "")]
    for item in change.fields:
        if any(hidden in item.path for hidden in HIDDEN_PATHS):
            lines.append(f"    - {escape_markdown(item.path, 120)}: {HIDDEN}")
        else:
            lines.append(f"    - {escape_markdown(item.render(), 240)}")
    return lines


def request_subject(model_name: str, account_id: str, version: Any) -> str:
    """Plain text (the UI shows the subject as it is): a validated model name, account id and version."""
    return f"Deploy {model_name[:80]} version {str(version)[:12]} into account {account_id[:20]}?"


def request_body(
    registered: Mapping[str, Any],
    changes: ChangeSet | None,
    *,
    run_id: str,
    triggered_by: str | None,
    approvers: tuple[str, ...],
    timeout_seconds: int,
) -> str:
    """The request's Markdown: who asks, the package version and its metrics, the plan, the rules."""
    lines = [
        f"Run {escape_markdown(run_id, 120)}"
        + (f", triggered by {escape_markdown(triggered_by, 80)}" if triggered_by else "")
        + ", waits for approval before it deploys.",
        "",
        "**Model package version**",
        "",
        f"- group: {escape_markdown(registered.get('model_package_group'), 120)}",
        f"- version: {escape_markdown(registered.get('version'), 12)}",
        f"- ARN: {escape_markdown(registered.get('model_package_arn'), 200)}",
        f"- artifact: {escape_markdown(registered.get('model_data_url'), 200)}",
        f"- image: {escape_markdown(registered.get('image'), 200)}",
        "",
        "**Metrics**",
        "",
    ]
    metrics = _metric_items(registered.get("metrics"))
    lines += [f"- {escape_markdown(n, 80)}: {escape_markdown(v, 40)}" for n, v in metrics[:MAX_METRICS]]
    if len(metrics) > MAX_METRICS:
        lines.append(f"- and {len(metrics) - MAX_METRICS} more")
    if not metrics:
        lines.append("- none were recorded")
    lines += ["", "**What the run will change**", ""]
    if changes is None:
        lines.append("- the plan could not be read; see this task's log")
    else:
        counts = changes.counts()
        told = ", ".join(f"{counts[a]} to {a}" for a in ("create", "update", "delete", "unchanged"))
        lines += [told, ""]
        for change in changes.changes[:MAX_CHANGES]:
            lines += _change_lines(change)
        if len(changes.changes) > MAX_CHANGES:
            lines.append(f"- and {len(changes.changes) - MAX_CHANGES} more (this task's log has them all)")
    wait = f"{timeout_seconds / 3600:g} h" if timeout_seconds >= 3600 else f"{timeout_seconds / 60:g} min"
    who = ", ".join(escape_markdown(a, 80) for a in approvers[:20]) or "nobody"
    lines += [
        "",
        f"**Approve** deploys this version (it becomes Approved). **Reject**, or no answer within "
        f"{wait}, stops the run before anything in the account changes (the version becomes Rejected).",
        f"Who may answer: the account's deployers ({who}).",
    ]
    body = "\n".join(lines)
    return body if len(body) <= BODY_MAX_CHARS else body[: BODY_MAX_CHARS - 3] + "..."


# --- what the answer means --------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """An answer to the request: approved or not, by whom (None: the timeout decided), and why not."""

    approved: bool
    by: str | None
    timed_out: bool
    refused_approver: bool = False

    @property
    def status(self) -> str:
        """The model package version's ModelApprovalStatus after this answer."""
        return "Approved" if self.approved else "Rejected"

    def description(self, run_id: str) -> str:
        """The version's approval description (SageMaker keeps it with the status)."""
        if self.approved:
            text = f"approved by {self.by} in the Airflow UI for run {run_id}"
        elif self.timed_out:
            text = f"no answer before the approval timeout: rejected for run {run_id}"
        elif self.refused_approver:
            text = (
                f"approved by {self.by}, who is not one of the account's deployers: rejected for run {run_id}"
            )
        else:
            text = f"rejected by {self.by} in the Airflow UI for run {run_id}"
        return text[:DESCRIPTION_MAX]

    def stop_message(self, model_name: str, version: Any, timeout_seconds: int) -> str:
        """approve_deploy's failure: the answer, the version's new status, and that nothing changed."""
        if self.timed_out:
            why = f"no answer within {timeout_seconds} s (platform.approval_timeout_seconds)"
        elif self.refused_approver:
            why = f"approved by {self.by!r}, who is not one of the account's deployers"
        else:
            why = f"rejected by {self.by!r}"
        return (
            f"approve_deploy: {why}; {model_name} version {version} is Rejected and the run stops before "
            "create_model: nothing in the account was changed"
        )


def _user_name(user: Any) -> str | None:
    if isinstance(user, Mapping):
        name = user.get("name") or user.get("id")
        return None if name is None else str(name)
    return None


def read_decision(event: Mapping[str, Any], approvers: tuple[str, ...]) -> Decision:
    """The HITL resume event as a decision.

    The event is what Airflow resumes the task with: the chosen option and who chose it, ``timedout``
    when the scheduler applied the default (Reject) at the deadline, or ``error_type: timeout`` when no
    default was set. An Approve from someone who is not among ``approvers`` (an auth manager that does
    not enforce the request's assigned users, see README "Approval") is not taken as an approval.
    """
    if event.get("error_type") == "timeout":
        return Decision(approved=False, by=None, timed_out=True)
    chosen = list(event.get("chosen_options") or [])
    user = event.get("responded_by_user")
    by = _user_name(user)
    timed_out = bool(event.get("timedout")) and by is None
    if chosen != [APPROVE] or timed_out:
        return Decision(approved=False, by=by, timed_out=timed_out)
    ids = (
        {str(user.get(k)) for k in ("id", "name") if user.get(k) is not None}
        if isinstance(user, Mapping)
        else set()
    )
    if not ids & set(approvers):
        return Decision(approved=False, by=by, timed_out=False, refused_approver=True)
    return Decision(approved=True, by=by, timed_out=False)


def assigned_users(approvers: tuple[str, ...]) -> list[dict[str, str]]:
    """The request's assigned users (Airflow's HITLUser: id and name), from the account's deployers.

    Airflow's auth manager compares a user's id with these ids: for the simple auth manager the id is the
    user name, as the deployers list it (other auth managers: README "Approval").
    """
    return [{"id": name, "name": name} for name in approvers]
