"""Step 5 with tuning (issue 17 item 1), tune_model: start the run's tuning job (or adopt it), stop it,
judge its outcome and find the best training job's artifact.

As with training (sagelift.steps.training), the job's name is fixed for the run (``derive_tuning_job_name``),
so a retry, a resumed deferral or a create whose answer was lost follows the job that exists. Only
``Completed`` with a best training job is a success; ``Failed`` and ``Stopped`` are final. The best
job's DescribeTrainingJob answer is what create_model deploys (its ``ModelArtifacts``) and what the run
summary and the registry read (its final metrics), exactly as a trained job's.

Waiting belongs to the engine: Airflow defers to ``SageMakerTuningCompleteTrigger`` (the provider's
waiter), KFP waits here in ``wait_for_tuning`` with a botocore waiter over the same acceptors, telling
the progress (jobs completed, running, failed, the best so far) from each of the waiter's own
DescribeHyperParameterTuningJob answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from sagelift.domain.plan import Plan
from sagelift.domain.tuning import (
    build_tuning_job_request,
    render_tuning_facts,
    render_tuning_progress,
    tuning_facts,
)
from sagelift.steps import jobs, training
from sagelift.steps.endpoint import attempts
from sagelift.steps.errors import StepFailed, stop_on_sigterm

log = logging.getLogger(__name__)

RUNNING = jobs.RUNNING
STOPPABLE = jobs.STOPPABLE
_DESCRIBE = "DescribeHyperParameterTuningJob"
# botocore ships no tuning waiter: the provider's acceptors, with Failed and Stopped ending the wait
# (success) so that the outcome is judged once, by tuning_outcome.
WAITER = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "TuningJobEnded": {
                "delay": 30,
                "maxAttempts": 60,
                "operation": _DESCRIBE,
                "acceptors": [
                    {
                        "matcher": "path",
                        "argument": "HyperParameterTuningJobStatus",
                        "expected": status,
                        "state": "success",
                    }
                    for status in ("Completed", "Failed", "Stopped")
                ]
                + [{"matcher": "error", "expected": "ValidationException", "state": "failure"}],
            }
        },
    }
)


def tuning_request(
    plan: Plan, tags: list[dict[str, str]], images: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The run's CreateHyperParameterTuningJob body around its training request."""
    return build_tuning_job_request(plan.params, plan.names, training.training_request(plan, tags, images))


def start_tuning(client: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Create the tuning job, or adopt the run's job when it exists; returns its description."""
    return jobs.start_or_adopt(client, jobs.TUNING_JOB, request)


def stop_tuning(client: Any, name: str) -> bool:
    """Stop the tuning job (SageMaker stops its training jobs) if it runs; True when a stop was requested."""
    return jobs.stop_if_running(client, jobs.TUNING_JOB, name)


def ended_message(description: Mapping[str, Any]) -> str:
    name = description.get("HyperParameterTuningJobName", "?")
    status = description.get("HyperParameterTuningJobStatus", "in an unknown state")
    if status == "Stopped":
        detail = "it was stopped before it completed (StopHyperParameterTuningJob, or the run was stopped)"
    elif status == "Completed":
        detail = "no training job reported the objective metric, so there is no best job to deploy"
    else:
        detail = description.get("FailureReason") or "SageMaker gave no reason"
    return (
        f"Tuning job {name} ended {status}: {detail}. "
        "Its name is fixed for this run, so trigger a new run to tune again."
    )


def tuning_outcome(description: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a Completed job with a best training job; any other end is final (``StepFailed``)."""
    facts = tuning_facts(description)
    if description.get("HyperParameterTuningJobStatus") != "Completed" or facts["best"] is None:
        raise StepFailed(ended_message(description))
    return facts


def best_job_description(client: Any, facts: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeTrainingJob of the best job: its artifact and final metrics, as train_model's job gives them."""
    name = str(facts["best"]["training_job"])
    return dict(client.describe_training_job(TrainingJobName=name))


def report_tuning(
    client: Any, description: Mapping[str, Any], say: Callable[[str], None] = log.info
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Judge the ended job, tell its outcome and the best job's (``say``); (the tuning facts, the best
    training job's description)."""
    facts = tuning_outcome(description)
    for line in render_tuning_facts(facts):
        say(line)
    best = best_job_description(client, facts)
    training.report_training(best, say)
    return facts, best


def wait_for_tuning(
    client: Any, name: str, delay: int, max_attempts: int, say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Wait (a botocore waiter) until the tuning job has ended, however it ended, telling its progress
    whenever it changes; returns its description."""
    told: list[str] = []

    def progress(parsed: Any = None, **_: Any) -> None:
        # while it runs: the end is told once, by report_tuning
        if isinstance(parsed, Mapping) and parsed.get("HyperParameterTuningJobStatus") in RUNNING:
            line = render_tuning_progress(tuning_facts(parsed))
            if not told or told[-1] != line:
                told.append(line)
                say(line)

    event = f"after-call.sagemaker.{_DESCRIBE}"
    client.meta.events.register(event, progress)
    try:
        create_waiter_with_client("TuningJobEnded", WAITER, client).wait(
            HyperParameterTuningJobName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except WaiterError as err:
        description = dict(client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))
        if description["HyperParameterTuningJobStatus"] in RUNNING:
            raise StepFailed(f"Tuning job {name} did not end within the wait budget: {err}") from None
        return description
    finally:
        client.meta.events.unregister(event, progress)
    return dict(client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))


def tune_here(
    client: Any,
    plan: Plan,
    tags: list[dict[str, str]],
    images: Mapping[str, Any] | None,
    say: Callable[[str], None] = log.info,
) -> tuple[str, dict[str, Any]]:
    """Tune in this process, for an engine that waits where Airflow defers (KFP): start this run's tuning
    job or follow it, wait telling its progress, stop it on SIGTERM, and return the best job's artifact with
    its facts (``training_facts``, plus ``tuning``: the tuning facts)."""
    request = tuning_request(plan, tags, images)
    name = str(request["HyperParameterTuningJobName"])
    start_tuning(client, request)
    wait = plan.platform.sagemaker
    with stop_on_sigterm(lambda: stop_tuning(client, name)):
        description = wait_for_tuning(
            client,
            name,
            wait.check_interval_seconds,
            attempts(wait.training_wait_budget_seconds, wait.check_interval_seconds),
            say,
        )
    facts, best = report_tuning(client, description, say)
    return training.model_artifact(plan, best), {
        **training.training_facts(best),
        "tuning": facts,
    }
