"""Teardown: delete what sagemaker_deploy created for one model, and nothing else.

A resource is the model's only if its name has the shape a run gives it (``<model_name>`` or
``<model_name>-<run key>``) and it carries the model's owner tag (sagelift.domain.ownership), so a
look-alike made by someone else survives. Every delete is idempotent: a second teardown finds nothing
and succeeds. Training jobs cannot be deleted in SageMaker; they stay in the account's history. The model
registry (the model package group named after the model, and its versions) is the model's history too:
teardown never deletes it.

Copied images are the model's only through the copy record step 4 leaves on each digest it copies (the
tag ``sagelift.<model>.<digest hex>``, sagelift.domain.images.derive_copy_record_tag); an image in the
repositories under ``platform.ecr.repository_prefix`` without this model's record (pushed by the
scientist, copied by an older version, or only for other models) is never deleted. A recorded digest
is deleted only when no other model recorded it and no SageMaker model left in the account (in the
run's region) uses it, by digest or by a tag naming it. When another model recorded it too, only this
model's record goes; when a remaining model uses it, image and record stay, so a later teardown can
finish once it is free. Deletes remove the image's tags (the image goes with its last tag): a record
another model's copy adds meanwhile keeps the image alive, where a delete by digest would not.

A repository under the prefix goes too once it holds no image at all (tagged or not) and sagelift created
it for this model: step 4 creates it with the run's tags, whose owner tag names the model, and an existing
repository is used as it is, untagged. A repository the scientist made, one created for another model,
or one still holding any image stays. (Created for model A and shared by B: B's teardown leaves it; A's
next teardown finds it empty and deletes it.) DeleteRepository without ``force`` refuses a repository an
image reached meanwhile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sagelift.domain.autoscaling import derive_resource_id
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import ecr_registry_host, parse_copy_record_tag, parse_image_reference
from sagelift.domain.ownership import is_owned, is_per_run_name, owner_of
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import VARIANT_NAME
from sagelift.steps.alarms import delete_model_alarms
from sagelift.steps.autoscaling import remove_scaling
from sagelift.steps.endpoint import delete_endpoint, list_tags
from sagelift.steps.errors import StepFailed, delete_if_exists, describe_or_none
from sagelift.steps.monitoring import delete_monitoring

log = logging.getLogger(__name__)


def _names(client: Any, operation: str, key: str, name_key: str, name_contains: str) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator(operation).paginate(NameContains=name_contains):
        names.extend(item[name_key] for item in page.get(key, []))
    return names


def delete_sagemaker_resources(
    client: Any,
    model_name: str,
    settings: SageMakerSettings,
    cloudwatch: Any = None,
    autoscaling: Any = None,
) -> dict[str, Any]:
    """Delete the model's endpoint (waiting until it is gone), then its endpoint configs and models, and
    with ``cloudwatch`` the alarms sagelift created to guard its updates; returns the names deleted, by
    kind. With ``autoscaling``, the endpoint variant's scaling policy and scalable target go first
    (when the endpoint is the model's, or gone: a target left on a deleted endpoint)."""
    deleted: dict[str, list[str]] = {"endpoint": [], "endpoint_configs": [], "models": []}
    if cloudwatch is not None:  # a monitored endpoint: its schedule goes before the endpoint can
        deleted["monitoring"] = delete_monitoring(client, cloudwatch, model_name, owner=model_name)
    endpoint = describe_or_none(client.describe_endpoint, EndpointName=model_name)
    if autoscaling is not None:
        deleted["scalable_targets"] = []
        ours = endpoint is None or is_owned(list_tags(client, endpoint["EndpointArn"]), model_name)
        if ours and remove_scaling(autoscaling, model_name, VARIANT_NAME):
            deleted["scalable_targets"].append(derive_resource_id(model_name, VARIANT_NAME))
    if (
        endpoint is not None
        and is_owned(list_tags(client, endpoint["EndpointArn"]), model_name)
        and delete_endpoint(client, model_name, settings)
    ):
        deleted["endpoint"].append(model_name)

    for name in _names(client, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", model_name):
        if not is_per_run_name(name, model_name):
            continue
        config = describe_or_none(client.describe_endpoint_config, EndpointConfigName=name)
        if config is None or not is_owned(list_tags(client, config["EndpointConfigArn"]), model_name):
            continue
        if delete_if_exists(client.delete_endpoint_config, EndpointConfigName=name):
            deleted["endpoint_configs"].append(name)

    for name in _names(client, "list_models", "Models", "ModelName", model_name):
        if not is_per_run_name(name, model_name):
            continue
        model = describe_or_none(client.describe_model, ModelName=name)
        if model is None or not is_owned(list_tags(client, model["ModelArn"]), model_name):
            continue
        if delete_if_exists(client.delete_model, ModelName=name):
            deleted["models"].append(name)
    for kind, names in deleted.items():
        log.info("Deleted %s: %s", kind, ", ".join(names) or "none left")
    if cloudwatch is not None:
        deleted["alarms"] = delete_model_alarms(cloudwatch, model_name)
    return dict(deleted)


def model_images(model: dict[str, Any], sagemaker: Any = None) -> list[str]:
    """The images a SageMaker model's containers run; with ``sagemaker``, also those of the registered
    version a container names (``ModelPackageName``), whose image the model runs."""
    containers = [c for c in [model.get("PrimaryContainer"), *model.get("Containers", [])] if c]
    images = [str(c["Image"]) for c in containers if c.get("Image")]
    for container in containers:
        package = container.get("ModelPackageName")
        if not package or sagemaker is None:
            continue
        described = describe_or_none(sagemaker.describe_model_package, ModelPackageName=package) or {}
        for spec in (described.get("InferenceSpecification") or {}).get("Containers", []):
            if spec.get("Image"):
                images.append(str(spec["Image"]))
    return images


# --- copied images --------------------------------------------------------------------------------------
@dataclass
class ImageTeardown:
    """What happened to each image recorded for the model (``host/repository@digest``)."""

    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # another model recorded it: only this record went
    kept: list[str] = field(default_factory=list)  # "<image> (<why>)": still used, image and record stay
    # repositories deleted: left empty, and created by sagelift for the model
    repositories: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, list[str]]:
        return asdict(self)


@dataclass
class _Repository:
    name: str
    arn: str = ""
    tags_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # digest -> tags
    digest_of: dict[str, str] = field(default_factory=dict)  # tag -> digest


def delete_copied_images(
    ecr: Any, sagemaker: Any, model_name: str, account_id: str, region: str, repository_prefix: str
) -> ImageTeardown:
    """Delete the images step 4 copied for ``model_name`` that nothing else holds (see the module doc)."""
    result = ImageTeardown()
    listed = list(_repositories_under(ecr, repository_prefix))
    repositories = [r for r in listed if _records_of(r, model_name)]
    # repositories that may be left empty: no tagged image (a copy that failed after creating it), or
    # every tagged image deleted below
    emptied = [r for r in listed if not r.tags_of]
    if not repositories:
        log.info("No image carries a copy record of model %s: nothing to delete.", model_name)
        result.repositories = _delete_empty_repositories(ecr, emptied, model_name)
        return result
    host = ecr_registry_host(account_id, region)
    users = images_in_use(sagemaker, host, {r.name: r for r in repositories})
    for repository in repositories:
        for digest, mine in _records_of(repository, model_name).items():
            image = f"{host}/{repository.name}@{digest}"
            tags = repository.tags_of[digest]
            others = sorted(
                {m for t in tags if (m := parse_copy_record_tag(t, digest)) not in (None, model_name)}
            )
            if others:
                _delete_tags(ecr, repository.name, mine, image)
                result.released.append(image)
                log.info("Keeping %s for model %s; removed model %s's record.", image, others[0], model_name)
            elif (repository.name, digest) in users:
                used_by = ", ".join(sorted(users[(repository.name, digest)])[:3])
                result.kept.append(f"{image} (used by SageMaker model {used_by})")
                log.info("Keeping %s: SageMaker model %s still uses it.", image, used_by)
            elif _delete_tags(ecr, repository.name, tags, image):
                result.deleted.append(image)
                log.info("Deleted %s (tags: %s).", image, ", ".join(tags))
            else:
                result.kept.append(f"{image} (an image index in the repository lists it)")
        gone = {
            image.rsplit("@", 1)[1]
            for image in result.deleted
            if image.startswith(f"{host}/{repository.name}@")
        }
        if set(repository.tags_of) <= gone:
            emptied.append(repository)
    result.repositories = _delete_empty_repositories(ecr, emptied, model_name)
    return result


def _delete_empty_repositories(ecr: Any, candidates: list[_Repository], model_name: str) -> list[str]:
    """Delete each candidate that holds no image and carries this model's owner tag; the names deleted."""
    deleted: list[str] = []
    for repository in candidates:
        try:
            tags = ecr.list_tags_for_resource(resourceArn=repository.arn).get("tags", [])
            if owner_of(tags) != model_name:
                continue  # the scientist's own, or created for another model
            if any(
                page.get("imageIds")
                for page in ecr.get_paginator("list_images").paginate(repositoryName=repository.name)
            ):
                log.info("Keeping ECR repository %s: it still holds images.", repository.name)
                continue
            ecr.delete_repository(repositoryName=repository.name)  # no force: refuses if an image came
        except ecr.exceptions.RepositoryNotFoundException:
            continue  # deleted meanwhile
        except ecr.exceptions.RepositoryNotEmptyException:
            log.info("Keeping ECR repository %s: an image reached it meanwhile.", repository.name)
            continue
        deleted.append(repository.name)
        log.info(
            "Deleted ECR repository %s: empty, created by sagelift for model %s.", repository.name, model_name
        )
    return deleted


def _records_of(repository: _Repository, model_name: str) -> dict[str, list[str]]:
    """digest -> this model's record tags on it."""
    found: dict[str, list[str]] = {}
    for digest, tags in repository.tags_of.items():
        mine = [t for t in tags if parse_copy_record_tag(t, digest) == model_name]
        if mine:
            found[digest] = mine
    return found


def _repositories_under(ecr: Any, prefix: str) -> Iterable[_Repository]:
    """Each repository whose name starts with ``prefix``, with its tagged images (one listing each)."""
    for page in ecr.get_paginator("describe_repositories").paginate():
        for item in page.get("repositories", []):
            name = str(item["repositoryName"])
            if not name.startswith(prefix):
                continue
            repository = _Repository(name, str(item.get("repositoryArn", "")))
            try:
                pages = ecr.get_paginator("list_images").paginate(
                    repositoryName=name, filter={"tagStatus": "TAGGED"}
                )
                for listing in pages:
                    for image_id in listing.get("imageIds", []):
                        tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
                        if tag and digest:
                            repository.tags_of[digest].append(tag)
                            repository.digest_of[tag] = digest
            except ecr.exceptions.RepositoryNotFoundException:
                continue  # deleted since it was listed
            yield repository


def images_in_use(
    sagemaker: Any, host: str, repositories: Mapping[str, _Repository]
) -> dict[tuple[str, str], set[str]]:
    """(repository, digest) -> the SageMaker models in the account that run it, for ``repositories`` of
    the account's ECR at ``host``; a model naming an image by tag counts for the digest the tag names."""
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for page in sagemaker.get_paginator("list_models").paginate():
        for summary in page.get("Models", []):
            name = str(summary["ModelName"])
            model = describe_or_none(sagemaker.describe_model, ModelName=name)
            for image in model_images(model or {}, sagemaker):
                try:
                    ref = parse_image_reference(image, "Image")
                except SageliftValidationError:
                    continue
                repository = repositories.get(ref.repository) if ref.registry == host else None
                if repository is None:
                    continue
                digest = ref.digest or repository.digest_of.get(str(ref.tag))
                if digest is not None:
                    users[(ref.repository, digest)].add(name)
    return users


def _delete_tags(ecr: Any, repository: str, tags: list[str], image: str) -> bool:
    """Remove ``tags`` from the repository (the image goes with its last tag); False when ECR keeps the
    image because an image index lists it. Tags already gone count as removed."""
    for start in range(0, len(tags), 100):
        try:
            response = ecr.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageTag": t} for t in tags[start : start + 100]]
            )
        except ecr.exceptions.RepositoryNotFoundException:
            return True
        for failure in response.get("failures", []):
            code = failure.get("failureCode")
            if code == "ImageNotFound":
                continue
            if code == "ImageReferencedByManifestList":
                return False
            raise StepFailed(
                f"delete_images: ECR refused to delete {image}: {code} {failure.get('failureReason', '')}"
            )
    return True
