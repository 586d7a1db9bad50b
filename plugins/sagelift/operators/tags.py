"""Step 3, resolve_tags: the organisation's standard tags from S3, merged with the run's own."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import plan_params
from sagelift.domain.tags import derive_run_tags, merge_tags, parse_tag_document
from sagelift.operators.run_inputs import pull_run_inputs


class S3ResolveTagsOperator(BaseOperator):
    """Read the standard tag document (platform tags_s3_uri, or the run's tags_s3_path), add run tags.

    The document is read in the scientist account's session, so the execution role needs s3:GetObject
    on it. Returns the merged tags in the AWS list form; every later step applies them.
    """

    ui_color = "#f3f0ff"

    def execute(self, context: Any) -> list[dict[str, str]]:
        inputs = pull_run_inputs(context)
        params = plan_params(inputs.plan)
        platform = inputs.platform
        run_tags = derive_run_tags(
            model_name=params.model_name,
            dag_id=inputs.plan["dag_id"],
            run_id=inputs.plan["run_id"],
            account_id=params.account_id,
        )
        uri = params.tags_s3_path or platform.tags_s3_uri
        standard: list[dict[str, str]] = []
        if uri is None:
            self.log.info("No standard tag document configured (platform tags_s3_uri); using run tags only.")
        else:
            standard = self._read_document(uri, inputs.aws_conn_id, inputs.region)
            self.log.info("Read %d standard tags from %s.", len(standard), uri)
        try:
            merged = merge_tags(standard, run_tags)
        except SageliftValidationError as err:
            raise AirflowFailException(str(err)) from None
        self.log.info(
            "Tags for every resource of this run: %s", ", ".join(f"{t['Key']}={t['Value']}" for t in merged)
        )
        return merged

    def _read_document(self, uri: str, aws_conn_id: str, region: str) -> list[dict[str, str]]:
        bucket, key = S3Hook.parse_s3_url(uri)
        hook = S3Hook(aws_conn_id=aws_conn_id, region_name=region)
        try:
            client: Any = hook.get_conn()
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                raise AirflowFailException(f"tags: the tag document {uri} does not exist ({code}).") from None
            if code in ("AccessDenied", "403"):
                raise AirflowFailException(
                    f"tags: the scientist account's execution role may not read {uri} (AccessDenied); "
                    "grant it s3:GetObject on the tag document."
                ) from None
            raise
        try:
            return parse_tag_document(body, uri)
        except SageliftValidationError as err:
            raise AirflowFailException(str(err)) from None
