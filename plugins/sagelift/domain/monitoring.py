"""The conf's optional ``monitoring`` object (issue 20 item 3): a data-quality monitor on the endpoint.

With ``monitoring.data_quality`` set (and the endpoint capturing data), monitor_endpoint:

1. runs a **baseline** processing job with SageMaker's Model Monitor analyzer image over one training
   channel (``baseline_channel``, default ``train`` or the first channel); it writes ``statistics.json`` and
   ``constraints.json`` under ``<training_s3_output_path>/<job>/monitoring/baseline/``;
2. creates this run's **data-quality job definition** (named as the run's model) over the endpoint's
   captured data, against that baseline, reporting under
   ``<training_s3_output_path>/monitoring/<model_name>/reports/``;
3. creates the endpoint's **monitoring schedule** (named after the endpoint: a re-run updates it to its new
   definition, and the previous definition is deleted once no schedule uses it), hourly or daily;
4. puts one CloudWatch **alarm** per baselined feature (at most ``MAX_FEATURE_ALARMS``) on the analyzer's
   drift metric ``feature_baseline_drift_<feature>`` in namespace ``aws/sagemaker/Endpoints/data-metrics``
   (dimensions Endpoint and MonitoringSchedule), above the baseline's comparison threshold; its actions
   are the conf's SNS topics in the run's account.

Everything here is pure: the settings, their rules (``parse_monitoring``; the rules between monitoring and
the rest of the conf are checked there too, naming the field), names, and the request bodies.

The analyzer image's registry per region is SageMaker's own table, as the SageMaker Python SDK ships it
(src/sagemaker/image_uri_config/model-monitor.json, "Prebuilt Amazon SageMaker Model Monitor container
images" in the SageMaker developer guide); a region outside it is refused at validate.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, show
from sagelift.domain.security import NetworkSettings

FIELD = "monitoring"
DQ = f"{FIELD}.data_quality"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)
SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
PERIOD_SECONDS = {"hourly": 3600, "daily": 86400}
DATASET_FORMATS = ("csv", "json", "parquet")
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
# The baseline and the monitor are processing jobs. botocore's ProcessingInstanceType is its training
# types (shipped in instance_types.json) less these; test_monitoring checks the two still agree.
NOT_PROCESSING_TYPES = frozenset(
    {
        *(f"ml.c5n.{size}" for size in ("xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge")),
        "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.p4de.24xlarge",
        "ml.p5.48xlarge",
        "ml.p5e.48xlarge",
        "ml.p5en.48xlarge",
        "ml.p6-b200.48xlarge",
        "ml.p6-b300.48xlarge",
        "ml.p6e-gb200.36xlarge",
        "ml.trn1.2xlarge",
        "ml.trn1.32xlarge",
        "ml.trn1n.32xlarge",
        "ml.trn2.48xlarge",
    }
)
SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:(\d{12}):[A-Za-z0-9_-]{1,256}$")
MAX_ALARM_ACTIONS = 5  # CloudWatch's limit on AlarmActions
MAX_FEATURE_ALARMS = 10
DEFAULT_DRIFT_THRESHOLD = 0.1  # the analyzer's default comparison_threshold
VOLUME_GB = 20
BASELINE_MAX_SECONDS = 3600
MONITOR_MAX_SECONDS = 1800  # under the hourly schedule's period, as SageMaker requires
METRIC_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
ALARM_PREFIX = "sagelift-monitor-"
INPUT_PATH = "/opt/ml/processing/input/baseline_dataset_input"
ENDPOINT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"

# SageMaker Model Monitor's analyzer registry per region (sagemaker-python-sdk model-monitor.json, v1).
ANALYZER_REGISTRIES = {
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"

SETTINGS_DOC = (
    "Optional, as a JSON object: a data-quality monitor on the endpoint, needs endpoint.data_capture. "
    'Keys under "data_quality": schedule (hourly or daily, required); baseline_channel (default train, '
    "else the first channel); dataset_format (csv, json, parquet); csv_header; instance_type (default "
    f"{DEFAULT_INSTANCE_TYPE}); alarm {{actions: SNS topic ARNs in the run's account, evaluation_periods}}. "
    "README: Model monitoring."
)


@cache
def processing_instance_types() -> tuple[str, ...]:
    """The instance types a processing job (the baseline, the monitor) runs on."""
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_types.json").read_text())
    return tuple(t for t in data["training"] if t not in NOT_PROCESSING_TYPES)


@dataclass(frozen=True)
class MonitoringSettings:
    schedule: str | None = None  # hourly or daily; None: monitoring is off
    baseline_channel: str | None = None  # resolved at validate: the conf's, else train, else the first
    dataset_format: str = "csv"
    csv_header: bool = False
    instance_type: str = DEFAULT_INSTANCE_TYPE
    alarm_actions: tuple[str, ...] = ()
    alarm_evaluation_periods: int = 1

    @property
    def enabled(self) -> bool:
        return self.schedule is not None

    @property
    def schedule_expression(self) -> str:
        return SCHEDULES[self.schedule or "daily"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alarm_actions"] = list(self.alarm_actions)
        return data

    def to_conf(self) -> dict[str, Any]:
        """The conf's ``monitoring`` object that parses back to these settings, without nulls or defaults
        (a KFP struct holds no nulls); empty when monitoring is off."""
        if not self.enabled:
            return {}
        d = MonitoringSettings()
        dq: dict[str, Any] = {"schedule": self.schedule}
        for key in ("baseline_channel", "dataset_format", "csv_header", "instance_type"):
            value = getattr(self, key)
            if value is not None and value != getattr(d, key):
                dq[key] = value
        alarm: dict[str, Any] = {}
        if self.alarm_actions:
            alarm["actions"] = list(self.alarm_actions)
        if self.alarm_evaluation_periods != d.alarm_evaluation_periods:
            alarm["evaluation_periods"] = self.alarm_evaluation_periods
        if alarm:
            dq["alarm"] = alarm
        return {"data_quality": dq}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MonitoringSettings:
        data = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__ and v is not None}
        if "alarm_actions" in data:
            data["alarm_actions"] = tuple(data["alarm_actions"])
        return cls(**data)


def parse_monitoring(
    raw: Any,
    problems: Problems,
    *,
    channels: Sequence[str] = (),
    trains: bool = True,
    deploys: bool = True,
    batch: bool = False,
    capture: bool = False,
    account_id: str | None = None,
    shared_endpoint: bool = False,
) -> MonitoringSettings:
    """The conf's ``monitoring`` object as MonitoringSettings; adds a problem per broken rule, the rules
    between monitoring and the rest of the run included (capture on, an endpoint, a training channel)."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return MonitoringSettings()
    top = ObjectReader(data, FIELD, ("data_quality",), problems)
    dq_raw = data.get("data_quality")
    if not isinstance(dq_raw, Mapping):
        problems.add(DQ, "required: an object with at least a schedule (hourly or daily)")
        return MonitoringSettings()
    r = ObjectReader(
        dq_raw,
        top.name("data_quality"),
        ("schedule", "baseline_channel", "dataset_format", "csv_header", "instance_type", "alarm"),
        problems,
    )
    if not r.given("schedule"):
        problems.add(r.name("schedule"), "required: hourly or daily")
    schedule = r.choice("schedule", "daily", tuple(SCHEDULES))
    instance_type = r.text("instance_type", DEFAULT_INSTANCE_TYPE, 64)
    if instance_type not in processing_instance_types():
        close = difflib.get_close_matches(str(instance_type), processing_instance_types(), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else " like ml.m5.xlarge"
        problems.add(
            r.name("instance_type"),
            f"{show(instance_type)} is not a SageMaker processing instance type{hint}",
        )
        instance_type = DEFAULT_INSTANCE_TYPE
    settings = MonitoringSettings(
        schedule=schedule,
        baseline_channel=_baseline_channel(r, channels, trains),
        dataset_format=r.choice("dataset_format", "csv", DATASET_FORMATS),
        csv_header=r.flag("csv_header", False),
        instance_type=str(instance_type),
        **_alarm(r, account_id),
    )
    if settings.csv_header and settings.dataset_format != "csv":
        problems.add(
            r.name("csv_header"), f"applies to csv only; dataset_format is {settings.dataset_format}"
        )
    if not deploys:
        problems.add(
            FIELD,
            "a train-only run (no model_docker_image, no training_algorithm_name) has no endpoint to monitor; leave monitoring empty",
        )
    elif shared_endpoint:
        problems.add(
            FIELD,
            "multi_model is set: the team's shared endpoint serves other models too, so a monitor of this "
            "model's data cannot go on it; leave monitoring empty",
        )
    elif batch:
        problems.add(
            FIELD,
            "batch is set, so there is no endpoint to monitor; leave monitoring empty (README: Model monitoring)",
        )
    elif not capture:
        problems.add(
            FIELD, "needs data capture on the endpoint: set endpoint.data_capture (README: Model monitoring)"
        )
    return settings


def _baseline_channel(r: ObjectReader, channels: Sequence[str], trains: bool) -> str | None:
    if not trains:
        r.problems.add(
            FIELD,
            "needs a run that trains: the baseline runs over a training channel (model_artifact_s3_path is set)",
        )
        return None
    name = r.text("baseline_channel", None, 64)
    if name is None:
        return "train" if "train" in channels else (channels[0] if channels else None)
    if channels and name not in channels:
        r.problems.add(
            r.name("baseline_channel"), f"{show(name)} is not a training channel ({', '.join(channels[:5])})"
        )
        return None
    return str(name)


def _alarm(r: ObjectReader, account_id: str | None) -> dict[str, Any]:
    raw = r.raw.get("alarm")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        r.problems.add(r.name("alarm"), "must be an object with actions and evaluation_periods")
        return {}
    a = ObjectReader(raw, r.name("alarm"), ("actions", "evaluation_periods"), r.problems)
    actions = raw.get("actions") or []
    where = a.name("actions")
    if not isinstance(actions, list) or len(actions) > MAX_ALARM_ACTIONS:
        r.problems.add(where, f"a list of at most {MAX_ALARM_ACTIONS} SNS topic ARNs")
        actions = []
    good: list[str] = []
    for i, arn in enumerate(actions):
        match = SNS_ARN_RE.match(arn) if isinstance(arn, str) else None
        if match is None:
            r.problems.add(f"{where}[{i}]", f"must be an SNS topic ARN, got {show(arn, 48)}")
        elif account_id is not None and match.group(1) != account_id:
            r.problems.add(
                f"{where}[{i}]", f"must be a topic in the run's account {account_id}, got {show(arn, 48)}"
            )
        else:
            good.append(arn)
    return {
        "alarm_actions": tuple(good),
        "alarm_evaluation_periods": a.whole("evaluation_periods", 1, 1, 24),
    }


def analyzer_image(region: str) -> str | None:
    """The Model Monitor analyzer image in ``region``, or None where SageMaker publishes none we know."""
    registry = ANALYZER_REGISTRIES.get(region)
    if registry is None:
        return None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{registry}.dkr.ecr.{region}.{domain}/{ANALYZER_REPOSITORY}"


def check_monitoring_region(settings: MonitoringSettings, region: str, problems: Problems) -> None:
    if settings.enabled and analyzer_image(region) is None:
        problems.add(
            FIELD, f"SageMaker Model Monitor's analyzer image is not known in the platform's region {region}"
        )


def baseline_s3_uri(training_output: str, job: str) -> str:
    """Where the run's baseline writes statistics.json and constraints.json (beside its training job)."""
    return f"{training_output.rstrip('/')}/{job}/monitoring/baseline/"


def reports_s3_uri(training_output: str, model_name: str) -> str:
    """Where the schedule's executions write their reports: stable across the model's runs."""
    return f"{training_output.rstrip('/')}/monitoring/{model_name}/reports/"


def channel_s3_uri(settings: MonitoringSettings, channels: Sequence[Mapping[str, Any]]) -> str:
    for channel in channels:
        if channel.get("ChannelName") == settings.baseline_channel:
            return str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    raise ValueError(f"no training channel named {settings.baseline_channel!r}")


def _dataset_format(settings: MonitoringSettings) -> str:
    if settings.dataset_format == "csv":
        header = "true" if settings.csv_header else "false"
        return f'{{"csv": {{"header": {header}, "output_columns_position": "START"}}}}'
    if settings.dataset_format == "json":
        return '{"json": {"lines": true}}'
    return '{"parquet": {}}'


def _cluster(settings: MonitoringSettings, network: NetworkSettings) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "InstanceCount": 1,
        "InstanceType": settings.instance_type,
        "VolumeSizeInGB": VOLUME_GB,
    }
    if network.volume_kms_key:
        cluster["VolumeKmsKeyId"] = network.volume_kms_key
    return {"ClusterConfig": cluster}


def _network(network: NetworkSettings) -> dict[str, Any] | None:
    if (
        not network.subnets
        and not network.network_isolation
        and not network.inter_container_traffic_encryption
    ):
        return None
    config: dict[str, Any] = {
        "EnableNetworkIsolation": network.network_isolation,
        "EnableInterContainerTrafficEncryption": network.inter_container_traffic_encryption,
    }
    if network.vpc_config:
        config["VpcConfig"] = network.vpc_config
    return config


def build_baseline_job_request(
    settings: MonitoringSettings,
    *,
    job_name: str,
    input_s3_uri: str,
    output_s3_uri: str,
    image: str,
    role_arn: str,
    tags: Sequence[Mapping[str, str]],
    network: NetworkSettings,
) -> dict[str, Any]:
    """CreateProcessingJob for the baseline: the analyzer over the training channel, as the SageMaker
    SDK's DefaultModelMonitor.suggest_baseline sends it."""
    output: dict[str, Any] = {
        "Outputs": [
            {
                "OutputName": "monitoring_output",
                "S3Output": {"S3Uri": output_s3_uri, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"},
            }
        ]
    }
    if network.output_kms_key:
        output["KmsKeyId"] = network.output_kms_key
    request: dict[str, Any] = {
        "ProcessingJobName": job_name,
        "ProcessingInputs": [
            {
                "InputName": "baseline_dataset_input",
                "S3Input": {
                    "S3Uri": input_s3_uri,
                    "LocalPath": INPUT_PATH,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        ],
        "ProcessingOutputConfig": output,
        "ProcessingResources": _cluster(settings, network),
        "StoppingCondition": {"MaxRuntimeInSeconds": BASELINE_MAX_SECONDS},
        "AppSpecification": {"ImageUri": image},
        "Environment": {
            "dataset_format": _dataset_format(settings),
            "dataset_source": INPUT_PATH,
            "output_path": OUTPUT_PATH,
            "publish_cloudwatch_metrics": "Disabled",
        },
        "RoleArn": role_arn,
        "Tags": [dict(t) for t in tags],
    }
    if (config := _network(network)) is not None:
        request["NetworkConfig"] = config
    return request


def build_data_quality_job_definition_request(
    settings: MonitoringSettings,
    *,
    definition_name: str,
    endpoint_name: str,
    baseline_s3_uri: str,
    reports_s3_uri: str,
    image: str,
    role_arn: str,
    tags: Sequence[Mapping[str, str]],
    network: NetworkSettings,
) -> dict[str, Any]:
    """CreateDataQualityJobDefinition: the analyzer over the endpoint's captured data, against the
    baseline's constraints and statistics, publishing the drift metrics the alarms watch."""
    base = baseline_s3_uri.rstrip("/")
    output: dict[str, Any] = {
        "MonitoringOutputs": [
            {"S3Output": {"S3Uri": reports_s3_uri, "LocalPath": OUTPUT_PATH, "S3UploadMode": "Continuous"}}
        ]
    }
    if network.output_kms_key:
        output["KmsKeyId"] = network.output_kms_key
    request: dict[str, Any] = {
        "JobDefinitionName": definition_name,
        "DataQualityBaselineConfig": {
            "ConstraintsResource": {"S3Uri": f"{base}/constraints.json"},
            "StatisticsResource": {"S3Uri": f"{base}/statistics.json"},
        },
        "DataQualityAppSpecification": {
            "ImageUri": image,
            "Environment": {"publish_cloudwatch_metrics": "Enabled"},
        },
        "DataQualityJobInput": {
            "EndpointInput": {
                "EndpointName": endpoint_name,
                "LocalPath": ENDPOINT_PATH,
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "DataQualityJobOutputConfig": output,
        "JobResources": _cluster(settings, network),
        "RoleArn": role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": MONITOR_MAX_SECONDS},
        "Tags": [dict(t) for t in tags],
    }
    if (config := _network(network)) is not None:
        request["NetworkConfig"] = config
    return request


def schedule_config(settings: MonitoringSettings, definition_name: str) -> dict[str, Any]:
    return {
        "ScheduleConfig": {"ScheduleExpression": settings.schedule_expression},
        "MonitoringJobDefinitionName": definition_name,
        "MonitoringType": "DataQuality",
    }


def build_monitoring_schedule_request(
    settings: MonitoringSettings,
    *,
    schedule_name: str,
    definition_name: str,
    tags: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    return {
        "MonitoringScheduleName": schedule_name,
        "MonitoringScheduleConfig": schedule_config(settings, definition_name),
        "Tags": [dict(t) for t in tags],
    }


def build_update_monitoring_schedule_request(
    settings: MonitoringSettings, *, schedule_name: str, definition_name: str
) -> dict[str, Any]:
    return {
        "MonitoringScheduleName": schedule_name,
        "MonitoringScheduleConfig": schedule_config(settings, definition_name),
    }


def alarm_prefix(endpoint_name: str) -> str:
    """Every monitoring alarm of the endpoint starts with this (teardown deletes by it)."""
    return f"{ALARM_PREFIX}{endpoint_name}-"


def alarm_name(endpoint_name: str, feature: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", feature)[:100]
    return f"{alarm_prefix(endpoint_name)}{safe}"


def baseline_features(constraints: Mapping[str, Any]) -> tuple[list[str], float]:
    """The baselined feature names (at most MAX_FEATURE_ALARMS, in the baseline's order) and the drift
    threshold, from the baseline's constraints.json."""
    features = [
        str(f["name"]) for f in constraints.get("features") or [] if isinstance(f, Mapping) and f.get("name")
    ]
    config = (constraints.get("monitoring_config") or {}).get("distribution_constraints") or {}
    threshold = config.get("comparison_threshold", DEFAULT_DRIFT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        threshold = DEFAULT_DRIFT_THRESHOLD
    return features[:MAX_FEATURE_ALARMS], float(threshold)


def build_drift_alarm_requests(
    settings: MonitoringSettings,
    *,
    endpoint_name: str,
    schedule_name: str,
    features: Sequence[str],
    threshold: float,
    tags: Sequence[Mapping[str, str]],
) -> list[dict[str, Any]]:
    """PutMetricAlarm per feature: the analyzer's feature_baseline_drift_<feature> above the baseline's
    threshold in an execution (missing data, no execution yet, is not a breach)."""
    period = PERIOD_SECONDS[settings.schedule or "daily"]
    requests = []
    for feature in features:
        request: dict[str, Any] = {
            "AlarmName": alarm_name(endpoint_name, feature),
            "AlarmDescription": (
                f"sagelift: data drift of feature {feature[:200]} on endpoint {endpoint_name} above the "
                f"baseline's threshold {threshold:g} (monitoring schedule {schedule_name})"
            ),
            "Namespace": METRIC_NAMESPACE,
            "MetricName": f"feature_baseline_drift_{feature}"[:255],
            "Dimensions": [
                {"Name": "Endpoint", "Value": endpoint_name},
                {"Name": "MonitoringSchedule", "Value": schedule_name},
            ],
            "Statistic": "Maximum",
            "Period": period,
            "EvaluationPeriods": settings.alarm_evaluation_periods,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "Tags": [dict(t) for t in tags],
        }
        if settings.alarm_actions:
            request["AlarmActions"] = list(settings.alarm_actions)
        requests.append(request)
    return requests


def schedule_console_url(region: str, schedule_name: str) -> str:
    host = (
        f"{region}.console.amazonaws.cn" if region.startswith("cn-") else f"{region}.console.aws.amazon.com"
    )
    return f"https://{host}/sagemaker/home?region={region}#/monitoring-schedules/{schedule_name}"
