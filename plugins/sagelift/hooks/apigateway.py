"""API Gateway REST API calls for step 8, one method per remote call, plus finding and removing a model's API.

Every call goes through the scientist account's Airflow AWS connection (the ``aws_conn_id`` that
``assume_role_chain`` pushed), so the API, its stage, usage plan and key all live in that account.
Request bodies come from ``sagelift.domain.apigateway`` and are sent unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError

from sagelift.domain.apigateway import api_stages_of, select_owned

NOT_FOUND = "NotFoundException"


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == NOT_FOUND


def _strip_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@dataclass
class ApiRemoval:
    """What ``remove_model_api`` deleted; all empty when there was nothing to do."""

    api_ids: list[str] = field(default_factory=list)
    usage_plan_ids: list[str] = field(default_factory=list)
    api_key_ids: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.api_ids or self.usage_plan_ids or self.api_key_ids)


class ApiGatewayHook(AwsBaseHook):
    """Thin wrapper around ``boto3.client("apigateway")``; extra arguments go to AwsBaseHook."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "apigateway"
        super().__init__(*args, **kwargs)

    @property
    def client(self) -> Any:
        """The boto3 API Gateway client (AwsBaseHook caches it)."""
        return self.conn

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get("items", []))
        return items

    # --- REST APIs -------------------------------------------------------------------------------
    def list_rest_apis(self) -> list[dict[str, Any]]:
        return self._all("get_rest_apis")

    def create_rest_api(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _strip_metadata(self.client.create_rest_api(**request))

    def update_rest_api(self, api_id: str, patch_operations: list[dict[str, str]]) -> dict[str, Any]:
        return _strip_metadata(
            self.client.update_rest_api(restApiId=api_id, patchOperations=patch_operations)
        )

    def delete_rest_api(self, api_id: str) -> bool:
        """Delete the API; False when it was already gone."""
        try:
            self.client.delete_rest_api(restApiId=api_id)
        except ClientError as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> None:
        self.client.tag_resource(resourceArn=arn, tags=dict(tags))

    def find_apis(self, name: str, model_name: str) -> list[dict[str, Any]]:
        """The model's APIs (name and owner tag both match), oldest first; normally zero or one."""
        return [dict(item) for item in select_owned(self.list_rest_apis(), name, model_name)]

    def find_api(self, name: str, model_name: str) -> dict[str, Any] | None:
        found = self.find_apis(name, model_name)
        if len(found) > 1:
            self.log.warning(
                "%d APIs named %s are tagged for model %s (%s); using the oldest, %s",
                len(found),
                name,
                model_name,
                ", ".join(a["id"] for a in found),
                found[0]["id"],
            )
        return found[0] if found else None

    # --- resources, methods, integrations --------------------------------------------------------
    def list_resources(self, api_id: str) -> list[dict[str, Any]]:
        return self._all("get_resources", restApiId=api_id)

    def create_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _strip_metadata(self.client.create_resource(**request))

    def get_method(self, api_id: str, resource_id: str, http_method: str) -> dict[str, Any] | None:
        try:
            return _strip_metadata(
                self.client.get_method(restApiId=api_id, resourceId=resource_id, httpMethod=http_method)
            )
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise

    def put_method(self, request: Mapping[str, Any]) -> None:
        self.client.put_method(**request)

    def delete_method(self, api_id: str, resource_id: str, http_method: str) -> None:
        self.client.delete_method(restApiId=api_id, resourceId=resource_id, httpMethod=http_method)

    def put_method_response(self, request: Mapping[str, Any]) -> None:
        self.client.put_method_response(**request)

    def delete_method_response(
        self, api_id: str, resource_id: str, http_method: str, status_code: str
    ) -> None:
        self.client.delete_method_response(
            restApiId=api_id, resourceId=resource_id, httpMethod=http_method, statusCode=status_code
        )

    def put_integration(self, request: Mapping[str, Any]) -> None:
        self.client.put_integration(**request)

    def put_integration_response(self, request: Mapping[str, Any]) -> None:
        self.client.put_integration_response(**request)

    # --- deployments and stages ------------------------------------------------------------------
    def create_deployment(self, request: Mapping[str, Any]) -> str:
        return self.client.create_deployment(**request)["id"]

    def get_stage(self, api_id: str, stage_name: str) -> dict[str, Any] | None:
        try:
            return _strip_metadata(self.client.get_stage(restApiId=api_id, stageName=stage_name))
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise

    def create_stage(self, request: Mapping[str, Any]) -> None:
        self.client.create_stage(**request)

    def update_stage(self, api_id: str, stage_name: str, patch_operations: list[dict[str, str]]) -> None:
        self.client.update_stage(restApiId=api_id, stageName=stage_name, patchOperations=patch_operations)

    # --- usage plans and API keys ----------------------------------------------------------------
    def list_usage_plans(self) -> list[dict[str, Any]]:
        return self._all("get_usage_plans")

    def create_usage_plan(self, request: Mapping[str, Any]) -> str:
        return self.client.create_usage_plan(**request)["id"]

    def update_usage_plan(self, plan_id: str, patch_operations: list[dict[str, str]]) -> None:
        self.client.update_usage_plan(usagePlanId=plan_id, patchOperations=patch_operations)

    def delete_usage_plan(self, plan_id: str) -> None:
        self.client.delete_usage_plan(usagePlanId=plan_id)

    def list_usage_plan_key_ids(self, plan_id: str) -> list[str]:
        return [item["id"] for item in self._all("get_usage_plan_keys", usagePlanId=plan_id)]

    def create_usage_plan_key(self, plan_id: str, key_id: str) -> None:
        self.client.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")

    def delete_usage_plan_key(self, plan_id: str, key_id: str) -> None:
        self.client.delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)

    def list_api_keys(self, name: str) -> list[dict[str, Any]]:
        """Keys whose name starts with ``name``, without their secret values."""
        return self._all("get_api_keys", nameQuery=name, includeValues=False)

    def create_api_key(self, request: Mapping[str, Any]) -> str:
        """Create a key and return only its id: the generated value is a secret and is dropped here."""
        return self.client.create_api_key(**request)["id"]

    def delete_api_key(self, key_id: str) -> None:
        self.client.delete_api_key(apiKey=key_id)

    # --- removal ---------------------------------------------------------------------------------
    def remove_model_api(self, api_name: str, model_name: str) -> ApiRemoval:
        """Delete the model's API with its usage plan and key; removing again finds nothing and succeeds.

        Only items carrying both the API's name and the model's owner tag are touched, so an API someone
        else gave the same name survives. The usage plan is detached from the API's stages first, as
        API Gateway refuses to delete a plan that still names a stage.
        """
        removal = ApiRemoval()
        api_ids = [api["id"] for api in self.find_apis(api_name, model_name)]
        for plan in select_owned(self.list_usage_plans(), api_name, model_name):
            stages = api_stages_of(plan, api_ids)
            detach = [{"op": "remove", "path": "/apiStages", "value": stage} for stage in stages]
            if detach:
                self.update_usage_plan(plan["id"], detach)
            for key_id in self.list_usage_plan_key_ids(plan["id"]):
                self.delete_usage_plan_key(plan["id"], key_id)
            self.delete_usage_plan(plan["id"])
            removal.usage_plan_ids.append(plan["id"])
        for key in select_owned(self.list_api_keys(api_name), api_name, model_name):
            self.delete_api_key(key["id"])
            removal.api_key_ids.append(key["id"])
        for api_id in api_ids:
            if self.delete_rest_api(api_id):
                removal.api_ids.append(api_id)
        return removal
