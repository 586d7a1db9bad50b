"""The scenario harness's checks of a run's expectations (tests/scenarios/test_both_engines.py), on made-up
checkpoints: a per-engine failing step, the message's first line, an account the run must leave as it
was. Fast; the scenarios themselves are the slow tier."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios import definitions as d
from tests.scenarios.test_both_engines import (
    Checkpoint,
    Outcome,
    comparable,
    differences,
    expectation_problems,
)

REFUSED = d.Expect(
    fails_at={"airflow": "validate", "kfp": "ensure_pvc"},
    message="request_overrides.CreateTrainingJob.Environment: not allowed",
    changes_nothing=True,
)
MESSAGE = "request_overrides.CreateTrainingJob.Environment: not allowed by the platform (...)"
EMPTY = {"models": {}, "s3": {"sagelift-state-333333333333": []}, "count": {"models": 0}}


def point(
    engine: str,
    step: str | None,
    message: str | None = MESSAGE,
    *,
    expect: d.Expect = REFUSED,
    account: dict[str, Any] | None = None,
) -> Checkpoint:
    view = {
        **(account if account is not None else EMPTY),
        "outcome": {
            "status": "failed" if step else "success",
            "failed_step": step,
            "message": message,
            "invoke_url": None,
            "metrics": None,
            "deployments": [],
        },
    }
    return Checkpoint(
        "refused", 20, expect, Outcome("run", view["outcome"]["status"]), view, None, engine, EMPTY
    )


def test_each_engine_must_fail_at_its_own_step() -> None:
    assert expectation_problems(point("Airflow", "validate"), []) == []
    assert expectation_problems(point("KFP", "ensure_pvc"), []) == []
    (wrong,) = expectation_problems(point("Airflow", "ensure_pvc"), [])
    assert "expected failed at validate" in wrong
    succeeded = expectation_problems(point("KFP", None, None), [])
    assert "ended success at None (None), expected failed at ensure_pvc" in succeeded


def test_the_message_is_checked_on_its_first_line() -> None:
    assert expectation_problems(point("KFP", "ensure_pvc", MESSAGE + "\n  - another: rule"), []) == []
    (problem,) = expectation_problems(
        point("KFP", "ensure_pvc", "Invalid run configuration.\n" + MESSAGE), []
    )
    assert "expected its first line to start" in problem


def test_a_run_that_must_change_nothing_fails_on_a_new_resource() -> None:
    created = {**EMPTY, "models": {"churn-predictor-<run 1>": {}}, "count": {"models": 1}}
    problems = expectation_problems(point("Airflow", "validate", account=created), [])
    assert problems and all(p.startswith("the run changed the account:") for p in problems)
    assert any("/models/churn-predictor-<run 1>" in p for p in problems)


def test_the_engines_compare_equal_across_their_own_failing_steps() -> None:
    airflow, kfp = point("Airflow", "validate"), point("KFP", "ensure_pvc")
    assert differences(comparable(airflow), comparable(kfp)) == []
    # without fails_at the step is compared as it is
    shared = d.Expect(outcome="failed", failed_step="validate", message="request_overrides")
    assert differences(
        comparable(point("Airflow", "validate", expect=shared)),
        comparable(point("KFP", "ensure_pvc", expect=shared)),
    ) == ["/outcome/failed_step: 'validate' != 'ensure_pvc'"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fails_at": {"airflow": "validate"}},  # each engine's step, or none
        {"fails_at": {"airflow": "validate", "kfp": "ensure_pvc"}, "failed_step": "validate"},
    ],
)
def test_fails_at_names_every_engine_and_only_it(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="fails_at"):
        d.Expect(**kwargs)


def test_fails_at_implies_a_failure() -> None:
    assert REFUSED.outcome == "failed"
    assert REFUSED.failed_step_on("KFP") == "ensure_pvc"
