"""Teardown: delete what sagemaker_deploy created for one model, and nothing else.

A resource is the model's only if its name has the shape a run gives it (``<model_name>`` or
``<model_name>-<run key>``) and it carries the model's owner tag (sagelift.domain.ownership), so a
look-alike made by someone else survives. Every delete is idempotent: a second teardown finds nothing
and succeeds. Training jobs cannot be deleted in SageMaker; they stay in the account's history.
"""

from __future__ import annotations

import logging
from typing import Any

from sagelift.domain.ownership import is_owned, is_per_run_name
from sagelift.domain.platform import SageMakerSettings
from sagelift.steps.endpoint import delete_endpoint, list_tags
from sagelift.steps.errors import delete_if_exists, describe_or_none

log = logging.getLogger(__name__)


def _names(client: Any, operation: str, key: str, name_key: str, name_contains: str) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator(operation).paginate(NameContains=name_contains):
        names.extend(item[name_key] for item in page.get(key, []))
    return names


def delete_sagemaker_resources(client: Any, model_name: str, settings: SageMakerSettings) -> dict[str, Any]:
    """Delete the model's endpoint (waiting until it is gone), then its endpoint configs and models.

    Returns what was deleted and the images the deleted models used (for deleting copied images).
    """
    deleted: dict[str, list[str]] = {"endpoint": [], "endpoint_configs": [], "models": []}
    endpoint = describe_or_none(client.describe_endpoint, EndpointName=model_name)
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

    images: list[str] = []
    for name in _names(client, "list_models", "Models", "ModelName", model_name):
        if not is_per_run_name(name, model_name):
            continue
        model = describe_or_none(client.describe_model, ModelName=name)
        if model is None or not is_owned(list_tags(client, model["ModelArn"]), model_name):
            continue
        images += model_images(model)
        if delete_if_exists(client.delete_model, ModelName=name):
            deleted["models"].append(name)
    for kind, names in deleted.items():
        log.info("Deleted %s: %s", kind, ", ".join(names) or "none left")
    return {**deleted, "model_images": sorted(set(images))}


def model_images(model: dict[str, Any]) -> list[str]:
    """The images a SageMaker model's containers run."""
    return [
        str(container["Image"])
        for container in [model.get("PrimaryContainer"), *model.get("Containers", [])]
        if container and container.get("Image")
    ]
