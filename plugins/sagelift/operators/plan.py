"""``plan_changes``: with ``plan_only: true``, print what the run would change and stop before any write.

The task runs after assume_role_chain and before the model's lock is taken. In a plan-only run it makes
the core's read-only calls (sagelift.steps.plan_changes) in the scientist account, logs the change set
(create, update with old -> new, unchanged, for every resource), returns it as its XCom and then skips
every later step, as the standard provider's ShortCircuitOperator does: the run ends green, nothing is
created or changed, and the lock is never taken (its teardown task is skipped with it). In any other run
it returns at once and the run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.skipmixin import SkipMixin

from sagelift.hooks.airflow_api import AirflowApiHook
from sagelift.operators.base import StepInputs, connection_clients, step_errors


class PlanChangesOperator(StepInputs, BaseOperator, SkipMixin):
    """Returns the change set (``ChangeSet.to_xcom()``) in a plan-only run, None otherwise."""

    template_fields: Sequence[str] = ("plan", "session")
    ui_color = "#fffde7"
    inherits_from_skipmixin = True

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def execute(self, context: Any) -> dict[str, Any] | None:
        plan = self.read_plan()
        if not plan.params.plan_only:
            self.log.info("plan_only is not set: the run goes on and makes its changes.")
            return None
        # Only a plan-only run needs the step: every other run (and every parse) goes without importing it.
        from sagelift.steps.plan_changes import plan_changes

        session = self.read_session()
        with step_errors("plan_changes: "):
            changes = plan_changes(plan, connection_clients(session))
        self.log.info("%s", changes.render())
        # The run's page and the runs list say it was a plan (validate's note said "running").
        AirflowApiHook().set_run_note(plan.dag_id, plan.run_id, changes.note())
        ti = context["ti"]
        # Skipping the later steps ends this task before Airflow would push its return value.
        ti.xcom_push(key="return_value", value=changes.to_xcom())
        later = [task for task in self.get_flat_relatives(upstream=False) if not task.is_teardown]
        self.log.info("plan_only: skipping %d later steps; nothing was changed.", len(later))
        self.skip(ti=ti, tasks=later)
        return changes.to_xcom()
