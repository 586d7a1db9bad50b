"""Step 4, copy_images: put the training and model images into the scientist account's ECR, by digest.

SageMaker pulls only from ECR it can reach, so an image from an internal registry, a public registry or
another account's ECR is copied into ``<platform.ecr.repository_prefix><source repository>`` in the
scientist account first. Images already in that account's ECR are used as they are, and so are images
in AWS's own registries (built-in algorithms and Deep Learning Containers): SageMaker pulls them
directly, and a copy would fail under the execution role's least-privilege policy. The later steps get
each image pinned by digest (an AWS-owned image given by tag keeps its tag, and its digest is None)::

    {"training_docker_image": {"image": "<ecr host>/<repo>@sha256:...", "digest": "sha256:...",
                               "source": "<as given>", "repository": "<repo>", "tag": "<tag>|None",
                               "action": "copied" | "already_copied" | "in_ecr" | "aws_owned"},
     "model_docker_image": {...} | None}

A copy keeps digests, skips blobs the target already has and is re-runnable after any interruption
(blobs are content-addressed and the manifest is written last); each copied digest then carries this
model's copy record, an extra tag teardown reads (``record_copy``). The copy itself is skopeo's
(``RegistryHook``); the source's credentials come from the engine (``source_credentials``): on
Airflow the platform's source-registry connection, on KFP none (anonymous, or another ECR through the
chain's session).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import (
    IMAGE_PARAMS,
    CopyLimits,
    ImageReference,
    ImageStep,
    ManifestError,
    TokenRealmRules,
    check_source_registry,
    derive_copy_record_tag,
    ecr_registry_host,
    is_index,
    manifest_media_type,
    plan_image_steps,
    render_registry_endpoint,
    select_platforms,
)
from sagelift.domain.plan import Plan
from sagelift.domain.platform import EcrSettings
from sagelift.steps.clients import Clients
from sagelift.steps.errors import StepFailed
from sagelift.steps.registry import (
    ImageNotFoundError,
    Manifest,
    RegistryAccess,
    RegistryCredentials,
    RegistryHook,
)

log = logging.getLogger(__name__)

SourceCredentials = Callable[[ImageReference], RegistryCredentials | None]


# --- ECR calls -----------------------------------------------------------------------------------------
def create_repository(
    ecr: Any, name: str, *, tags: list[dict[str, str]], scan_on_push: bool, tag_mutability: str
) -> bool:
    """Create the repository; False when it already exists (its settings are then left as they are)."""
    request: dict[str, Any] = {
        "repositoryName": name,
        "imageTagMutability": tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": scan_on_push},
    }
    if tags:
        request["tags"] = tags
    try:
        ecr.create_repository(**request)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        return False
    return True


def image_digest(ecr: Any, step: ImageStep, registry_id: str) -> str:
    """The digest of an image already in an ECR registry; ImageNotFoundError naming the image."""
    ref = step.source
    image_id = {"imageDigest": ref.digest} if ref.digest else {"imageTag": str(ref.tag)}
    try:
        response = ecr.describe_images(
            registryId=registry_id, repositoryName=ref.repository, imageIds=[image_id]
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise ImageNotFoundError(
                f"{step.param}: image {ref} not found in ECR: {err.response['Error'].get('Message', '')}"
            ) from None
        raise
    details = response.get("imageDetails") or []
    if not details:
        raise ImageNotFoundError(f"{step.param}: image {ref} not found in ECR")
    return str(details[0]["imageDigest"])


def registry_credentials(
    ecr: Any, registry_id: str, mask: Callable[[str], None] = lambda secret: None
) -> RegistryCredentials:
    """Basic-auth credentials for an ECR registry (GetAuthorizationToken, valid 12 hours)."""
    data = ecr.get_authorization_token(registryIds=[registry_id])["authorizationData"][0]
    mask(data["authorizationToken"])
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    mask(password)
    return RegistryCredentials(username=username, password=password)


# --- the copy ------------------------------------------------------------------------------------------
def _entry(step: ImageStep, image: str, digest: str | None, action: str) -> dict[str, Any]:
    return {
        "image": image,
        "digest": digest,
        "source": str(step.source),
        "repository": step.target_repository,
        "tag": step.target_tag or step.source.tag,
        "action": action,
    }


@dataclass(frozen=True)
class CopyOutcome:
    """What one copy left in the target: the digest the run uses, and that manifest's bytes and type
    (for the copy record)."""

    digest: str
    action: str  # "copied" | "already_copied"
    manifest: bytes = field(repr=False)
    media_type: str


def copy_image(
    registry: RegistryHook,
    step: ImageStep,
    source: RegistryAccess,
    target: RegistryAccess,
    settings: EcrSettings,
) -> CopyOutcome:
    """Copy one image unless the target tag already holds it."""
    manifest = registry.inspect(str(step.source), source)
    if step.source.digest and manifest.digest != step.source.digest:
        raise ImageNotFoundError(f"image {step.source} not found: the registry served {manifest.digest}")
    src_name = step.source.name
    dst_name = f"{target.host}/{step.target_repository}"
    dst_tagged = f"{dst_name}:{step.target_tag}"
    moves: list[tuple[str, str, bool]] = []  # (source, destination, all platforms)
    index: bytes | None = None
    kept = manifest  # the manifest the tag ends up naming
    if is_index(manifest.media_type, manifest.document):
        selection = select_platforms(str(step.source), manifest.document, settings.platforms)
        if selection.whole_index:
            moves.append((f"{src_name}@{manifest.digest}", dst_tagged, True))
        elif selection.index is None:
            child = f"{src_name}@{selection.entries[0]['digest']}"
            kept = registry.inspect(child, source)
            if kept.digest != selection.entries[0]["digest"]:
                raise ImageNotFoundError(f"image {child} not found: the registry served {kept.digest}")
            moves.append((child, dst_tagged, False))
        else:
            index = selection.index
            kept = Manifest.parse(index, str(step.source))
            moves += [
                (f"{src_name}@{e['digest']}", f"{dst_name}@{e['digest']}", False) for e in selection.entries
            ]
    else:
        moves.append((f"{src_name}@{manifest.digest}", dst_tagged, False))
    outcome = CopyOutcome(
        kept.digest, "copied", kept.raw, manifest_media_type(kept.media_type, kept.document)
    )

    present = registry.digest_if_present(dst_tagged, target)
    if present == outcome.digest:
        return replace(outcome, action="already_copied")
    if present is not None and settings.tag_mutability == "IMMUTABLE":
        raise SageliftValidationError.single(
            step.param,
            f"{step.target_repository}:{step.target_tag} in ECR holds another image ({present[:19]}) and its "
            "tags are immutable; pin by digest or use a new tag",
        )
    for src, dst, all_platforms in moves:
        written = registry.copy(src, source, dst, target, all_platforms=all_platforms)
        log.info("Copied %s to %s (%s)", src, dst, written)
    if index is not None:
        registry.push_index(index, dst_tagged, target)
    return outcome


def record_copy(ecr: Any, repository: str, outcome: CopyOutcome, model_name: str) -> str:
    """Tag the copied digest with this model's copy record (sagelift.domain.images.derive_copy_record_tag).

    PutImage with the manifest exactly as copied adds a tag to the existing image (allowed in IMMUTABLE
    repositories: no existing tag moves); a record left by an earlier run is found as it is.
    """
    tag = derive_copy_record_tag(model_name, outcome.digest)
    with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(
            repositoryName=repository,
            imageManifest=outcome.manifest.decode("utf-8"),
            imageManifestMediaType=outcome.media_type,
            imageTag=tag,
            imageDigest=outcome.digest,
        )
    return tag


def publish_images(
    plan: Plan,
    clients: Clients,
    tags: list[dict[str, str]],
    *,
    source_credentials: SourceCredentials | None,
    registry: RegistryHook | None = None,
    mask_secret: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Pin every image of the run by digest in the account's ECR, copying the ones from elsewhere.

    Each copy is recorded for the run's model on the copied digest (``record_copy``), so teardown can
    tell sagelift's copies for a model from everything else in the repository. ``mask_secret`` is told
    every registry password the step obtains (Airflow masks it in task logs).
    """
    mask = mask_secret or (lambda secret: None)
    settings = plan.platform.ecr
    account_id, region = plan.account_id, plan.region
    registry = registry or RegistryHook()
    registry.limits = CopyLimits.from_settings(settings)
    results: dict[str, Any] = dict.fromkeys(IMAGE_PARAMS)
    target: RegistryAccess | None = None
    for step in plan_image_steps(plan.params.to_dict(), account_id, region, settings.repository_prefix):
        if step.action == "aws_owned":
            # SageMaker pulls AWS's images itself; no call reaches AWS's registry from here
            results[step.param] = _entry(step, step.in_place, step.source.digest, "aws_owned")
            log.info("%s is AWS-owned: used in place", step.source)
            continue
        ecr = clients("ecr", region)
        if step.action == "in_ecr":
            digest = image_digest(ecr, step, account_id)
            results[step.param] = _entry(step, step.source.pinned(digest), digest, "in_ecr")
            continue
        # validate refuses these already; checked again where the worker opens connections
        check_source_registry(step.source, settings, plan.platform.accounts, step.param)
        if target is None:
            target = RegistryAccess(
                host=render_registry_endpoint(settings.registry_endpoint, account_id, region),
                credentials=registry_credentials(ecr, account_id, mask),
                ca_file=settings.registry_ca_file,
            )
        if create_repository(
            ecr,
            step.target_repository,
            tags=tags,
            scan_on_push=settings.scan_on_push,
            tag_mutability=settings.tag_mutability,
        ):
            log.info("Created ECR repository %s", step.target_repository)
        source = _source_access(step.source, settings, clients, region, source_credentials, mask)
        try:
            outcome = copy_image(registry, step, source, target, settings)
        except ManifestError as err:
            raise StepFailed(f"{step.param}: {err}") from None
        record_copy(ecr, step.target_repository, outcome, plan.model_name)
        ecr_name = f"{ecr_registry_host(account_id, region)}/{step.target_repository}"
        results[step.param] = _entry(step, f"{ecr_name}@{outcome.digest}", outcome.digest, outcome.action)
        log.info("%s -> %s (%s)", step.source, results[step.param]["image"], outcome.action)
    return results


def _source_access(
    ref: ImageReference,
    settings: EcrSettings,
    clients: Clients,
    region: str,
    source_credentials: SourceCredentials | None,
    mask: Callable[[str], None],
) -> RegistryAccess:
    """The engine's credentials for the source's host, another ECR through the session, else anonymous."""
    creds = source_credentials(ref) if source_credentials else None
    if creds is None and ref.ecr_account is not None:
        creds = registry_credentials(clients("ecr", ref.ecr_region or region), ref.ecr_account)
    return RegistryAccess(
        host=ref.registry,
        credentials=creds,
        ca_file=settings.registry_ca_file,
        realm_rules=TokenRealmRules.from_settings(settings),
    )


def skip_reason(results: Mapping[str, Any]) -> str | None:
    """Why nothing was copied (every image already in place), or None when something was."""
    if any(r and r["action"] == "copied" for r in results.values()):
        return None
    labels = {
        "in_ecr": "already in the account ECR",
        "already_copied": "already copied",
        "aws_owned": "AWS-owned",
    }
    parts = [
        f"{param}: {'not set' if r is None else labels.get(r['action'], r['action'])}"
        for param, r in results.items()
    ]
    return "nothing to copy (" + "; ".join(parts) + ")"
