"""Model monitoring against the local AWS (issue 20 item 3), through the core's in-process step
(``steps.monitoring.monitor_here``, what the KFP glue runs) and its pieces: the baseline job and what it
wrote, the endpoint's schedule and its re-run update, the drift alarms and an execution with violations
setting them off, a failed and a stopped baseline, and teardown leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import jobs, monitoring
from sagelift.steps.errors import StepFailed
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.sagemaker_monitoring import run_execution, script_baseline
from tests.support.scenario import DATA_BUCKET, demo_conf

CAPTURES = f"s3://{DATA_BUCKET}/captures/"
TOPIC = f"arn:aws:sns:{REGION}:{SCIENTIST_ACCOUNT}:model-alerts"
PLATFORM = {
    "region": REGION,
    "sagemaker": {"check_interval_seconds": 1},
    "accounts": {
        SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}, "endpoint": {"capture_prefixes": [CAPTURES]}}
    },
}
TAGS = [{"Key": "team", "Value": "churn"}]


def _plan(run_id: str, schedule: str = "hourly", **dq: Any) -> Plan:
    conf = demo_conf(
        endpoint={"data_capture": {"sampling_percent": 20}},
        monitoring={"data_quality": {"schedule": schedule, "alarm": {"actions": [TOPIC]}, **dq}},
    )
    return Plan.from_xcom(build_plan(conf, PLATFORM, "sagemaker_deploy", run_id))


def _account(aws: LocalAws) -> None:
    """The training data and the endpoint a run deployed (the schedule must name an existing one)."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="churn/train/part-0.csv", Body=b"1,0.5,3.2,7\n0,0.1,2.2,4\n")
    sm = aws.client("sagemaker")
    sm.create_model(
        ModelName="m", PrimaryContainer={"Image": "img"}, ExecutionRoleArn="arn:aws:iam::1:role/r"
    )
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName="churn-predictor", EndpointConfigName="c")


def _leftovers(aws: LocalAws) -> dict[str, list[str]]:
    sm, cw = aws.client("sagemaker"), aws.client("cloudwatch")
    return {
        "schedules": [
            s["MonitoringScheduleName"] for s in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]
        ],
        "definitions": [
            d["MonitoringJobDefinitionName"]
            for d in sm.list_data_quality_job_definitions()["JobDefinitionSummaries"]
        ],
        "alarms": [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]],
    }


def test_a_run_baselines_schedules_and_alarms_and_a_rerun_updates_the_schedule(local_aws: LocalAws) -> None:
    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    first, second = _plan("mon-1"), _plan("mon-2", schedule="daily")
    said: list[str] = []
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_baseline(life, seconds=100)
        facts = monitoring.monitor_here(sm, cw, s3, first, TAGS, say=said.append)
        job = sm.describe_processing_job(ProcessingJobName=first.names.model)
        schedule = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-predictor")
        alarms = cw.describe_alarms(AlarmNamePrefix="sagelift-monitor-churn-predictor-")["MetricAlarms"]

        assert job["ProcessingJobStatus"] == "Completed"
        assert job["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"s3://{DATA_BUCKET}/churn/train/"
        assert "sagemaker-model-monitor-analyzer" in job["AppSpecification"]["ImageUri"]
        baseline = f"s3://{DATA_BUCKET}/churn/output/{first.names.model}/monitoring/baseline/"
        assert facts["baseline_s3_uri"] == baseline
        config = schedule["MonitoringScheduleConfig"]
        assert config["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
        assert config["MonitoringJobDefinitionName"] == first.names.model
        assert schedule["EndpointName"] == "churn-predictor" and facts["schedule_action"] == "created"
        # one alarm per column of the training data (the analyzer's _c0.. names), on the drift metric
        assert sorted(a["MetricName"] for a in alarms) == [f"feature_baseline_drift__c{i}" for i in range(4)]
        assert all(a["Namespace"] == "aws/sagemaker/Endpoints/data-metrics" for a in alarms)
        assert all(a["AlarmActions"] == [TOPIC] and a["Threshold"] == 0.1 for a in alarms)
        assert {"Name": "MonitoringSchedule", "Value": "churn-predictor"} in alarms[0]["Dimensions"]
        assert facts["console_url"].endswith("#/monitoring-schedules/churn-predictor")

        # an execution with violations sets the alarms off
        run_execution(local_aws, SCIENTIST_ACCOUNT, "churn-predictor", "CompletedWithViolations")
        states = {a["StateValue"] for a in cw.describe_alarms()["MetricAlarms"]}
        assert states == {"ALARM"}

        again = monitoring.monitor_here(sm, cw, s3, second, TAGS, say=said.append)
        schedule = sm.describe_monitoring_schedule(MonitoringScheduleName="churn-predictor")
    config = schedule["MonitoringScheduleConfig"]
    assert again["schedule_action"] == "updated" and again["frequency"] == "daily"
    assert config["MonitoringJobDefinitionName"] == second.names.model
    assert config["ScheduleConfig"]["ScheduleExpression"] == "cron(0 0 ? * * *)"
    # the previous run's definition is gone (no schedule used it any more); one schedule, four alarms
    left = _leftovers(local_aws)
    assert left["schedules"] == ["churn-predictor"] and left["definitions"] == [second.names.model]
    assert len(left["alarms"]) == 4
    assert (
        schedule["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"] == "CompletedWithViolations"
    )

    deleted = monitoring.delete_monitoring(sm, cw, "churn-predictor", say=said.append, sleep=lambda _: None)
    assert len(deleted) == 1 + 1 + 4
    assert _leftovers(local_aws) == {"schedules": [], "definitions": [], "alarms": []}
    assert monitoring.delete_monitoring(sm, cw, "churn-predictor", sleep=lambda _: None) == []


def test_a_retry_adopts_the_runs_baseline_and_definition(local_aws: LocalAws) -> None:
    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    plan = _plan("mon-retry")
    with SageMakerLifecycle(time_scale=100).installed(local_aws):
        monitoring.monitor_here(sm, cw, s3, plan, TAGS)
        facts = monitoring.monitor_here(sm, cw, s3, plan, TAGS)
    assert facts["schedule_action"] == "unchanged"
    assert len(sm.list_processing_jobs()["ProcessingJobSummaries"]) == 1
    assert _leftovers(local_aws)["definitions"] == [plan.names.model]


@pytest.mark.parametrize("outcome", ["Failed", "Stopped"])
def test_a_baseline_that_does_not_complete_fails_the_step_and_schedules_nothing(
    local_aws: LocalAws, outcome: str
) -> None:
    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    plan = _plan(f"mon-{outcome}")
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_baseline(life, seconds=100, outcome=outcome, failure_reason="AlgorithmError: bad csv")
        with pytest.raises(StepFailed) as err:
            monitoring.monitor_here(sm, cw, s3, plan, TAGS)
    first = str(err.value).splitlines()[0]
    assert f"Processing job {plan.names.model} ended {outcome}" in first and len(first) < 200
    assert ("AlgorithmError: bad csv" in first) == (outcome == "Failed")
    assert _leftovers(local_aws) == {"schedules": [], "definitions": [], "alarms": []}


def test_cancel_stops_the_baseline(local_aws: LocalAws) -> None:
    _account(local_aws)
    sm = local_aws.client("sagemaker")
    plan = _plan("mon-stop")
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_baseline(life, seconds=10_000, stop_seconds=100)
        started = jobs.start_or_adopt(sm, monitoring.KIND, monitoring.baseline_request(plan, TAGS))
        assert started["ProcessingJobStatus"] == "InProgress"
        assert jobs.stop_if_running(sm, monitoring.KIND, plan.names.model)
        ended = jobs.wait_for_job(sm, monitoring.KIND, plan.names.model, 0.2, 50)
    assert ended["ProcessingJobStatus"] == "Stopped"


def test_failed_and_clean_executions_set_off_no_alarm(local_aws: LocalAws) -> None:
    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    with SageMakerLifecycle(time_scale=100).installed(local_aws):
        monitoring.monitor_here(sm, cw, s3, _plan("mon-exec"), TAGS)
        for outcome in ("Completed", "Failed", "Stopped"):
            run_execution(local_aws, SCIENTIST_ACCOUNT, "churn-predictor", outcome)
        runs = sm.list_monitoring_executions(MonitoringScheduleName="churn-predictor")
    assert [r["MonitoringExecutionStatus"] for r in runs["MonitoringExecutionSummaries"]] == [
        "Completed",
        "Failed",
        "Stopped",
    ]
    assert "ALARM" not in {a["StateValue"] for a in cw.describe_alarms()["MetricAlarms"]}


def test_teardown_deletes_the_monitor_it_owns_and_nothing_else(local_aws: LocalAws) -> None:
    from sagelift.domain.ownership import OWNER_TAG_KEY
    from sagelift.domain.platform import SageMakerSettings
    from sagelift.domain.teardown import TeardownReport
    from sagelift.steps.teardown import delete_sagemaker_resources

    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    owned = [*TAGS, {"Key": OWNER_TAG_KEY, "Value": "churn-predictor"}]
    with SageMakerLifecycle(time_scale=100).installed(local_aws):
        monitoring.monitor_here(sm, cw, s3, _plan("mon-td"), owned)
        cw.put_metric_alarm(  # the scientist's own alarm under the same prefix, untagged: kept
            AlarmName="sagelift-monitor-churn-predictor-mine",
            MetricName="x",
            Namespace="y",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        deleted = delete_sagemaker_resources(
            sm, "churn-predictor", SageMakerSettings(check_interval_seconds=1), cw
        )
    assert deleted["monitoring"][:2] == [
        "monitoring schedule churn-predictor",
        f"data-quality job definition {_plan('mon-td').names.model}",
    ]
    assert len(deleted["monitoring"]) == 6
    assert _leftovers(local_aws) == {
        "schedules": [],
        "definitions": [],
        "alarms": ["sagelift-monitor-churn-predictor-mine"],
    }
    report = TeardownReport("churn-predictor", SCIENTIST_ACCOUNT, monitoring=deleted["monitoring"])
    assert "model monitoring: monitoring schedule churn-predictor" in report.render()


def test_the_execution_roles_monitoring_grant_is_the_calls_the_monitor_makes(local_aws: LocalAws) -> None:
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig
    from tests.support.botocore_validation import recording_aws_calls

    monitored = {**PLATFORM, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline"}
    policies = {
        name: render_policies(
            PlatformConfig.from_dict(raw),
            SCIENTIST_ACCOUNT,
            runner_principal_arn="arn:aws:iam::111111111111:root",
            data_uris=[f"s3://{DATA_BUCKET}/churn/"],
            output_uris=[f"s3://{DATA_BUCKET}/churn/output/"],
        )
        for name, raw in (
            ("monitored", monitored),
            ("no capture", {**monitored, "accounts": {SCIENTIST_ACCOUNT: {}}}),
        )
    }

    def granted(policy: dict[str, Any], sid_part: str) -> set[str]:
        return {
            action
            for s in policy["execution-permissions"]["Statement"]
            if sid_part in s.get("Sid", "")
            for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }

    _account(local_aws)
    sm, cw, s3 = (local_aws.client(s) for s in ("sagemaker", "cloudwatch", "s3"))
    owned = [*TAGS, {"Key": "sagelift:model-name", "Value": "churn-predictor"}]
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life, recording_aws_calls() as calls:
        monitoring.monitor_here(sm, cw, s3, _plan("mon-iam-1"), owned)
        monitoring.monitor_here(
            sm, cw, s3, _plan("mon-iam-2"), owned
        )  # the update and the old definition's delete
        script_baseline(life, seconds=10_000)  # a cancelled run's baseline is stopped
        jobs.start_or_adopt(sm, monitoring.KIND, monitoring.baseline_request(_plan("mon-iam-3"), owned))
        jobs.stop_if_running(sm, monitoring.KIND, _plan("mon-iam-3").names.model)
        gone = monitoring.delete_monitoring(
            sm, cw, "churn-predictor", sleep=lambda _: None, owner="churn-predictor"
        )
    assert gone[0] == "monitoring schedule churn-predictor" and len(gone) == 1 + 1 + 4
    made = {f"sagemaker:{c.operation}" for c in calls if c.service == "sagemaker"}
    # a create with Tags needs sagemaker:AddTags too
    assert made | {"sagemaker:AddTags"} == granted(policies["monitored"], "ModelMonitor")
    assert granted(policies["no capture"], "ModelMonitor") == set()
    # the training role reads the endpoint's captures and the baseline under the training output
    reads = next(
        s["Resource"]
        for s in policies["monitored"]["training-and-model-permissions"]["Statement"]
        if s["Sid"] == "ReadDataAndArtifacts"
    )
    assert (
        f"arn:aws:s3:::{DATA_BUCKET}/captures/*" in reads
        and f"arn:aws:s3:::{DATA_BUCKET}/churn/output/*" in reads
    )


def test_a_previous_definition_sagemaker_still_holds_is_kept_for_teardown() -> None:
    from botocore.exceptions import ClientError

    class _Busy:
        def delete_data_quality_job_definition(self, **_: Any) -> None:
            error = {"Error": {"Code": "ResourceInUse", "Message": "an execution of it is running"}}
            raise ClientError(error, "DeleteDataQualityJobDefinition")  # type: ignore[arg-type]

    said: list[str] = []
    monitoring._delete_previous(_Busy(), "churn-predictor-old", said.append)
    assert said == [
        "Kept the previous run's data-quality job definition churn-predictor-old: An error occurred "
        "(ResourceInUse) when calling the DeleteDataQualityJobDefinition operation: an execution of it is "
        "running (teardown deletes it)."
    ]
