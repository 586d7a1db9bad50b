"""ECR calls for teardown: delete images sagelift copied into the scientist account, by digest."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


class EcrCleanupHook(AwsBaseHook):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "ecr"
        super().__init__(*args, **kwargs)

    def delete_image(self, repository: str, digest: str) -> bool:
        """Delete every tag of the image; False when the image or its repository is already gone."""
        client: Any = self.conn
        try:
            response = client.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageDigest": digest}]
            )
        except client.exceptions.RepositoryNotFoundException:
            return False
        return bool(response.get("imageIds"))
