"""Step 4, ``copy_images``: put the training and model images into the scientist account's ECR.

The workflow is the core's (sagelift.steps.images, which the KFP engine runs too): images already in
the account's ECR or in AWS's own registries are used in place, images from allowed source registries
are copied into ``<platform.ecr.repository_prefix><source repository>``, and every image reaches the
later steps pinned by digest. This adapter adds what only Airflow has: the platform's source-registry
connection (``platform.ecr.source_registry_conn_id``), read key by key for the registry it names.

The task is skipped, with its result still returned for the later steps, when nothing had to be copied.
Missing images, refused credentials, a refused registry or token realm and untrusted certificates fail
the task without retries (they will not fix themselves); transient registry failures are retried inside
the copy and then by the task's own retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret

from sagelift.config import load_platform_config_raw
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import ImageReference
from sagelift.domain.plan import Plan, SessionFacts
from sagelift.domain.platform import PlatformConfig
from sagelift.operators.base import StepInputs, connection_clients, skip_step, step_errors

# The steps (sagelift.steps.images, .promotion, .registry) are imported when the task executes: the DAG
# file's parse and every other task's process load this module without needing them.
if TYPE_CHECKING:
    from sagelift.steps.registry import RegistryCredentials, RegistryHook


def _final_errors() -> tuple[type[Exception], ...]:
    """The copy's outcomes that no retry changes."""
    from sagelift.steps.registry import (
        ImageNotFoundError,
        RegistryAuthError,
        RegistryPolicyError,
        RegistryTlsError,
    )

    return (
        ImageNotFoundError,
        RegistryAuthError,
        RegistryTlsError,
        RegistryPolicyError,
        SageliftValidationError,
    )


class EcrCopyImagesOperator(StepInputs, BaseOperator):
    """Copy the run's images into the scientist account's ECR and return them pinned by digest."""

    template_fields: Sequence[str] = ("plan", "session", "tags")
    ui_color = "#f8c471"

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        skopeo: str = "skopeo",
        skopeo_retry_times: int = 3,
        copy_attempts: int = 3,
        backoff_seconds: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags)
        self.skopeo = skopeo
        self.skopeo_retry_times = skopeo_retry_times
        self.copy_attempts = copy_attempts
        self.backoff_seconds = backoff_seconds

    @cached_property
    def registry(self) -> RegistryHook:
        from sagelift.steps.registry import RegistryHook

        return RegistryHook(
            skopeo=self.skopeo,
            retry_times=self.skopeo_retry_times,
            attempts=self.copy_attempts,
            backoff_seconds=self.backoff_seconds,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from sagelift.steps.images import publish_images, skip_reason

        plan, session = self.read_plan(), self.read_session()
        source_conn_id = plan.platform.ecr.source_registry_conn_id
        with step_errors():
            try:
                if plan.params.promote_from.enabled:
                    results = self._promote(plan, session)
                else:
                    results = publish_images(
                        plan,
                        connection_clients(session),
                        self.read_tags(),
                        source_credentials=_connection_credentials(source_conn_id)
                        if source_conn_id
                        else None,
                        registry=self.registry,
                        mask_secret=mask_secret,
                    )
            except _final_errors() as err:
                raise AirflowFailException(str(err)) from err
        reason = skip_reason(results)
        if reason:
            skip_step(reason, results, context)
        return results

    def _promote(self, plan: Plan, session: SessionFacts) -> dict[str, Any]:
        """A promoted run: the source version read through the source account's own connection (its role
        chain), checked against the platform configuration as it is now."""
        from sagelift.steps.promotion import promote_images

        source_account = plan.params.promote_from.account_id
        conn_id = plan.platform.aws_conn_id(source_account)
        current = PlatformConfig.from_dict(load_platform_config_raw())
        source = connection_clients(replace(session, account_id=source_account, aws_conn_id=conn_id))

        def source_clients(service: str, region: str | None = None) -> Any:
            # Called only after the step has checked the user against the source account's deployers.
            # A missing connection would make the provider fall back to the worker's own identity.
            try:
                BaseHook.get_connection(conn_id)
            except AirflowNotFoundException:
                raise AirflowFailException(
                    f"promote_from.account_id: account {source_account} is onboarded but its AWS connection "
                    f"{conn_id!r} does not exist; an ML engineer creates it (README 'Onboarding a scientist "
                    "account')."
                ) from None
            return source(service, region)

        return promote_images(
            plan,
            source_clients,
            connection_clients(session),
            self.read_tags(),
            registry=self.registry,
            mask_secret=mask_secret,
            platform=current,
        )


def _connection_credentials(conn_id: str) -> Any:
    """Credentials of the platform's source-registry connection, for the registry its Host names only."""

    def credentials(ref: ImageReference) -> RegistryCredentials | None:
        from sagelift.steps.registry import RegistryCredentials

        conn = BaseHook.get_connection(conn_id)
        host = (conn.host or "").removeprefix("https://").rstrip("/")
        if not host:
            raise SageliftValidationError.single(
                "platform.ecr.source_registry_conn_id",
                f"connection {conn_id!r} must name its registry in Host",
            )
        if conn.port:
            host = f"{host}:{conn.port}"
        if host != ref.registry:
            return None
        identity_token = conn.extra_dejson.get("identity_token")
        return RegistryCredentials(
            username=conn.login or "",
            password=conn.password or "",
            identity_token=str(identity_token) if identity_token else None,
        )

    return credentials
