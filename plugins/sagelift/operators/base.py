"""What every sagelift operator shares: the step inputs it is wired with, and how step errors end a task.

The DAG file wires each step's inputs with ``.output`` (``plan=validate.output``,
``session=assume_role_chain.output``, ...): these are templated fields holding XComArgs, which Airflow
resolves at run time to the upstream task's return value (never rendered by Jinja, so conf values in
them stay data) and which give the task its upstream edges. ``StepInputs`` stores them in ``__init__``
and reads each back as its type once per execute.

``step_errors`` maps the core's outcomes (sagelift.steps.errors) onto Airflow's: a refusal or a final
outcome fails the task without retries, a transient state fails this try so the task's retries run. An
AWS error a step lets through is classified the same way (``classify``): throttling, 5xx and dropped
connections are retried, refusals are final.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import Plan, SessionFacts
from sagelift.steps.errors import StepFailed, StepRetry, classify

INPUT_FIELDS = ("plan", "session", "tags", "images")


@contextmanager
def step_errors(prefix: str = "") -> Iterator[None]:
    """Run a core step: final outcomes fail the task for good, transient ones let it retry."""
    try:
        yield
    except (SageliftValidationError, StepFailed) as err:
        raise AirflowFailException(f"{prefix}{err}") from None
    except StepRetry as err:
        raise AirflowException(f"{prefix}{err}") from None
    except (ClientError, BotoCoreError) as err:
        if classify(err) == "transient":
            raise AirflowException(f"{prefix}{err} (transient; the task is retried)") from err
        raise AirflowFailException(f"{prefix}{err}") from err


class StepInputs:
    """The inputs a step reads from the steps before it; a mixin for BaseOperator subclasses."""

    plan: Any
    session: Any
    tags: Any
    images: Any

    def _store_inputs(
        self,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        images: Any = None,
    ) -> None:
        self.plan = plan
        self.session = session
        self.tags = tags
        self.images = images

    def read_plan(self) -> Plan:
        with step_errors():
            return Plan.from_xcom(self.plan)

    def read_session(self) -> SessionFacts:
        with step_errors():
            return SessionFacts.from_xcom(self.session)

    def read_tags(self) -> list[dict[str, str]]:
        return [dict(tag) for tag in (self.tags or [])]

    def read_images(self) -> Mapping[str, Any] | None:
        return dict(self.images) if self.images else None


def connection_clients(session: SessionFacts) -> Any:
    """The core's client factory on the account's connection (its endpoint settings included)."""
    from sagelift.hooks.caller import AwsHook as AwsBaseHook

    def client(service: str, region: str | None = None) -> Any:
        hook = AwsBaseHook(
            aws_conn_id=session.aws_conn_id, client_type=service, region_name=region or session.region
        )
        return hook.get_conn()

    return client


def aws_session_fields(operator: Any, session: SessionFacts) -> None:
    """Point an AWS operator (its hook, and any trigger it defers to) at the scientist account."""
    if not session.aws_conn_id:
        raise AirflowFailException("assume_role_chain pushed no AWS connection id; it must run on Airflow")
    operator.aws_conn_id = session.aws_conn_id
    operator.region_name = session.region


def skip_step(reason: str, value: Any = None, context: Mapping[str, Any] | None = None) -> NoReturn:
    """Skip the running task, leaving ``value`` as its return value first: a later task that reads it by
    ``.output`` then finds that value, where a missing XCom would make Airflow 3.3's task client log an
    error-level "XCom not found" in the reader's log of a run that succeeds. ``context``: the execute
    context (else the running task's)."""
    from airflow.sdk import get_current_context

    try:
        ti = context.get("ti") if context is not None else get_current_context()["ti"]
    except RuntimeError:  # called outside a running task (a unit test's direct execute)
        ti = None
    if ti is not None:
        ti.xcom_push(key="return_value", value=value)
    raise AirflowSkipException(reason)


def skip_if_train_only(plan: Plan, task: str) -> None:
    """A train-only run (no serving image, no built-in algorithm) deploys nothing: steps 6-8 skip; a
    batch run (``batch`` set) serves nothing: deploy_endpoint and expose_api skip."""
    if reason := plan.skip_reason(task):
        where = "its results are" if plan.params.batch.enabled else "the trained artifact is"
        skip_step(f"{reason}; summarize_run shows where {where}.")
