"""What an engine without task retries (a KFP component) runs again: transient errors only."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sagelift.steps.errors import StepFailed, StepRetry, retry_transient


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    "transient",
    [StepRetry("endpoint Updating"), _client_error("ThrottlingException", 400), _client_error("X", 503)],
)
def test_a_transient_error_is_run_again_until_it_passes(transient: Exception) -> None:
    calls = []

    @retry_transient(tries=3, first_delay=0)
    def step() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise transient
        return "done"

    assert step() == "done" and len(calls) == 3


@pytest.mark.parametrize("refusal", [StepFailed("rolled back"), _client_error("AccessDenied", 403)])
def test_a_refusal_is_raised_at_once(refusal: Exception) -> None:
    calls = []

    @retry_transient(tries=3, first_delay=0)
    def step() -> None:
        calls.append(1)
        raise refusal

    with pytest.raises(type(refusal)):
        step()
    assert len(calls) == 1


def test_the_tries_are_bounded() -> None:
    calls = []

    @retry_transient(tries=3, first_delay=0)
    def step() -> None:
        calls.append(1)
        raise StepRetry("still busy")

    with pytest.raises(StepRetry):
        step()
    assert len(calls) == 3
