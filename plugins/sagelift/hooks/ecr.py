"""The ECR hook: the provider's ``EcrHook`` on the scientist account's connection.

The image copy's ECR calls are the core's (sagelift.steps.images), made on this hook's client; what
stays here is what only the Airflow side does with ECR (teardown's deletes).
"""

from __future__ import annotations

from typing import Any, cast

from airflow.providers.amazon.aws.hooks.ecr import EcrHook as ProviderEcrHook

from sagelift.hooks.caller import QuickCallerLookup


class EcrHook(QuickCallerLookup, ProviderEcrHook):
    @property
    def client(self) -> Any:
        """The boto3 ECR client (typed loosely: the provider types ``conn`` as a generic client)."""
        return cast(Any, self.conn)

    def delete_image(self, repository: str, digest: str) -> bool:
        """Delete every tag of the image; False when the image or its repository is already gone."""
        try:
            response = self.client.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageDigest": digest}]
            )
        except self.client.exceptions.RepositoryNotFoundException:
            return False
        return bool(response.get("imageIds"))
