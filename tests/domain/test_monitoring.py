"""Model monitoring's settings (issue 20 item 3): the conf's rules refused at validate naming the field,
the settings' round trip through the plan and the KFP struct, and every request body (baseline job,
job definition, schedule create and update, drift alarms) validated against botocore's service model."""

from __future__ import annotations

from typing import Any

import pytest

from sagelift.domain import monitoring as m
from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.plan import Plan, build_plan
from sagelift.steps.monitoring import baseline_request
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

CAPTURES = f"s3://{DATA_BUCKET}/captures/"
TOPIC = f"arn:aws:sns:{REGION}:{SCIENTIST_ACCOUNT}:model-alerts"
KEY = f"arn:aws:kms:{REGION}:{SCIENTIST_ACCOUNT}:key/0b0c3a7e-4f3e-4a39-9d8e-6a1f2b3c4d5e"
CAPTURE = {"data_capture": {"sampling_percent": 20}}
MONITOR = {"data_quality": {"schedule": "hourly"}}


def _platform(region: str = REGION, **account: Any) -> dict[str, Any]:
    return {
        "region": region,
        "accounts": {
            SCIENTIST_ACCOUNT: {
                "deployers": {"users": ["admin"]},
                "endpoint": {"capture_prefixes": [CAPTURES]},
                **account,
            }
        },
    }


def _plan(platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    conf = {"endpoint": CAPTURE, "monitoring": MONITOR, **conf}
    raw = build_plan(
        demo_conf(**conf), platform or _platform(), "sagemaker_deploy", "mon-1", triggered_by="admin"
    )
    return Plan.from_xcom(raw)


def _refusal(platform: dict[str, Any] | None = None, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        _plan(platform, **conf)
    return str(err.value)


def test_an_empty_monitoring_is_off_and_the_task_skips() -> None:
    problems = Problems()
    assert not m.parse_monitoring(None, problems).enabled and not m.parse_monitoring("", problems).enabled
    assert not problems
    plan = _plan(monitoring={})
    assert "monitoring is not set" in str(plan.skip_reason("monitor_endpoint"))


def test_settings_round_trip_through_the_plan_and_the_kfp_struct() -> None:
    dq = {
        "schedule": "daily",
        "baseline_channel": "validation",
        "csv_header": True,
        "instance_type": "ml.m5.large",
        "alarm": {"actions": [TOPIC], "evaluation_periods": 2},
    }
    plan = _plan(monitoring={"data_quality": dq})
    settings = plan.params.monitoring
    assert settings.enabled and plan.skip_reason("monitor_endpoint") is None
    assert settings.schedule_expression == "cron(0 0 ? * * *)" and settings.alarm_actions == (TOPIC,)
    assert settings.to_conf() == {"data_quality": dq}
    assert (
        m.parse_monitoring(settings.to_conf(), Problems(), channels=["train", "validation"], capture=True)
        == settings
    )
    # the default channel: train
    assert _plan().params.monitoring.baseline_channel == "train"


@pytest.mark.parametrize(
    ("conf", "field", "rule"),
    [
        ({"endpoint": {}}, "monitoring", "needs data capture on the endpoint"),
        (
            {"endpoint": {}, "batch": {"input_s3_uri": f"s3://{DATA_BUCKET}/in/"}},
            "monitoring",
            "batch is set, so there is no endpoint to monitor",
        ),
        ({"model_docker_image": None, "endpoint": {}}, "monitoring", "a train-only run"),
        (
            {"monitoring": {"data_quality": {}}},
            "monitoring.data_quality.schedule",
            "required: hourly or daily",
        ),
        (
            {"monitoring": {"data_quality": {"schedule": "weekly"}}},
            "monitoring.data_quality.schedule",
            "hourly, daily",
        ),
        ({"monitoring": {"schedule": "hourly"}}, "monitoring.schedule", "unknown setting"),
        (
            {"monitoring": {"data_quality": {"schedule": "hourly", "baseline_channel": "test"}}},
            "monitoring.data_quality.baseline_channel",
            "is not a training channel",
        ),
        (
            {
                "monitoring": {
                    "data_quality": {
                        "schedule": "hourly",
                        "alarm": {"actions": [TOPIC.replace(SCIENTIST_ACCOUNT, "999999999999")]},
                    }
                }
            },
            "monitoring.data_quality.alarm.actions[0]",
            "must be a topic in the run's account",
        ),
        (
            {
                "monitoring": {
                    "data_quality": {"schedule": "hourly", "alarm": {"actions": ["https://hooks.example/x"]}}
                }
            },
            "monitoring.data_quality.alarm.actions[0]",
            "must be an SNS topic ARN",
        ),
        (
            {
                "monitoring": {
                    "data_quality": {"schedule": "hourly", "dataset_format": "json", "csv_header": True}
                }
            },
            "monitoring.data_quality.csv_header",
            "applies to csv only",
        ),
        # the baseline and the monitor are processing jobs: a type that only trains is refused too
        (
            {"monitoring": {"data_quality": {"schedule": "hourly", "instance_type": "ml.p4d.24xlarge"}}},
            "monitoring.data_quality.instance_type",
            "'ml.p4d.24xlarge' is not a SageMaker processing instance type",
        ),
        (
            {"monitoring": {"data_quality": {"schedule": "hourly", "instance_type": "ml.m5.xlarg"}}},
            "monitoring.data_quality.instance_type",
            "did you mean ml.m5.xlarge?",
        ),
    ],
)
def test_validate_refuses_naming_the_field_and_the_rule(conf: dict[str, Any], field: str, rule: str) -> None:
    message = _refusal(**conf)
    line = next(line for line in message.splitlines() if line.lstrip("- ").startswith(field))
    assert rule in line and len(line) < 200


def test_the_processing_instance_types_are_botocores() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert set(m.processing_instance_types()) == set(model.shape_for("ProcessingInstanceType").enum)


def test_a_run_that_does_not_train_has_no_channel_to_baseline() -> None:
    conf = {"model_artifact_s3_path": f"s3://{DATA_BUCKET}/churn/model.tar.gz", "training_docker_image": None}
    assert "needs a run that trains" in _refusal(**conf, training_channels=[])


def test_a_region_without_the_analyzer_image_is_refused() -> None:
    assert "analyzer image is not known in the platform's region il-central-1" in _refusal(
        _platform("il-central-1")
    )


def test_every_request_body_conforms_to_botocore() -> None:
    network = {
        "network": {
            "volume_kms_key": KEY,
            "output_kms_key": KEY,
            "subnets": ["subnet-0a1b2c3d"],
            "security_group_ids": ["sg-0a1b2c3d"],
        }
    }
    plan = _plan(
        _platform(**network),
        monitoring={"data_quality": {"schedule": "hourly", "alarm": {"actions": [TOPIC]}}},
    )
    tags = [{"Key": "team", "Value": "churn"}]
    settings = plan.params.monitoring
    baseline = baseline_request(plan, tags)
    assert (
        baseline["AppSpecification"]["ImageUri"]
        == "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    assert baseline["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
    assert baseline["NetworkConfig"]["VpcConfig"]["Subnets"] == ["subnet-0a1b2c3d"]
    definition = m.build_data_quality_job_definition_request(
        settings,
        definition_name=plan.names.model,
        endpoint_name=plan.names.endpoint,
        baseline_s3_uri="s3://b/base/",
        reports_s3_uri="s3://b/reports/",
        image=str(m.analyzer_image(REGION)),
        role_arn="arn:aws:iam::123456789012:role/r",
        tags=tags,
        network=plan.platform.account(plan.account_id).network,
    )
    assert (
        definition["DataQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"]
        == "s3://b/base/constraints.json"
    )
    create = m.build_monitoring_schedule_request(
        settings, schedule_name="churn-predictor", definition_name="d", tags=tags
    )
    update = m.build_update_monitoring_schedule_request(
        settings, schedule_name="churn-predictor", definition_name="d"
    )
    alarms = m.build_drift_alarm_requests(
        settings,
        endpoint_name="churn-predictor",
        schedule_name="churn-predictor",
        features=["_c0", "age group"],
        threshold=0.2,
        tags=tags,
    )
    assert [a["AlarmName"] for a in alarms] == [
        "sagelift-monitor-churn-predictor-_c0",
        "sagelift-monitor-churn-predictor-age_group",
    ]
    assert alarms[1]["MetricName"] == "feature_baseline_drift_age group" and alarms[0]["Period"] == 3600
    for service, operation, body in [
        ("sagemaker", "CreateProcessingJob", baseline),
        ("sagemaker", "CreateDataQualityJobDefinition", definition),
        ("sagemaker", "CreateMonitoringSchedule", create),
        ("sagemaker", "UpdateMonitoringSchedule", update),
        *[("cloudwatch", "PutMetricAlarm", a) for a in alarms],
    ]:
        assert validate_request(service, operation, body) == [], operation


def test_the_baseline_reads_only_the_first_ten_features_and_its_threshold() -> None:
    constraints = {
        "features": [{"name": f"_c{i}"} for i in range(12)],
        "monitoring_config": {"distribution_constraints": {"comparison_threshold": 0.25}},
    }
    features, threshold = m.baseline_features(constraints)
    assert features == [f"_c{i}" for i in range(10)] and threshold == 0.25
    assert m.baseline_features({}) == ([], 0.1)


def test_the_readme_example_is_a_valid_monitored_run() -> None:
    import json

    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Model monitoring") :]
    section = section[: section.index("\n### ")]
    example = json.loads(
        section[section.index("```json") + 7 : section.index("```\n", section.index("```json"))]
    )
    settings = _plan(**example).params.monitoring
    assert settings.enabled and settings.alarm_actions and settings.baseline_channel == "train"
    from sagelift.dags.params import airflow_params
    from sagelift.domain.params import PARAMETERS

    form = airflow_params()["monitoring"]
    for key in ("schedule", "baseline_channel", "dataset_format", "csv_header", "instance_type", "actions"):
        assert f"`{key}`" in section or f"`alarm.{key}`" in section, key
        assert key in form.description, key
    # the form's example is a valid monitor of the demo conf (with capture on)
    (spec,) = [p for p in PARAMETERS if p.name == "monitoring"]
    assert _plan(monitoring=spec.examples[0]).params.monitoring.schedule == "daily"


def test_a_model_on_a_shared_multi_model_endpoint_cannot_be_monitored() -> None:
    problems = Problems()
    m.parse_monitoring(MONITOR, problems, channels=["train"], capture=True, shared_endpoint=True)
    with pytest.raises(SageliftValidationError) as err:
        problems.raise_if_any()
    line = next(line for line in str(err.value).splitlines() if "multi_model is set" in line)
    assert "monitoring" in line and len(line) < 200
