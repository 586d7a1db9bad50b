"""ECR API calls for step 4, made in the scientist account's session.

Builds on the Amazon provider's EcrHook (its ``get_temporary_credentials`` decodes the token and masks the
password in task logs). One method per remote call; the copy itself is in ``sagelift.hooks.registry``.
"""

from __future__ import annotations

from typing import Any, cast

from airflow.providers.amazon.aws.hooks.ecr import EcrHook as ProviderEcrHook

from sagelift.hooks.registry import ImageNotFoundError, RegistryCredentials


class EcrHook(ProviderEcrHook):
    """The scientist account's ECR: repositories, image digests and registry credentials."""

    @property
    def client(self) -> Any:
        """The boto3 ECR client (typed loosely: the provider types ``conn`` as a generic client)."""
        return cast(Any, self.conn)

    def create_repository(
        self, name: str, *, tags: list[dict[str, str]], scan_on_push: bool, tag_mutability: str
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
            self.client.create_repository(**request)
        except self.client.exceptions.RepositoryAlreadyExistsException:
            return False
        return True

    def describe_image_digest(
        self,
        repository: str,
        registry_id: str,
        *,
        tag: str | None = None,
        digest: str | None = None,
        image: str = "",
    ) -> str:
        """The digest of an image in this account's ECR; raises ImageNotFoundError naming ``image``."""
        image_id = {"imageDigest": digest} if digest else {"imageTag": str(tag)}
        try:
            response = self.client.describe_images(
                registryId=registry_id, repositoryName=repository, imageIds=[image_id]
            )
        except (
            self.client.exceptions.ImageNotFoundException,
            self.client.exceptions.RepositoryNotFoundException,
        ) as err:
            raise ImageNotFoundError(
                f"image {image or repository} not found in ECR: {err.response['Error'].get('Message', '')}"
            ) from err
        details = response.get("imageDetails") or []
        if not details:
            raise ImageNotFoundError(f"image {image or repository} not found in ECR")
        return str(details[0]["imageDigest"])

    def registry_credentials(self, registry_id: str) -> RegistryCredentials:
        """Basic-auth credentials for the account's registry (GetAuthorizationToken, valid 12 hours)."""
        creds = self.get_temporary_credentials(registry_ids=[registry_id])[0]
        return RegistryCredentials(username=creds.username, password=creds.password)
