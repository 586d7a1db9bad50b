"""``approve_deploy``: a deployer approves the run's model package version in the Airflow UI before deploy.

Built on the standard provider's ApprovalOperator (human-in-the-loop): in an account the platform marks
``requires_approval`` the task writes an approval request (subject, Markdown body, options Approve and
Reject, the account's deployers as assigned users) and waits in Airflow 3.3's ``awaiting_input`` state,
using no worker slot and no triggerer, until someone answers on the task's Required Actions page or the
platform's ``approval_timeout_seconds`` pass (the scheduler then answers Reject, the request's default).

- Approve: the version becomes Approved (sagelift.steps.approval.record_decision) and the run goes on to
  create_model.
- Reject, the timeout, or an Approve from someone who is not among the account's deployers: the version
  becomes Rejected and the task fails with that reason (AirflowFailException: no retry asks again).
  create_model and every later step become upstream_failed, so nothing in the account changes (the
  DAG's none_failed rule would let them run after a mere skip, which is why a rejection fails instead
  of skipping); the model's lock is released by its teardown task.

In any other account, or a train-only or plan-only run, the task skips saying why. Subject and body are
built at run time from the plan, the registered version and the change set, never rendered by Jinja
(they are not template fields here), with every run-given part escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain import approval
from sagelift.operators.base import StepInputs, connection_clients, skip_step, step_errors

# sagelift.steps.approval (the change set's planners: most of the steps) is imported when the task runs:
# the DAG file's parse and every other task's process load this module without needing it.


class SageMakerApproveDeployOperator(StepInputs, ApprovalOperator):
    """Returns ``{"status": "Approved", "version", "model_package_arn", "approved_by"}`` once approved."""

    # The request's subject and body are computed in execute, not templated: a conf value stays data.
    template_fields: Sequence[str] = ("plan", "session", "tags", "registered")
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        registered: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Approve this run's deploy")
        super().__init__(defaults=approval.REJECT, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags)
        self.registered = registered

    def execute(self, context: Any) -> Any:
        plan = self.read_plan()
        if reason := approval.skip_reason(plan.params, plan.platform):
            skip_step(reason)
        registered = dict(self.registered or {})
        if registered.get("skipped") or not registered.get("model_package_arn"):
            raise AirflowFailException(
                "approve_deploy: register_model registered no model package version, so there is nothing to "
                "approve; the run stops before deploy"
            )
        status = registered.get("status")
        if status == "Approved":  # decided in the registry already (a retried run's adopted version)
            self.log.info(
                "Version %s is Approved in the registry already: the run goes on.", registered["version"]
            )
            return self._approved(registered, None)
        if status == "Rejected":
            raise AirflowFailException(
                f"approve_deploy: {plan.model_name} version {registered.get('version')} is Rejected in the "
                "registry; the run stops before create_model: nothing in the account was changed"
            )
        from sagelift.steps.approval import approval_changes

        with step_errors("approve_deploy: "):
            changes = approval_changes(
                plan, connection_clients(self.read_session()), self.read_tags(), registered
            )
        self.log.info("%s", changes.render())
        approvers = plan.platform.approvers(plan.account_id)
        timeout = plan.platform.approval_timeout_seconds
        self.subject = approval.request_subject(plan.model_name, plan.account_id, registered.get("version"))
        self.body = approval.request_body(
            registered,
            changes,
            run_id=plan.run_id,
            triggered_by=plan.triggered_by,
            approvers=approvers,
            timeout_seconds=timeout,
        )
        self.assigned_users = approval.assigned_users(approvers)  # type: ignore[assignment]
        self.response_timeout = timedelta(seconds=timeout)
        self.log.info(
            "Waiting up to %d s for one of %d deployers to approve version %s (the task's Required Actions).",
            timeout,
            len(approvers),
            registered.get("version"),
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        plan = self.read_plan()
        registered = dict(self.registered or {})
        if "error" in event and event.get("error_type") != "timeout":
            self.process_trigger_event_error(event)  # an invalid response: Airflow's own error
        decision = approval.read_decision(event, plan.platform.approvers(plan.account_id))
        from sagelift.steps.approval import record_decision

        with step_errors("approve_deploy: "):
            client = connection_clients(self.read_session())("sagemaker")
            status = record_decision(client, registered, decision, plan.run_id)
        self.log.info("Version %s of %s is now %s.", registered.get("version"), plan.model_name, status)
        if decision.approved:
            return self._approved(registered, decision.by)
        raise AirflowFailException(
            decision.stop_message(
                plan.model_name, registered.get("version"), plan.platform.approval_timeout_seconds
            )
        )

    @staticmethod
    def _approved(registered: dict[str, Any], by: str | None) -> dict[str, Any]:
        return {
            "status": "Approved",
            "version": registered.get("version"),
            "model_package_arn": registered.get("model_package_arn"),
            "approved_by": by,
        }
