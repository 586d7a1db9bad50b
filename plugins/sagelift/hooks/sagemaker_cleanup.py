"""SageMaker calls for teardown: find a model's endpoint, endpoint configs and models, and delete them.

One method per remote call (plus paginated listing), in the scientist account's session. The Amazon
provider's SageMakerHook has no delete or list-by-name methods for these resources, hence this hook.
A missing resource is reported as None or False, never raised: teardown is idempotent.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError


def _not_found(err: ClientError) -> bool:
    # SageMaker answers operations on a missing resource with ValidationException "Could not find ...".
    return err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound")


class SageMakerCleanupHook(AwsBaseHook):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    @property
    def client(self) -> Any:
        return self.conn

    def _names(self, operation: str, key: str, name_key: str, name_contains: str) -> list[str]:
        names: list[str] = []
        for page in self.client.get_paginator(operation).paginate(NameContains=name_contains):
            names.extend(item[name_key] for item in page.get(key, []))
        return names

    def list_model_names(self, name_contains: str) -> list[str]:
        return self._names("list_models", "Models", "ModelName", name_contains)

    def list_endpoint_config_names(self, name_contains: str) -> list[str]:
        return self._names("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", name_contains)

    def _describe(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as err:
            if _not_found(err):
                return None
            raise

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_endpoint", EndpointName=name)

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_endpoint_config", EndpointConfigName=name)

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_model", ModelName=name)

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = []
        for page in self.client.get_paginator("list_tags").paginate(ResourceArn=arn):
            tags.extend(page.get("Tags", []))
        return tags

    def _delete(self, operation: str, **kwargs: Any) -> bool:
        try:
            getattr(self.client, operation)(**kwargs)
        except ClientError as err:
            if _not_found(err):
                return False
            raise
        return True

    def delete_endpoint(self, name: str) -> bool:
        return self._delete("delete_endpoint", EndpointName=name)

    def wait_for_endpoint_deleted(self, name: str, delay: int, max_attempts: int) -> None:
        self.client.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete("delete_endpoint_config", EndpointConfigName=name)

    def delete_model(self, name: str) -> bool:
        return self._delete("delete_model", ModelName=name)
