"""Tuning against the local AWS (issue 17 item 1), through the core's in-process tuning (what the KFP glue
runs via ``train_here``): the job SageMaker gets, its progress while it runs, the best job's artifact,
adoption by a retry, Failed and Stopped as final, and a stop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.tuning import derive_tuning_job_name
from sagelift.steps import tuning
from sagelift.steps.errors import StepFailed
from sagelift.steps.training import train_here
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import demo_conf

PLATFORM = {
    "region": "us-east-1",
    "sagemaker": {"check_interval_seconds": 1},
    "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}}},
}
TUNING = {
    "strategy": "Bayesian",
    "objective_metric": "validation:auc",
    "parameter_ranges": {
        "depth": {"type": "integer", "min": 3, "max": 9},
        "booster": {"type": "categorical", "values": ["gbtree", "dart"]},
    },
    "max_jobs": 3,
    "max_parallel_jobs": 1,
}


def _plan(run_id: str, **overrides: Any) -> Plan:
    conf = demo_conf(
        training={"metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]},
        tuning={**TUNING, **overrides},
    )
    return Plan.from_xcom(build_plan(conf, PLATFORM, "sagemaker_deploy", run_id))


def test_tuning_runs_reports_progress_and_deploys_the_best_job_s_artifact(local_aws: LocalAws) -> None:
    plan = _plan("tune-1")
    sm = local_aws.client("sagemaker")
    said: list[str] = []
    life = SageMakerLifecycle(time_scale=10).tuning(seconds=30, objective_values=(0.81, 0.93, 0.87))
    with life.installed(local_aws):
        artifact, facts = train_here(sm, plan, [{"Key": "team", "Value": "churn"}], None, say=said.append)
        name = derive_tuning_job_name(plan.names)
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        best = sm.describe_training_job(TrainingJobName=job["BestTrainingJob"]["TrainingJobName"])
    # the best of the three (0.93, the second), its artifact and its hyperparameters
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.93
    assert artifact == best["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact.endswith(f"/{best['TrainingJobName']}/output/model.tar.gz")
    assert facts["tuning"]["best"]["objective_value"] == 0.93
    assert facts["tuning"]["best"]["hyperparameters"] == job["BestTrainingJob"]["TunedHyperParameters"]
    assert facts["metrics"] == {"validation:auc": 0.93}
    assert best["HyperParameters"]["eta"] == "0.2"  # the fixed hyperparameters, with the tuned ones
    # what was sent, as SageMaker keeps it
    assert job["TrainingJobDefinition"]["StaticHyperParameters"] == {"max_depth": "5", "eta": "0.2"}
    assert job["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 3
    # progress while it ran: several distinct lines, counts rising, then the best job
    progress = [line for line in said if line.startswith(f"Tuning job {name} InProgress")]
    assert len(progress) >= 2, said
    assert any("1 training jobs completed" in line for line in progress)
    assert any("best so far" in line and "0.81" in line for line in progress)
    assert any("depth=" in line and "0.93" in line for line in said)


def test_a_retry_follows_the_run_s_tuning_job_instead_of_starting_another(local_aws: LocalAws) -> None:
    plan = _plan("tune-2")
    sm = local_aws.client("sagemaker")
    with SageMakerLifecycle(time_scale=100).tuning(seconds=10).installed(local_aws):
        request = tuning.tuning_request(plan, [], None)
        assert validate_request("sagemaker", "CreateHyperParameterTuningJob", request) == []
        first = tuning.start_tuning(sm, request)
        again = tuning.start_tuning(sm, request)
    assert first["HyperParameterTuningJobArn"] == again["HyperParameterTuningJobArn"]
    jobs = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [j["HyperParameterTuningJobName"] for j in jobs].count(request["HyperParameterTuningJobName"]) == 1


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        ("Failed", "No training job succeeded", "ended Failed: No training job succeeded"),
        ("Stopped", "", "ended Stopped: it was stopped"),
    ],
)
def test_failed_and_stopped_are_final(local_aws: LocalAws, outcome: str, reason: str, expected: str) -> None:
    plan = _plan(f"tune-{outcome}")
    sm = local_aws.client("sagemaker")
    with (
        SageMakerLifecycle(time_scale=100)
        .tuning(seconds=5, outcome=outcome, failure_reason=reason)
        .installed(local_aws),
        pytest.raises(StepFailed) as err,
    ):
        train_here(sm, plan, [], None)
    assert expected in str(err.value)


def test_a_stop_stops_the_tuning_job(local_aws: LocalAws) -> None:
    plan = _plan("tune-stop")
    sm = local_aws.client("sagemaker")
    life = SageMakerLifecycle(time_scale=10).tuning(seconds=600, stop_seconds=10)
    with life.installed(local_aws):
        request = tuning.tuning_request(plan, [], None)
        name = request["HyperParameterTuningJobName"]
        tuning.start_tuning(sm, request)
        waiting: list[Any] = []
        waiter = threading.Thread(target=lambda: waiting.append(tuning.wait_for_tuning(sm, name, 1, 60)))
        waiter.start()
        assert tuning.stop_tuning(sm, name) is True
        waiter.join(timeout=30)
        assert waiting and waiting[0]["HyperParameterTuningJobStatus"] == "Stopped"
        assert tuning.stop_tuning(sm, name) is False  # ended: nothing to stop
        with pytest.raises(StepFailed, match="ended Stopped"):
            tuning.tuning_outcome(waiting[0])


def test_the_execution_role_grants_exactly_the_tuning_calls_and_every_body_is_valid(
    local_aws: LocalAws,
) -> None:
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig
    from tests.support.botocore_validation import recording_aws_calls

    plan = _plan("tune-iam")
    policy = render_policies(
        PlatformConfig.from_dict(
            {**PLATFORM, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master"}
        ),
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:root",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )
    granted: dict[str, list[str]] = {}
    for statement in policy["execution-permissions"]["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            resources = statement["Resource"]
            granted.setdefault(action, []).extend([resources] if isinstance(resources, str) else resources)
    sm = local_aws.client("sagemaker")
    with (
        SageMakerLifecycle(time_scale=100).tuning(seconds=10).installed(local_aws),
        recording_aws_calls() as calls,
    ):
        request = tuning.tuning_request(plan, [], None)
        name = request["HyperParameterTuningJobName"]
        tuning.start_tuning(sm, request)
        tuning.stop_tuning(sm, name)
        train_here(sm, _plan("tune-iam-2"), [], None)
    assert all(c.errors == [] for c in calls), [c.errors for c in calls if c.errors]
    made = {f"sagemaker:{c.operation}" for c in calls if "Tuning" in c.operation}
    assert made == {a for a in granted if "HyperParameterTuningJob" in a}
    jobs = f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:hyper-parameter-tuning-job/*"
    assert all(jobs in granted[action] for action in made)


def test_plan_only_shows_the_tuning_job_it_would_start_and_writes_nothing(local_aws: LocalAws) -> None:
    from sagelift.steps.plan_changes import PlanContext, plan_training_job
    from tests.support.botocore_validation import recording_aws_calls

    plan = _plan("tune-plan")
    sm = local_aws.client("sagemaker")
    ctx = PlanContext(plan=plan, clients=lambda service, region=None: sm, tags=[])
    with SageMakerLifecycle(time_scale=100).tuning(seconds=5).installed(local_aws):
        with recording_aws_calls() as calls:
            (change,) = plan_training_job(ctx)
        assert [c.operation for c in calls] == ["DescribeHyperParameterTuningJob"]
        name = derive_tuning_job_name(plan.names)
        assert (change.kind, change.name, change.action) == ("SageMaker tuning job", name, "create")
        assert "up to 3 training jobs, 1 at a time" in change.note and "validation:auc" in change.note
        train_here(sm, plan, [], None)  # the run tunes; planned again, its job is followed
        ctx = PlanContext(plan=plan, clients=lambda service, region=None: sm, tags=[])
        (change,) = plan_training_job(ctx)
    best = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["BestTrainingJob"]
    assert change.action == "unchanged"
    assert ctx.artifact is not None and best["TrainingJobName"] in ctx.artifact
