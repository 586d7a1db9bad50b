"""Spot training and metrics against the local AWS (issue 17 items 2 and 3), through the core's in-process
training (``steps.training.train_here``, what the KFP glue runs): the request SageMaker gets, an
interruption that resumes, billable against training seconds, and the final metric values."""

from __future__ import annotations

from typing import Any

from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.training_settings import training_facts
from sagelift.steps.training import report_training, train_here
from sagelift.triggers.logs import TrainingLogTail
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import demo_conf

PLATFORM = {
    "region": "us-east-1",
    "sagemaker": {"check_interval_seconds": 1},
    "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}}},
}
METRICS = [
    {"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"},
    {"name": "train:loss", "regex": "train-loss=([0-9.]+)"},
]


def _plan(run_id: str, **training: Any) -> Any:
    return Plan.from_xcom(build_plan(demo_conf(training=training), PLATFORM, "sagemaker_deploy", run_id))


def test_a_spot_job_interrupted_once_resumes_and_reports_its_saving_and_metrics(local_aws: LocalAws) -> None:
    plan = _plan("spot-1", use_spot=True, metric_definitions=METRICS)
    life = SageMakerLifecycle(time_scale=100).training(
        seconds=100, interruptions=1, spot_saving=0.6, metrics={"validation:auc": 0.88, "train:loss": 0.21}
    )
    sm = local_aws.client("sagemaker")
    said: list[str] = []  # what the KFP step prints (train_here's say)
    with life.installed(local_aws):
        artifact, facts = train_here(sm, plan, [], None, say=said.append)
        job = sm.describe_training_job(TrainingJobName=plan.names.training_job)
    assert artifact == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert facts == training_facts(job)
    # what was sent, as SageMaker keeps it
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert job["CheckpointConfig"]["S3Uri"] == (
        f"{plan.params.training_s3_output_path.rstrip('/')}/{plan.names.training_job}/checkpoints/"
    )
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": m["name"], "Regex": m["regex"]} for m in METRICS
    ]
    # what came back: one interruption, resumed, billed less than trained, the final metrics
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses.index("Interrupted") < len(statuses) - 1 - statuses[::-1].index("Training")
    facts = training_facts(job)
    assert facts["interruptions"] == 1 and facts["billable_seconds"] < facts["training_seconds"]
    assert facts["saving_percent"] == 60.0
    assert facts["metrics"] == {"validation:auc": 0.88, "train:loss": 0.21}
    assert len(said) == 3 and all(plan.names.training_job in line for line in said)
    assert sum("0.88" in line for line in said) == 1  # the final metrics, once
    assert sum("60 %" in line for line in said) == 1  # the saving, once


def test_an_on_demand_job_is_billed_in_full_and_sends_no_spot_fields(local_aws: LocalAws) -> None:
    plan = _plan("on-demand-1")
    sm = local_aws.client("sagemaker")
    with SageMakerLifecycle(time_scale=100).training(seconds=10).installed(local_aws):
        train_here(sm, plan, [], None)
        job = sm.describe_training_job(TrainingJobName=plan.names.training_job)
    assert "CheckpointConfig" not in job and not job.get("EnableManagedSpotTraining")
    facts = report_training(job)
    assert facts["billable_seconds"] == facts["training_seconds"] and not facts["interruptions"]


def test_the_request_is_valid_for_botocore() -> None:
    from sagelift.steps.training import training_request

    request = training_request(_plan("spot-2", use_spot=True, max_wait_seconds=100000), [], None)
    assert validate_request("sagemaker", "CreateTrainingJob", request) == []
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 100000}


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args if args else message)


def test_the_deferred_wait_tells_each_interruption_and_resume_once_even_between_polls() -> None:
    log = _Log()
    tail = TrainingLogTail("churn-1a2b3c4d", log, 1, wait_for_start=True)

    def poll(*statuses: str) -> None:
        tail.observe(
            {"SecondaryStatus": statuses[-1], "SecondaryStatusTransitions": [{"Status": s} for s in statuses]}
        )

    poll("Starting", "Downloading", "Training")
    poll("Starting", "Downloading", "Training", "Interrupted")
    poll("Starting", "Downloading", "Training", "Interrupted")
    # the next poll comes after a resume and a second interruption and resume
    poll("Starting", "Downloading", "Training", "Interrupted", "Training", "Interrupted", "Training")
    poll(
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Training",
        "Interrupted",
        "Training",
        "Completed",
    )
    assert len(log.lines) == 4 and all("churn-1a2b3c4d" in line for line in log.lines)
