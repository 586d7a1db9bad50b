"""How every step classifies what goes wrong, in one place.

A step ends in one of three ways besides success, and each engine maps them the same way:

| kind | raised as | examples | Airflow | KFP |
|---|---|---|---|---|
| refusal | ``StepFailed`` | AccessDenied, a trust policy or ExternalId that does not allow a hop, a validation error, a training job Failed or Stopped, an endpoint Failed or rolled back, a resource sagelift does not own | the task fails without retries | the component fails without retries |
| transient | ``StepRetry``, or the botocore error itself once botocore's own retries are spent | throttling, HTTP 5xx, timeouts, dropped connections, an endpoint another deploy is changing | the task is retried (its ``retries`` with exponential backoff) | the component runs the step again inside its pod (``retry_transient``: the same 3 tries and backoff as Airflow's); KFP's own retry policy is off, because it cannot tell a refusal from a transient error |
| not found | the step's own decision (create, adopt or skip) | ``ValidationException: Could not find ...``, ``ResourceNotFound``, ``NotFoundException``, ``NoSuchKey`` | - | - |

``classify`` is the one function that decides refusal versus transient for an AWS error;
``is_not_found`` the one that recognises a missing resource. On Airflow, ``step_errors``
(sagelift.operators.base) wraps every step: ``StepFailed`` and validation errors become
``AirflowFailException`` (no retries), ``StepRetry`` an ``AirflowException`` (retried), and an AWS error a
step lets through is sent the same way by ``classify`` (a not-found the step did not expect is final).

Per step (what is final, what is retried, and what a repeated request meets):

| step | final (refusal) | retried (transient) | repeated after a lost answer |
|---|---|---|---|
| validate | every broken rule, named with its field (``SageliftValidationError``); no remote call | - | - |
| ensure_pvc | the in-pod program's refusals, with its one-line reason: RBAC refusal or a rejected token (exit 4), a claim of the name with other settings (3), bad arguments (2) (``FINAL_EXIT_CODES``, sagelift.steps.pvc) | the API server unreachable or answering any other error (exit 1), the claim not bound in time (5), pod start-up timeouts | POST answered 409: the claim is read and checked |
| assume_role_chain | a hop AWS refuses (``RoleChainError``: AccessDenied, trust policy or ExternalId, naming the hop and the role); a connection that is missing, chains through another master role, or ends as another role | STS throttled, 5xx or unreachable once botocore's 11 attempts are spent (``RoleChainUnavailable``); the same for every later task whose client assumes the chain again | AssumeRole and GetCallerIdentity are reads: safe |
| acquire_model_lock | a lock object sagelift did not write; the wait budget spent while another run holds it (a held lock itself is waited for, deferred: neither a failure nor a retry) | S3 throttled or 5xx; the lock changing hands 5 times in a row | PutObject ``If-None-Match`` answered 412 after its own write: the lock names this run, rewritten with ``If-Match`` (sagelift.steps.lock) |
| resolve_tags | the document missing, not readable (AccessDenied), over 256 KB or malformed | S3 ``SlowDown``, 5xx, timeouts | GetObject: a read |
| copy_images | an image not found, registry credentials or TLS refused, a source or token realm outside the allow-list, a bad reference | registry or ECR 5xx, throttling, network errors (one generic message per source), a hung copy past its time bound | CreateRepository answered ``RepositoryAlreadyExistsException``: used as it is |
| train_model | CreateTrainingJob refused (AccessDenied, ValidationException); the job ``Failed`` or ``Stopped``; the wait budget spent | throttling, 5xx, timeouts, a deferred wait that ended in an error | ``ResourceInUse``: the run's job exists and is followed |
| create_model | CreateModel refused | throttling, 5xx, timeouts | ``Cannot create already existing model``: the model just requested |
| deploy_endpoint | an endpoint or config not tagged as the model's; ``Failed``; rolled back; another run's config in service; the model's lock now held by another run; the wait budget spent | throttling, 5xx, timeouts; the endpoint being changed by another deploy (``StepRetry``) | ``Cannot create already existing endpoint [configuration]``: done; ``Cannot update in-progress endpoint`` while Updating to this run's config (``PendingDeploymentSummary``): done, and waited for |
| expose_api | an API of the name not tagged as the model's; API settings the platform refuses | ``TooManyRequestsException``, 5xx, timeouts, ``ConflictException`` left after the checks | CreateRestApi, CreateUsagePlan, CreateApiKey, CreateDeployment: listed again by name and owner tag, extras deleted, the oldest (then lowest id; a usage plan: the one naming the API's stage) kept; ``ConflictException`` on CreateResource, PutMethod, PutMethodResponse, CreateStage, CreateUsagePlanKey, UpdateUsagePlan: accepted once a read shows it in place |
| summarize_run | - (reads XCom only) | - | - |
| release_model_lock | AWS refusals (AccessDenied) | S3 throttled or 5xx; the lock changing hands 5 times in a row | DeleteObject ``If-Match`` answered 404 after its own delete: already released |
| teardown tasks | its validate's refusals; AWS refusals (AccessDenied) | throttling, 5xx, timeouts | deletes of something already gone: nothing to do (resources not tagged as the model's are left alone) |

Retry budget. Every client the steps use comes from a session with botocore's ``standard`` retry mode
(the first attempt and 10 retries, with jittered exponential backoff of up to 1, 2, 4, 8, 16, then 20 s
between attempts: up to about 130 s, half that on average), so a throttle, a 500 or a dropped connection is retried inside the call
first. Only when those attempts are spent does a transient error reach the step, which raises it for the
engine's task-level retry: sagemaker_deploy's tasks have ``retries=2``, ``retry_delay`` 30 s and
exponential backoff (Airflow waits between d and 2d: 30-60 s, then 60-120 s), so the third try starts at
least 90 s after the first ended, and an outage of STS or any AWS API shorter than about 90 s (the ~50 s
of STS 500s seen in the field included) is absorbed however botocore's jitter falls
(tests/reliability/test_transient_errors.py checks the DAG's settings against this). A longer outage
fails the task with the transient error, never with a message blaming configuration.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import tenacity
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


def is_transient(err: BaseException) -> bool:
    """Worth running the step again later: ``StepRetry``, or an AWS error ``classify`` calls transient."""
    if isinstance(err, StepFailed):
        return False
    return isinstance(err, StepRetry) or (
        isinstance(err, ClientError | BotoCoreError) and classify(err) == "transient"
    )


F = TypeVar("F", bound=Callable[..., Any])


def retry_transient(tries: int = 3, first_delay: float = 30.0, max_delay: float = 600.0) -> Callable[[F], F]:
    """Run a step again on a transient error (Airflow's task retries, for an engine without them).

    ``tries`` in all, waiting ``first_delay`` then doubling, up to ``max_delay``; a refusal is raised at once.
    """
    return tenacity.retry(  # type: ignore[return-value]
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(tries),
        wait=tenacity.wait_exponential(multiplier=first_delay, max=max_delay),
        reraise=True,
    )


@contextmanager
def stop_on_sigterm(stop: Callable[[], Any]) -> Iterator[None]:
    """For an engine that cancels by SIGTERM (KFP terminating a run): stop what runs in AWS, then exit."""

    def handler(signum: int, frame: Any) -> None:
        stop()
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
