"""Step 4, ``copy_images``: put the training and model images into the scientist account's ECR.

SageMaker pulls only from ECR it can reach, so an image from an internal registry, a public registry or
another account's ECR is copied into ``<platform.ecr.repository_prefix><source repository>`` in the
scientist account first. Images already in that account's ECR (host ``<account>.dkr.ecr.<region>...``)
are used as they are. Either way, downstream steps get the image pinned by digest through XCom::

    {"training_docker_image": {"image": "<ecr host>/<repo>@sha256:...", "digest": "sha256:...",
                               "source": "<as given>", "repository": "<repo>", "tag": "<tag>|None",
                               "action": "copied" | "already_copied" | "in_ecr"},
     "model_docker_image": {...} | None}

A copy keeps digests, skips blobs the target already has and is re-runnable after any interruption
(blobs are content-addressed and the manifest is written last). Missing images, refused credentials and
untrusted certificates fail the task without retries (they will not fix themselves); transient registry
failures are retried inside the copy and then by the task's own retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import (
    IMAGE_PARAMS,
    ImageReference,
    ImageStep,
    ecr_registry_host,
    is_index,
    plan_image_steps,
    render_registry_endpoint,
    select_platforms,
)
from sagelift.domain.platform import EcrSettings
from sagelift.hooks.ecr import EcrHook
from sagelift.hooks.registry import (
    ImageNotFoundError,
    RegistryAccess,
    RegistryAuthError,
    RegistryCredentials,
    RegistryHook,
    RegistryTlsError,
)
from sagelift.operators.run_inputs import RunInputs, pull_run_inputs

XCOM_RETURN_KEY = "return_value"


class EcrCopyImagesOperator(BaseOperator):
    """Copy the run's images into the scientist account's ECR and publish them pinned by digest."""

    ui_color = "#f8c471"

    def __init__(
        self,
        *,
        skopeo: str = "skopeo",
        skopeo_retry_times: int = 3,
        copy_attempts: int = 3,
        backoff_seconds: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.skopeo = skopeo
        self.skopeo_retry_times = skopeo_retry_times
        self.copy_attempts = copy_attempts
        self.backoff_seconds = backoff_seconds

    @cached_property
    def registry(self) -> RegistryHook:
        return RegistryHook(
            skopeo=self.skopeo,
            retry_times=self.skopeo_retry_times,
            attempts=self.copy_attempts,
            backoff_seconds=self.backoff_seconds,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        try:
            results = self._publish_images(inputs)
        except (ImageNotFoundError, RegistryAuthError, RegistryTlsError, SageliftValidationError) as err:
            raise AirflowFailException(str(err)) from err
        copied = [r for r in results.values() if r and r["action"] == "copied"]
        if not copied:
            context["ti"].xcom_push(key=XCOM_RETURN_KEY, value=results)
            raise AirflowSkipException(_skip_reason(results))
        return results

    # --- the work -----------------------------------------------------------------------------------
    def _publish_images(self, inputs: RunInputs) -> dict[str, Any]:
        settings = inputs.platform.ecr
        account_id, region = inputs.account_id, inputs.region
        ecr = EcrHook(aws_conn_id=inputs.aws_conn_id, region_name=region)
        steps = plan_image_steps(inputs.params, account_id, region, settings.repository_prefix)
        results: dict[str, Any] = dict.fromkeys(IMAGE_PARAMS)
        target: RegistryAccess | None = None
        for step in steps:
            if not step.copy:
                digest = ecr.describe_image_digest(
                    step.source.repository,
                    account_id,
                    tag=step.source.tag,
                    digest=step.source.digest,
                    image=str(step.source),
                )
                results[step.param] = _entry(step, step.source.pinned(digest), digest, "in_ecr")
                continue
            if target is None:
                target = RegistryAccess(
                    host=render_registry_endpoint(settings.registry_endpoint, account_id, region),
                    credentials=ecr.registry_credentials(account_id),
                    ca_file=settings.registry_ca_file,
                )
            ecr_name = f"{ecr_registry_host(account_id, region)}/{step.target_repository}"
            if ecr.create_repository(
                step.target_repository,
                tags=inputs.tag_list(),
                scan_on_push=settings.scan_on_push,
                tag_mutability=settings.tag_mutability,
            ):
                self.log.info("Created ECR repository %s", step.target_repository)
            digest, action = self._copy(
                step, self._source_access(step.source, settings, ecr, region), target, settings
            )
            results[step.param] = _entry(step, f"{ecr_name}@{digest}", digest, action)
            self.log.info("%s -> %s (%s)", step.source, results[step.param]["image"], action)
        return results

    def _copy(
        self, step: ImageStep, source: RegistryAccess, target: RegistryAccess, settings: EcrSettings
    ) -> tuple[str, str]:
        """Copy one image unless the target tag already holds it; returns (digest, action)."""
        manifest = self.registry.inspect(str(step.source), source)
        if step.source.digest and manifest.digest != step.source.digest:
            raise ImageNotFoundError(f"image {step.source} not found: the registry served {manifest.digest}")
        src_name = step.source.name
        dst_name = f"{target.host}/{step.target_repository}"
        dst_tagged = f"{dst_name}:{step.target_tag}"
        plan: list[tuple[str, str, bool]] = []  # (source, destination, all platforms)
        index: bytes | None = None
        expected = manifest.digest
        if is_index(manifest.media_type, manifest.document):
            selection = select_platforms(str(step.source), manifest.document, settings.platforms)
            if selection.whole_index:
                plan.append((f"{src_name}@{manifest.digest}", dst_tagged, True))
            elif selection.index is None:
                expected = str(selection.entries[0]["digest"])
                plan.append((f"{src_name}@{expected}", dst_tagged, False))
            else:
                index, expected = selection.index, str(selection.index_digest)
                plan += [
                    (f"{src_name}@{e['digest']}", f"{dst_name}@{e['digest']}", False)
                    for e in selection.entries
                ]
        else:
            plan.append((f"{src_name}@{manifest.digest}", dst_tagged, False))

        present = self.registry.digest_if_present(dst_tagged, target)
        if present == expected:
            return expected, "already_copied"
        if present is not None and settings.tag_mutability == "IMMUTABLE":
            raise SageliftValidationError.single(
                step.param,
                f"{step.source} is {expected} but ECR repository {step.target_repository} already holds tag "
                f"{step.target_tag} as {present} and its tags are immutable; pin the image by digest "
                "(image@sha256:...) or give the new image a new tag",
            )
        for src, dst, all_platforms in plan:
            written = self.registry.copy(src, source, dst, target, all_platforms=all_platforms)
            self.log.info("Copied %s to %s (%s)", src, dst, written)
        if index is not None:
            self.registry.push_index(index, dst_tagged, target)
        return expected, "copied"

    def _source_access(
        self, ref: ImageReference, settings: EcrSettings, ecr: EcrHook, region: str
    ) -> RegistryAccess:
        """Credentials for the source: the platform's source connection for its own host, another ECR
        registry through the scientist session, anonymous otherwise."""
        creds: RegistryCredentials | None = None
        if settings.source_registry_conn_id:
            conn = BaseHook.get_connection(settings.source_registry_conn_id)
            host = (conn.host or "").removeprefix("https://").rstrip("/")
            if not host:
                raise SageliftValidationError.single(
                    "platform.ecr.source_registry_conn_id",
                    f"connection {settings.source_registry_conn_id!r} must name its registry in Host",
                )
            if conn.port:
                host = f"{host}:{conn.port}"
            if host == ref.registry:
                identity_token = conn.extra_dejson.get("identity_token")
                creds = RegistryCredentials(
                    username=conn.login or "",
                    password=conn.password or "",
                    identity_token=str(identity_token) if identity_token else None,
                )
        if creds is None and ref.ecr_account is not None:
            other = EcrHook(aws_conn_id=ecr.aws_conn_id, region_name=ref.ecr_region or region)
            creds = other.registry_credentials(ref.ecr_account)
        return RegistryAccess(host=ref.registry, credentials=creds, ca_file=settings.registry_ca_file)


def _entry(step: ImageStep, image: str, digest: str, action: str) -> dict[str, Any]:
    return {
        "image": image,
        "digest": digest,
        "source": str(step.source),
        "repository": step.target_repository,
        "tag": step.target_tag or step.source.tag,
        "action": action,
    }


def _skip_reason(results: dict[str, Any]) -> str:
    parts: Sequence[str] = [
        f"{param}: {'not set' if r is None else ('already in the account ECR' if r['action'] == 'in_ecr' else 'already copied')}"
        for param, r in results.items()
    ]
    return "nothing to copy (" + "; ".join(parts) + ")"
