"""Step 6, create_model: register the run's SageMaker model, replacing one of the same name.

The model's name is the run's (``<model_name>-<run key>``); an existing model of that name was made by
an earlier try of this run (a retry, a lost answer), and is replaced, as the original pipeline did, so
the model always holds this try's image and artifact. A run that registered its model (register_model)
builds the model from that version (``PrimaryContainer.ModelPackageName``): the endpoint serves exactly
the registered image digest and artifact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import build_model_request
from sagelift.steps.errors import delete_if_exists, describe_or_none, error_code

log = logging.getLogger(__name__)


def model_request(
    plan: Plan,
    tags: list[dict[str, str]],
    images: Mapping[str, Any] | None,
    model_data_url: str,
    model_package_arn: str | None = None,
) -> dict[str, Any]:
    """The model of the run's registered version (register_model's ``model_package_arn``), or of the
    image and artifact when nothing was registered."""
    return build_model_request(
        plan.params,
        plan.names,
        region=plan.region,
        role_arn=plan.platform.model_role_arn(plan.account_id),
        model_data_url=model_data_url,
        tags=tags,
        copied_images=images,
        network=plan.platform.account(plan.account_id).network,
        model_package_arn=model_package_arn,
    )


def replace_model(client: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Create the model (deleting an earlier one of the same name first); returns its description."""
    name = str(request["ModelName"])
    if describe_or_none(client.describe_model, ModelName=name) is not None:
        log.info("Model %s exists already; deleting it before creating it again.", name)
        delete_if_exists(client.delete_model, ModelName=name)
    try:
        client.create_model(**request)
    except ClientError as err:
        # Processed, answer lost, retried by botocore: the model is the one just requested.
        if error_code(err) != "ValidationException" or "already exist" not in str(err):
            raise
        log.info("Model %s was created by the retried request.", name)
    container = request["PrimaryContainer"]
    log.info("Created model %s (%s).", name, container.get("ModelPackageName") or container.get("Image"))
    return dict(client.describe_model(ModelName=name))
