"""Step 3, resolve_tags: the organisation's standard tags from S3, merged with the run's own.

The document (the platform's ``tags_s3_uri``, or the run's ``tags_s3_path``) is read in the scientist
account's session, so the execution role needs ``s3:GetObject`` on it. The merged list, in the AWS list
form, goes on every resource the run creates.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.plan import Plan
from sagelift.domain.preflight import tag_document_problem
from sagelift.domain.tags import derive_run_tags, merge_tags, parse_tag_document
from sagelift.steps.errors import StepFailed, classify, error_code

log = logging.getLogger(__name__)

# The document is small by nature (50 tags at most); anything larger is refused unread.
MAX_DOCUMENT_BYTES = 256 * 1024


def read_tag_document(s3: Any, uri: str) -> list[dict[str, str]]:
    """The standard tags in the document at ``uri``; a missing or unreadable document is final."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        code = error_code(err)
        if classify(err) == "transient":
            raise
        if classify(err) == "not_found":
            raise StepFailed(f"tags: the tag document {uri} does not exist ({code})") from None
        if code in ("AccessDenied", "403"):
            raise StepFailed(
                f"tags: the scientist account's execution role may not read {uri} (AccessDenied); "
                "grant it s3:GetObject on the tag document"
            ) from None
        raise StepFailed(f"tags: cannot read the tag document {uri} ({code})") from None
    size = int(response.get("ContentLength") or 0)
    if size > MAX_DOCUMENT_BYTES:
        raise StepFailed(f"tags: the tag document {uri} is {size} bytes; at most {MAX_DOCUMENT_BYTES}")
    body = response["Body"].read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise StepFailed(f"tags: the tag document {uri} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return parse_tag_document(body, uri)


def resolve_tags(plan: Plan, s3: Any) -> list[dict[str, str]]:
    """The standard tags (when a document is configured) plus the run's own; the run's tags win a clash."""
    run_tags = derive_run_tags(
        model_name=plan.params.model_name,
        dag_id=plan.dag_id,
        run_id=plan.run_id,
        account_id=plan.account_id,
        triggered_by=plan.triggered_by,
    )
    uri = plan.params.tags_s3_path or plan.platform.tags_s3_uri
    if plan.params.tags_s3_path is not None:  # validate refuses these already; checked where it is read
        problem = tag_document_problem(plan.params.tags_s3_path, plan.platform)
        if problem is not None:
            raise StepFailed(f"tags_s3_path: {problem}")
    standard: list[dict[str, str]] = []
    if uri is None:
        log.info("No standard tag document configured (platform tags_s3_uri); using run tags only.")
    else:
        standard = read_tag_document(s3, uri)
        log.info("Read %d standard tags from %s.", len(standard), uri)
    merged = merge_tags(standard, run_tags)
    log.info("Tags for every resource of this run: %s", ", ".join(f"{t['Key']}={t['Value']}" for t in merged))
    return merged
