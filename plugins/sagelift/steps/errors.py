"""How every step classifies what goes wrong, in one place.

A step ends in one of three ways besides success, and each engine maps them the same way:

| kind | raised as | examples | Airflow | KFP |
|---|---|---|---|---|
| refusal | ``StepFailed`` | AccessDenied, a trust policy or ExternalId that does not allow a hop, a validation error, a training job Failed or Stopped, an endpoint Failed or rolled back, a resource sagelift does not own | the task fails without retries | the component fails |
| transient | ``StepRetry``, or the botocore error itself once botocore's own retries are spent | throttling, HTTP 5xx, timeouts, dropped connections, an endpoint another deploy is changing, a run of the same model holding the lock | the task is retried (its ``retries`` with exponential backoff) | the component fails; KFP's retry policy reruns it |
| not found | the step's own decision (create, adopt or skip) | ``ValidationException: Could not find ...``, ``ResourceNotFound``, ``NotFoundException``, ``NoSuchKey`` | - | - |

Every client the steps use comes from a session with botocore's ``standard`` retry mode (10 attempts
with jittered exponential backoff), so a throttle or a 500 is retried inside the call first; only when
those attempts are spent does a transient error reach the step, which re-raises it for the engine's
task-level retry. ``classify`` is the one function that decides refusal versus transient for an AWS
error; ``is_not_found`` the one that recognises a missing resource.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

Kind = Literal["refused", "transient", "not_found"]

NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "NotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchEntity",
        "RepositoryNotFoundException",
        "ImageNotFoundException",
        "404",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "IDPCommunicationError",
        "EC2ThrottledException",
        "ConflictException",
        "ResourceInUse",
        "ConcurrentModificationException",
    }
)


class StepFailed(RuntimeError):
    """A final outcome: retrying the same step cannot succeed. The message says what and why."""


class StepRetry(RuntimeError):
    """A transient state: the same step, run again later, can succeed."""


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def http_status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_not_found(err: ClientError) -> bool:
    """A missing resource, as each service says it (SageMaker says ``ValidationException: Could not find``)."""
    code = error_code(err)
    if code in NOT_FOUND_CODES:
        return True
    message = str(err.response.get("Error", {}).get("Message", ""))
    return code == "ValidationException" and (
        message.startswith("Could not find") or "does not exist" in message
    )


def classify(err: BaseException) -> Kind:
    """refused, transient or not_found, for an error raised by a boto call."""
    if isinstance(err, ClientError):
        if is_not_found(err):
            return "not_found"
        if error_code(err) in TRANSIENT_CODES or http_status(err) >= 500 or http_status(err) == 429:
            return "transient"
        return "refused"
    if isinstance(err, BotoConnectionError | HTTPClientError):
        return "transient"  # timeouts, resets, DNS and proxy failures
    if isinstance(err, BotoCoreError):
        return "refused"  # a malformed request, missing credentials, an unknown parameter
    return "refused"


def describe_or_none(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    """``call(**kwargs)``, or None when the resource does not exist."""
    try:
        return dict(call(**kwargs))
    except ClientError as err:
        if is_not_found(err):
            return None
        raise


def delete_if_exists(call: Any, **kwargs: Any) -> bool:
    """``call(**kwargs)``; False when the resource was already gone."""
    try:
        call(**kwargs)
    except ClientError as err:
        if is_not_found(err):
            return False
        raise
    return True
