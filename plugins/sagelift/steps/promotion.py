"""Staged promotion (issue 17 item 9), the acting half: read the source version, copy its image by digest.

A run with ``promote_from`` (sagelift.domain.promotion) trains nothing. Its copy_images step runs
``promote_images`` instead of ``images.publish_images``:

1. the run's user is checked again against the source account's deployers (the platform configuration
   may have changed since validate);
2. the version is read in the source account, through that account's own role chain
   (``source_clients``): DescribeModelPackage of ``<model_name>`` version N; a missing or Rejected
   version is refused naming ``promote_from.version``;
3. its serving image is copied from the source account's ECR (with that chain's ECR credentials) into
   the run's account's ECR under the same repository, by digest: the digest stays the same, the copy is
   recorded for the model (``images.record_copy``, which teardown reads) and tagged
   ``promoted-<source account>-v<version>``. An image in AWS's own registries (a built-in algorithm)
   is used in place, as step 4 does.

The result has step 4's shape; the model_docker_image entry also carries ``promote_from``: the source
version (ARN, artifact), which create_model deploys and register_model names in the new version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import (
    IMAGE_PARAMS,
    CopyLimits,
    ImageStep,
    ecr_registry_host,
    is_aws_owned_ecr,
    parse_image_reference,
    render_registry_endpoint,
)
from sagelift.domain.plan import Plan
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.promotion import FIELD, SourceVersion, parse_source_version, promoted_version
from sagelift.steps.clients import Clients
from sagelift.steps.images import copy_image, create_repository, record_copy, registry_credentials
from sagelift.steps.registry import RegistryAccess, RegistryHook
from sagelift.steps.role_chain import check_identity

log = logging.getLogger(__name__)
PARAM = "model_docker_image"


def check_source_deployer(plan: Plan, platform: PlatformConfig | None = None) -> None:
    """The run's user must still be a deployer in the source account (``platform``: the current one)."""
    if plan.triggered_by is None:  # a plan built without a user (KFP): promote_from never reaches it
        raise SageliftValidationError.single(
            FIELD, "a promotion must run on Airflow, which knows the run's user"
        )
    try:
        (platform or plan.platform).check_deployer(plan.triggered_by, plan.params.promote_from.account_id)
    except SageliftValidationError as err:
        raise SageliftValidationError([(f"{FIELD}.account_id", rule) for _f, rule in err.problems]) from None


def read_source_version(sagemaker: Any, plan: Plan) -> SourceVersion:
    """DescribeModelPackage of the promoted version in the source account (``sagemaker``: its client)."""
    promote = plan.params.promote_from
    arn = promote.package_arn(plan.region, plan.model_name)
    try:
        description = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException"):
            raise SageliftValidationError.single(
                f"{FIELD}.version",
                f"no version {promote.version} of model package group {plan.model_name} in account "
                f"{promote.account_id}",
            ) from None
        raise
    return parse_source_version(description, promote)


def promote_images(
    plan: Plan,
    source_clients: Clients,
    clients: Clients,
    tags: list[dict[str, str]],
    *,
    registry: RegistryHook | None = None,
    mask_secret: Callable[[str], None] | None = None,
    platform: PlatformConfig | None = None,
) -> dict[str, Any]:
    """Step 4 of a promoted run: the source version's serving image, copied into the account by digest."""
    mask = mask_secret or (lambda secret: None)
    check_source_deployer(plan, platform)
    promote, region, settings = plan.params.promote_from, plan.region, plan.platform.ecr
    # the source chain must end as the source account's execution role, as assume_role_chain checks ours
    check_identity(source_clients("sts", region), plan.platform, promote.account_id)
    version = read_source_version(source_clients("sagemaker", region), plan)
    log.info("Promoting %s (%s) from account %s", version.package_arn, version.status, promote.account_id)
    results: dict[str, Any] = dict.fromkeys(IMAGE_PARAMS)
    ref = parse_image_reference(version.image, f"{FIELD}.version")
    entry: dict[str, Any] = {
        "image": version.image,
        "digest": ref.digest,
        "source": version.image,
        "repository": ref.repository,
        "tag": None,
        "action": "aws_owned",
        FIELD: version.to_dict(),
    }
    if ref.ecr_account is not None and is_aws_owned_ecr(ref.ecr_account, str(ref.ecr_region)):
        results[PARAM] = entry
        return results
    if ref.ecr_account != promote.account_id or ref.digest is None:
        raise SageliftValidationError.single(
            f"{FIELD}.version",
            f"version {promote.version}'s image {version.image[:80]} is not in account {promote.account_id}'s ECR",
        )
    registry = registry or RegistryHook()
    registry.limits = CopyLimits.from_settings(settings)
    ecr = clients("ecr", region)
    source = RegistryAccess(
        host=render_registry_endpoint(settings.registry_endpoint, promote.account_id, region),
        credentials=registry_credentials(source_clients("ecr", region), promote.account_id, mask),
        ca_file=settings.registry_ca_file,
    )
    target = RegistryAccess(
        host=render_registry_endpoint(settings.registry_endpoint, plan.account_id, region),
        credentials=registry_credentials(ecr, plan.account_id, mask),
        ca_file=settings.registry_ca_file,
    )
    step = ImageStep(
        PARAM,
        ref.with_registry(source.host),
        "copy",
        target_repository=ref.repository,
        target_tag=f"promoted-{promote.account_id}-v{promote.version}",
    )
    if create_repository(
        ecr,
        ref.repository,
        tags=tags,
        scan_on_push=settings.scan_on_push,
        tag_mutability=settings.tag_mutability,
    ):
        log.info("Created ECR repository %s", ref.repository)
    outcome = copy_image(registry, step, source, target, settings)
    if outcome.digest != ref.digest:  # a multi-platform index narrowed by platform.ecr.platforms
        raise SageliftValidationError.single(
            f"{FIELD}.version",
            f"the copy of {version.image[:80]} has digest {outcome.digest[:19]}; a promotion keeps the digest "
            "(platform.ecr.platforms narrows it: promote single-platform images)",
        )
    record_copy(ecr, ref.repository, outcome, plan.model_name)
    pinned = f"{ecr_registry_host(plan.account_id, region)}/{ref.repository}@{outcome.digest}"
    results[PARAM] = {**entry, "image": pinned, "tag": step.target_tag, "action": outcome.action}
    log.info("%s -> %s (%s)", version.image, pinned, outcome.action)
    return results


def promoted_artifact(images: Mapping[str, Any] | None) -> str | None:
    """The promoted version's artifact (S3 URI), which create_model deploys as it is; None otherwise."""
    found = promoted_version(images)
    return None if found is None else str(found["model_data_url"])
