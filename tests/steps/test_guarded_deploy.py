"""Guarded deploys step by step against the local AWS (issue 16 item 2).

The endpoint's update with a canary or linear DeploymentConfig, played by the lifecycle emulation
(tests/support/sagemaker_lifecycle.py: provisioning, the canary share baking, the full shift, linear
steps, and an alarm in ALARM mid-bake rolling the endpoint back), and the alarms sagelift keeps for it:
created when the conf names none, checked when it names some, deleted by teardown only when its own.
Every request the steps send is checked against botocore's model.
"""

from __future__ import annotations

import pytest

from sagelift.domain.deployment import derive_default_alarm_names
from sagelift.domain.plan import Plan
from sagelift.steps.alarms import delete_model_alarms
from sagelift.steps.endpoint import conclude_deploy, reconcile_endpoint, wait_for_endpoint
from sagelift.steps.errors import StepFailed
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.task_context import step_plan

MODEL = "churn-predictor"
ERRORS, LATENCY = derive_default_alarm_names(MODEL)
TIME_SCALE = 1200.0  # emulated seconds per real second: a 600 s bake takes half a second


@pytest.fixture
def life(local_aws):
    with SageMakerLifecycle(time_scale=TIME_SCALE).installed(local_aws) as lifecycle:
        yield lifecycle


@pytest.fixture(scope="module")
def sm(local_aws_server):
    """Made once (a client parses its service model); ``life`` empties the local AWS before each test."""
    return local_aws_server.client("sagemaker", SCIENTIST_ACCOUNT)


@pytest.fixture(scope="module")
def cw(local_aws_server):
    return local_aws_server.client("cloudwatch", SCIENTIST_ACCOUNT)


def _plan(run: int, deployment: dict | None = None) -> Plan:
    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "sagemaker": {"check_interval_seconds": 1},
    }
    conf = {"endpoint": {"deployment": deployment}} if deployment else {}
    return Plan.from_xcom(
        step_plan(conf=conf, platform=platform, run_id=f"manual__2026-12-0{run}T10:00:00+00:00")
    )


def _tags(plan: Plan) -> list[dict[str, str]]:
    return [
        {"Key": "sagelift:model-name", "Value": plan.model_name},
        {"Key": "CostCenter", "Value": "cc-4711"},
    ]


def _model(sm, plan: Plan) -> None:
    sm.create_model(
        ModelName=plan.names.model,
        ExecutionRoleArn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model-execution",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://bucket/model.tar.gz"},
        Tags=_tags(plan),
    )


def _deploy(sm, cw, plan: Plan) -> dict:
    """deploy_endpoint as both engines run it: model, reconcile, wait, conclude."""
    _model(sm, plan)
    change = reconcile_endpoint(sm, plan, _tags(plan), cw)
    described = wait_for_endpoint(sm, plan) if change.wait else sm.describe_endpoint(EndpointName=MODEL)
    conclude_deploy(sm, plan, described, None, cw)
    return described


def _in_service(sm, life, first: Plan) -> None:
    life.endpoint_create(seconds=0)
    _deploy(sm, None, first)
    assert sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"] == first.names.endpoint_config


def _events(life) -> list[str]:
    return [what for name, _, what in life.deployment_events if name == MODEL]


def test_canary_bakes_its_share_then_shifts_all_traffic(life, sm, cw):
    _in_service(sm, life, _plan(1))
    second = _plan(2, {"type": "canary", "canary_percent": 10, "bake_seconds": 600})
    life.endpoint_update(seconds=60)
    _model(sm, second)

    with recording_aws_calls() as calls:
        change = reconcile_endpoint(sm, second, _tags(second), cw)
        life_now = sm.describe_endpoint(EndpointName=MODEL)
        shares = set()
        while (status := sm.describe_endpoint(EndpointName=MODEL)["EndpointStatus"]) == "Updating":
            shares.add(life.traffic(MODEL))
        described = sm.describe_endpoint(EndpointName=MODEL)
        conclude_deploy(sm, second, described, None, cw)

    assert change.operation == "update" and life_now["EndpointStatus"] == "Updating"
    assert status == "InService" and described["EndpointConfigName"] == second.names.endpoint_config
    assert 10 in shares  # the canary share was on the new fleet while the endpoint was Updating
    assert _events(life) == ["10% on the new fleet", "100% on the new fleet", "old fleet terminated"]
    update = next(c for c in calls if c.operation == "UpdateEndpoint")
    policy = update.params["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert update.params["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": ERRORS},
        {"AlarmName": LATENCY},
    ]
    assert [c.errors for c in calls if c.errors] == []
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix="sagelift-")["MetricAlarms"]}
    assert sorted(alarms) == [ERRORS, LATENCY]
    assert {d["Name"]: d["Value"] for d in alarms[ERRORS]["Dimensions"]} == {
        "EndpointName": MODEL,
        "VariantName": "AllTraffic",
    }
    tags = cw.list_tags_for_resource(ResourceARN=alarms[ERRORS]["AlarmArn"])["Tags"]
    assert {"Key": "sagelift:model-name", "Value": MODEL} in tags


def test_an_alarm_firing_mid_bake_rolls_back_and_fails_naming_it(life, sm, cw):
    first = _plan(1)
    _in_service(sm, life, first)
    second = _plan(2, {"type": "canary", "canary_percent": 10, "bake_seconds": 600})
    life.endpoint_update(seconds=60, alarm_fires_after=300, rollback_seconds=60)

    with pytest.raises(StepFailed) as failed:
        _deploy(sm, cw, second)

    message = str(failed.value)
    assert message.startswith(
        f"Endpoint {MODEL} is serving config {first.names.endpoint_config}, not this run's "
        f"{second.names.endpoint_config}: SageMaker rolled the update back after CloudWatch alarm {ERRORS} "
        "went into ALARM."
    )
    endpoint = sm.describe_endpoint(EndpointName=MODEL)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        first.names.endpoint_config,
    )
    assert ERRORS in endpoint["FailureReason"]
    assert _events(life) == ["10% on the new fleet", f"rolled back: {ERRORS} in ALARM"]


def test_an_alarm_the_team_sets_to_alarm_during_a_linear_bake_rolls_back(life, sm, cw):
    first = _plan(1)
    _in_service(sm, life, first)
    cw.put_metric_alarm(
        AlarmName="team-errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    second = _plan(
        2, {"type": "linear", "linear_step_percent": 25, "bake_seconds": 600, "alarms": ["team-errors"]}
    )
    life.endpoint_update(seconds=60)
    _model(sm, second)
    reconcile_endpoint(sm, second, _tags(second), cw)
    while not life.traffic(MODEL):  # the first step is on the new fleet
        sm.describe_endpoint(EndpointName=MODEL)
    cw.set_alarm_state(AlarmName="team-errors", StateValue="ALARM", StateReason="errors on the green fleet")

    with pytest.raises(StepFailed, match="rolled the update back after CloudWatch alarm team-errors went"):
        conclude_deploy(sm, second, wait_for_endpoint(sm, second), None, cw)
    assert sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"] == first.names.endpoint_config
    # the team's alarms are theirs: sagelift created none
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["team-errors"]


def test_linear_shifts_step_by_step(life, sm, cw):
    _in_service(sm, life, _plan(1))
    second = _plan(2, {"type": "linear", "linear_step_percent": 25, "bake_seconds": 300})
    life.endpoint_update(seconds=60)

    described = _deploy(sm, cw, second)

    assert described["EndpointConfigName"] == second.names.endpoint_config
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 300,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert _events(life) == [
        "25% on the new fleet",
        "50% on the new fleet",
        "75% on the new fleet",
        "100% on the new fleet",
        "old fleet terminated",
    ]


def test_a_conf_named_alarm_that_does_not_exist_is_refused_before_the_update(life, sm, cw):
    first = _plan(1)
    _in_service(sm, life, first)
    second = _plan(2, {"type": "canary", "canary_percent": 10, "alarms": ["team-errors"]})

    with recording_aws_calls() as calls, pytest.raises(StepFailed) as failed:
        _deploy(sm, cw, second)

    assert str(failed.value).startswith(
        f"endpoint.deployment.alarms: CloudWatch alarm team-errors does not exist in account {SCIENTIST_ACCOUNT}"
    )
    assert "UpdateEndpoint" not in [c.operation for c in calls]
    assert sm.describe_endpoint(EndpointName=MODEL)["EndpointConfigName"] == first.names.endpoint_config


def test_an_alarm_of_the_default_name_sagelift_did_not_create_is_not_overwritten(life, sm, cw):
    _in_service(sm, life, _plan(1))
    cw.put_metric_alarm(
        AlarmName=ERRORS,
        Namespace="Team",
        MetricName="Other",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    second = _plan(2, {"type": "canary", "canary_percent": 10})

    with pytest.raises(
        StepFailed, match=f"CloudWatch alarm {ERRORS} exists and it was not created by sagelift"
    ):
        _deploy(sm, cw, second)
    assert cw.describe_alarms(AlarmNames=[ERRORS])["MetricAlarms"][0]["Namespace"] == "Team"


def test_a_rerun_updates_the_alarms_in_place_and_teardown_deletes_only_sagelifts(life, sm, cw):
    _in_service(sm, life, _plan(1))
    life.endpoint_update(seconds=0)
    _deploy(sm, cw, _plan(2, {"type": "canary", "canary_percent": 10, "bake_seconds": 60}))
    _deploy(sm, cw, _plan(3, {"type": "linear", "linear_step_percent": 50, "bake_seconds": 60}))
    cw.put_metric_alarm(  # the team's own, and a look-alike of another model
        AlarmName="team-errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.put_metric_alarm(
        AlarmName=f"sagelift-{MODEL}-model-latency-copy",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "sagelift:model-name", "Value": MODEL}],
    )
    assert sorted(
        a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"sagelift-{MODEL}")["MetricAlarms"]
    ) == [
        ERRORS,
        LATENCY,
        f"sagelift-{MODEL}-model-latency-copy",
    ]

    assert delete_model_alarms(cw, MODEL) == [ERRORS, LATENCY]
    assert delete_model_alarms(cw, MODEL) == []
    assert sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]) == [
        f"sagelift-{MODEL}-model-latency-copy",
        "team-errors",
    ]


def test_an_unguarded_update_creates_no_alarm_and_sends_no_deployment_config(life, sm, cw):
    _in_service(sm, life, _plan(1))
    with recording_aws_calls() as calls:
        _deploy(sm, cw, _plan(2))
    update = next(c for c in calls if c.operation == "UpdateEndpoint")
    assert "DeploymentConfig" not in update.params
    assert [c.service for c in calls if c.service == "cloudwatch"] == []


def test_teardown_deletes_the_endpoint_and_sagelifts_alarms(life, sm, cw):
    from sagelift.domain.platform import SageMakerSettings
    from sagelift.domain.teardown import TeardownReport
    from sagelift.steps.teardown import delete_sagemaker_resources

    _in_service(sm, life, _plan(1))
    life.endpoint_update(seconds=0)
    _deploy(sm, cw, _plan(2, {"type": "canary", "canary_percent": 10, "bake_seconds": 60}))

    deleted = delete_sagemaker_resources(sm, MODEL, SageMakerSettings(check_interval_seconds=1), cw)

    assert deleted["alarms"] == [ERRORS, LATENCY]
    assert cw.describe_alarms()["MetricAlarms"] == []
    report = TeardownReport(MODEL, SCIENTIST_ACCOUNT, alarms=deleted["alarms"])
    assert f"CloudWatch alarms: {ERRORS}, {LATENCY}" in report.render()


def test_the_execution_roles_cloudwatch_grant_is_the_calls_guarded_deploys_make(life, sm, cw):
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig, SageMakerSettings
    from sagelift.steps.teardown import delete_sagemaker_resources

    platform = PlatformConfig.from_dict(
        {
            "region": REGION,
            "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
            "accounts": {SCIENTIST_ACCOUNT: {}},
        }
    )
    policy = render_policies(
        platform,
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:root",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )
    granted = {
        action: statement["Resource"]
        for statement in policy["execution-permissions"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("cloudwatch:")
    }
    _in_service(sm, life, _plan(1))
    life.endpoint_update(seconds=0)
    with recording_aws_calls() as calls:
        _deploy(sm, cw, _plan(2, {"type": "canary", "canary_percent": 10, "bake_seconds": 60}))
        delete_sagemaker_resources(sm, MODEL, SageMakerSettings(check_interval_seconds=1), cw)
    made = {f"cloudwatch:{c.operation}" for c in calls if c.service == "cloudwatch"}

    # PutMetricAlarm with Tags needs cloudwatch:TagResource too
    assert made | {"cloudwatch:TagResource"} == set(granted)
    own = f"arn:aws:cloudwatch:{REGION}:{SCIENTIST_ACCOUNT}:alarm:sagelift-*"
    writes = set(granted) - {"cloudwatch:DescribeAlarms"}
    assert {action for action, resource in granted.items() if resource == own} == writes
    for call in calls:
        if call.operation == "PutMetricAlarm":
            assert call.params["AlarmName"].startswith("sagelift-")


def test_a_first_guarded_deploy_creates_the_endpoint_and_its_alarms(life, sm, cw):
    plan = _plan(1, {"type": "canary", "canary_percent": 10})
    life.endpoint_create(seconds=0)
    with recording_aws_calls() as calls:
        described = _deploy(sm, cw, plan)

    assert described["EndpointConfigName"] == plan.names.endpoint_config
    assert "DeploymentConfig" not in next(c for c in calls if c.operation == "CreateEndpoint").params
    assert sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]) == [ERRORS, LATENCY]
