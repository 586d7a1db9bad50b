"""The pipeline's run parameters: defined once, validated once, shared by every engine.

The 13 parameters of the original Kubeflow pipeline keep their names and defaults, so the original
payload is accepted unchanged: its JSON-valued parameters (environment, training_hyperparameters,
training_channels) may arrive as JSON-encoded strings and its counts as strings like "2"; native
objects, arrays and integers work too. A few optional parameters narrow platform settings where the
platform allows it (the tag document, the PVC); nothing here can override platform configuration.

``PARAMETERS`` feeds the Airflow trigger form (see sagelift.dags.params) and the KFP pipeline;
``parse_params`` turns a raw conf into ``RunParams`` or raises one SageliftValidationError listing every
broken rule with its field.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.batch_settings import SETTINGS_DOC as BATCH_SETTINGS_DOC
from sagelift.domain.batch_settings import BatchSettings, parse_batch
from sagelift.domain.bounded_json import JsonLimits, find_json_problem, parse_json_text, whole_number
from sagelift.domain.channels import parse_training_channels
from sagelift.domain.endpoint_settings import (
    EndpointSettings,
    check_instance_type_applies,
    parse_endpoint,
)
from sagelift.domain.errors import Problems, SageliftValidationError, clip, kind, show, subfield
from sagelift.domain.images import parse_image_reference
from sagelift.domain.labeling import SETTINGS_DOC as LABELING_SETTINGS_DOC
from sagelift.domain.labeling import LabelingSettings, parse_labeling
from sagelift.domain.monitoring import SETTINGS_DOC as MONITORING_SETTINGS_DOC
from sagelift.domain.monitoring import MonitoringSettings, parse_monitoring
from sagelift.domain.multi_model import SETTINGS_DOC as MULTI_MODEL_SETTINGS_DOC
from sagelift.domain.multi_model import MultiModelSettings, parse_multi_model
from sagelift.domain.overrides import parse_request_overrides
from sagelift.domain.platform import is_dns1123_name, is_quantity, is_s3_uri
from sagelift.domain.promotion import PromoteFrom, parse_promote_from
from sagelift.domain.quality_gate import QualityGate, parse_quality_gate
from sagelift.domain.recommendation import AUTO as AUTO_INSTANCE_TYPE
from sagelift.domain.recommendation import SETTINGS_DOC as RECOMMENDATION_SETTINGS_DOC
from sagelift.domain.recommendation import RecommendationSettings, parse_recommendation
from sagelift.domain.training_settings import SETTINGS_DOC as TRAINING_SETTINGS_DOC
from sagelift.domain.training_settings import TrainingSettings, parse_training, resolve_metric_definitions
from sagelift.domain.tuning_settings import SETTINGS_DOC as TUNING_SETTINGS_DOC
from sagelift.domain.tuning_settings import TuningSettings, parse_tuning

# SageMaker resource names: CreateTrainingJob/CreateModel/CreateEndpoint share this rule.
SAGEMAKER_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z")
SAGEMAKER_NAME_MAX = 63
# "-" + 8 hex characters of the run key are appended to per-run names.
RUN_SUFFIX_LEN = 9
MODEL_NAME_MAX = SAGEMAKER_NAME_MAX - RUN_SUFFIX_LEN

ACCOUNT_ID_RE = re.compile(r"^[0-9]{12}\Z")
S3_URI_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<key>/.*)?\Z")
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+\Z")
# CreateModel's Environment keys; values are any text of at most 1024 characters.
ENV_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
# Image references SageMaker takes (TrainingImage, PrimaryContainer.Image): at most 255 characters.
IMAGE_MAX = 255

MAX_TRAINING_INSTANCES = 100
MAX_HYPERPARAMETERS = 100
MAX_ENV_ENTRIES = 100

# What is read of a conf before any rule looks at it: plain text parameters up to TEXT_MAX characters,
# JSON parameters (a JSON string or a native value) within JSON_LIMITS. Beyond, the field is refused.
TEXT_MAX = 2048
JSON_LIMITS = JsonLimits(max_chars=512 * 1024, max_depth=16, max_nodes=20_000, max_string=64 * 1024)
UNKNOWN_KEYS_LISTED = 10


@cache
def instance_types() -> dict[str, tuple[str, ...]]:
    """SageMaker's training and endpoint instance types, shipped from botocore's model."""
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_types.json").read_text())
    return {"training": tuple(data["training"]), "endpoint": tuple(data["endpoint"])}


@cache
def _algorithms() -> dict[str, Any]:
    return json.loads(resources.files("sagelift.domain").joinpath("algorithms.json").read_text())


def builtin_algorithms() -> tuple[str, ...]:
    return tuple(sorted(_algorithms()["algorithms"]))


def builtin_algorithm_image(name: str, region: str) -> str | None:
    """The built-in algorithm's training image in ``region``, or None when the table has no entry."""
    table = _algorithms()
    algorithm = table["algorithms"].get(name)
    if algorithm is None:
        return None
    registry = table["registries"][algorithm["registries"]].get(region)
    if registry is None:
        return None
    return f"{registry}.dkr.ecr.{region}.amazonaws.com/{algorithm['repository']}:{algorithm['tag']}"


# --- the parameter definitions ----------------------------------------------------------------------
SECTION_MODEL = "Model and account"
SECTION_TRAINING = "Training"
SECTION_DEPLOYMENT = "Deployment"
SECTION_ADVANCED = "Advanced (optional platform overrides)"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    schema: dict[str, Any]
    title: str
    description: str
    section: str
    examples: tuple[Any, ...] = ()
    original: bool = True  # one of the 13 parameters of the original KFP pipeline


_STRING_OR_EMPTY = {"type": ["string", "null"]}

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model_name",
        "",
        _STRING_OR_EMPTY,
        "Model name",
        "Name of the model to train and deploy. Names the training job, model and endpoint config of each run "
        f"and the endpoint itself (stable across runs). Letters, digits and '-', at most {MODEL_NAME_MAX} "
        "characters.",
        SECTION_MODEL,
        ("churn-predictor",),
    ),
    ParamSpec(
        "account_id",
        "",
        {"type": ["string", "integer", "null"]},
        "Scientist AWS account",
        "Twelve-digit id of your (the data scientist's) AWS account, where the model is trained and deployed. "
        "It must be onboarded to sagelift by an ML engineer.",
        SECTION_MODEL,
        ("333333333333",),
    ),
    ParamSpec(
        "model_docker_image",
        "",
        _STRING_OR_EMPTY,
        "Inference image",
        "Docker image that serves the model, e.g. <account>.dkr.ecr.<region>.amazonaws.com/repo:tag. "
        "Required, except with a built-in training algorithm, whose image serves by default. Images outside "
        "your account's ECR are copied into it first.",
        SECTION_DEPLOYMENT,
        ("333333333333.dkr.ecr.us-east-1.amazonaws.com/churn-serving:1.4",),
    ),
    ParamSpec(
        "model_artifact_s3_path",
        "",
        _STRING_OR_EMPTY,
        "Existing model artifact",
        "S3 URI of an existing model.tar.gz. When given, training is skipped and this artifact is deployed; "
        "leave the training image and algorithm empty.",
        SECTION_DEPLOYMENT,
        ("s3://my-bucket/models/churn/model.tar.gz",),
    ),
    ParamSpec(
        "environment",
        {},
        {"type": ["object", "string", "null"]},
        "Endpoint environment",
        "Environment variables for the model container, as a JSON object of strings (a JSON-encoded string "
        "is accepted too).",
        SECTION_DEPLOYMENT,
        ({"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},),
    ),
    ParamSpec(
        "training_algorithm_name",
        "",
        _STRING_OR_EMPTY,
        "Built-in algorithm",
        "Train with a SageMaker built-in algorithm instead of your own image: one of "
        + ", ".join(builtin_algorithms())
        + ". Give this or the training image, not both.",
        SECTION_TRAINING,
        ("xgboost",),
    ),
    ParamSpec(
        "training_docker_image",
        "",
        _STRING_OR_EMPTY,
        "Training image",
        "Docker image with your training code. Give this or a built-in algorithm, not both.",
        SECTION_TRAINING,
        ("333333333333.dkr.ecr.us-east-1.amazonaws.com/churn-train:1.4",),
    ),
    ParamSpec(
        "training_hyperparameters",
        {},
        {"type": ["object", "string", "null"]},
        "Hyperparameters",
        "Hyperparameters passed to the training job, as a JSON object (a JSON-encoded string is accepted "
        "too). Values are sent as strings; at most 100, keys up to 256 and values up to 2500 characters.",
        SECTION_TRAINING,
        ({"max_depth": "5", "eta": "0.2"},),
    ),
    ParamSpec(
        "training_instance_count",
        2,
        {"type": ["integer", "string"]},
        "Training instances",
        f"Number of training instances (1-{MAX_TRAINING_INSTANCES}) for distributed training.",
        SECTION_TRAINING,
        (2,),
    ),
    ParamSpec(
        "training_instance_type",
        "ml.m5.large",
        {"type": "string"},
        "Training instance type",
        "SageMaker ML instance type for training; start typing to pick one from the list.",
        SECTION_TRAINING,
        ("ml.m5.large",),
    ),
    ParamSpec(
        "endpoint_instance_type",
        "ml.m5.large",
        {"type": "string"},
        "Endpoint instance type",
        "SageMaker ML instance type that hosts the endpoint; start typing to pick one from the list. "
        '"auto": recommend_instance picks the cheapest type that fits the model (its artifact\'s size, the '
        "image's CPU or GPU serving, your account's allowed types) from sagelift's price table, or an "
        "Inference Recommender job's cheapest fitting answer; the run summary lists the fits with prices per "
        "hour and the pick (README: Instance recommendation).",
        SECTION_DEPLOYMENT,
        ("ml.m5.large", "auto"),
    ),
    ParamSpec(
        "training_channels",
        [],
        {"type": ["array", "string", "null"]},
        "Training channels",
        "Data channels for the training job (at least one when training): a JSON array shaped like "
        "CreateTrainingJob's InputDataConfig (ChannelName, DataSource.S3DataSource.S3Uri, ...); a "
        "JSON-encoded string is accepted too.",
        SECTION_TRAINING,
        (
            [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3Uri": "s3://my-bucket/churn/train/",
                            "S3DataType": "S3Prefix",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
        ),
    ),
    ParamSpec(
        "training_s3_output_path",
        "",
        _STRING_OR_EMPTY,
        "Training output path",
        "S3 URI under which the training job writes the model artifact. Required when training.",
        SECTION_TRAINING,
        ("s3://my-bucket/churn/output/",),
    ),
    ParamSpec(
        "plan_only",
        False,
        {"type": ["boolean", "null"]},
        "Plan only",
        "When true, the run validates, reaches your account and reads it, then prints what it would create, "
        "update or leave unchanged (old -> new for each changed field) and stops without changing anything.",
        SECTION_DEPLOYMENT,
        (True,),
        original=False,
    ),
    ParamSpec(
        "tags_s3_path",
        "",
        _STRING_OR_EMPTY,
        "Tag document override",
        "S3 URI of a tag document to use instead of the platform's standard one. Usually left empty.",
        SECTION_ADVANCED,
        ("s3://my-bucket/tags/team-tags.json",),
        original=False,
    ),
    ParamSpec(
        "pvc_name",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume claim name",
        "Name of the PersistentVolumeClaim ensured by step 1 (a DNS-1123 name). Empty: the platform default.",
        SECTION_ADVANCED,
        ("churn-scratch",),
        original=False,
    ),
    ParamSpec(
        "pvc_size",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume claim size",
        "Storage request of the claim, a Kubernetes quantity such as 50Mi, up to the platform's maximum. "
        "Empty: the platform default.",
        SECTION_ADVANCED,
        ("1Gi", "10Gi"),
        original=False,
    ),
    ParamSpec(
        "pvc_storage_class",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume storage class",
        "StorageClass of the claim, one the platform allows. Empty: the platform default.",
        SECTION_ADVANCED,
        ("standard",),
        original=False,
    ),
    ParamSpec(
        "endpoint",
        {},
        {"type": ["object", "string", "null"]},
        "Serving settings",
        "Optional, as a JSON object (or its JSON text); empty serves as before: realtime, the platform's "
        "instance count, all traffic at once, no capture. Keys: mode (realtime, serverless, async); "
        "instance_count; autoscaling {min_capacity, max_capacity, target_invocations_per_instance, "
        "scale_in_cooldown_seconds, scale_out_cooldown_seconds}; deployment {type: all_at_once, canary or "
        "linear, canary_percent or linear_step_percent 1-99, bake_seconds 0-3600, alarms}; data_capture "
        "{enabled, sampling_percent 0-100, destination_s3_uri}; serverless {memory_size_mb 1024-6144 in "
        "steps of 1024, max_concurrency 1-200}; async_inference {output_s3_uri, success_topic_arn, "
        "error_topic_arn}; smoke_test {body, content_type, body_base64, expected_status}. Your account's "
        "caps bound them (README: Serving settings).",
        SECTION_DEPLOYMENT,
        (
            {
                "instance_count": 2,
                "autoscaling": {"min_capacity": 2, "max_capacity": 4, "target_invocations_per_instance": 100},
                "deployment": {"type": "canary", "canary_percent": 25, "bake_seconds": 300},
                "data_capture": {"enabled": True, "sampling_percent": 20},
                "smoke_test": {"body": '{"instances": [[1, 2, 3]]}', "expected_status": 200},
            },
        ),
        original=False,
    ),
    ParamSpec(
        "training",
        {},
        {"type": ["object", "string", "null"]},
        "Training settings (spot, metrics)",
        TRAINING_SETTINGS_DOC,
        SECTION_TRAINING,
        (
            {
                "use_spot": True,
                "max_wait_seconds": 7200,
                "metric_definitions": [{"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"}],
            },
        ),
        original=False,
    ),
    ParamSpec(
        "request_overrides",
        {},
        {"type": ["object", "string", "null"]},
        "Request overrides",
        "Extra SageMaker request fields, per call (CreateTrainingJob, CreateModel, CreateEndpointConfig), as a "
        "JSON object. Only the fields the platform allows (platform.sagemaker.allowed_overrides) are "
        "accepted; each is checked against SageMaker's API model before anything runs.",
        SECTION_ADVANCED,
        ({"CreateTrainingJob": {"Environment": {"LOG_LEVEL": "debug"}}},),
        original=False,
    ),
    ParamSpec(
        "tuning",
        {},
        {"type": ["object", "string", "null"]},
        "Hyperparameter tuning",
        TUNING_SETTINGS_DOC,
        SECTION_TRAINING,
        (
            {
                "strategy": "Bayesian",
                "objective_metric": "validation:auc",
                "parameter_ranges": {"eta": {"type": "continuous", "min": 0.1, "max": 0.5}},
                "max_jobs": 10,
                "max_parallel_jobs": 2,
            },
        ),
        original=False,
    ),
    ParamSpec(
        "quality_gate",
        [],
        {"type": ["array", "string", "null"]},
        "Quality gate",
        'Optional thresholds on the trained model\'s metrics, e.g. ["validation:auc >= 0.8"]: below one, '
        "the run stops before deploy and the model version is Rejected (README: Quality gate).",
        SECTION_TRAINING,
        (["validation:auc >= 0.8"],),
        original=False,
    ),
    ParamSpec(
        "batch",
        {},
        {"type": ["object", "string", "null"]},
        "Batch scoring",
        BATCH_SETTINGS_DOC,
        SECTION_DEPLOYMENT,
        (
            {
                "input_s3_uri": "s3://field-trials/2026/plots/",
                "content_type": "text/csv",
                "split_type": "Line",
                "instance_type": "ml.m5.xlarge",
                "instance_count": 2,
            },
        ),
        original=False,
    ),
    ParamSpec(
        "promote_from",
        {},
        {"type": ["object", "string", "null"]},
        "Promote a registered version",
        'Optional, Airflow only: {"account_id": "<source account>", "version": 3} deploys that model package '
        "version of the source account (same image digests, same artifact) instead of training (README: "
        "Staged promotion).",
        SECTION_DEPLOYMENT,
        ({"account_id": "333333333333", "version": 3},),
        original=False,
    ),
    ParamSpec(
        "multi_model",
        {},
        {"type": ["object", "string", "null"]},
        "Multi-model endpoint",
        MULTI_MODEL_SETTINGS_DOC,
        SECTION_DEPLOYMENT,
        ({"endpoint": "fraud-team"},),
        original=False,
    ),
    ParamSpec(
        "instance_recommendation",
        {},
        {"type": ["object", "string", "null"]},
        "Instance recommendation",
        RECOMMENDATION_SETTINGS_DOC,
        SECTION_DEPLOYMENT,
        (),
        original=False,
    ),
    ParamSpec(
        "monitoring",
        {},
        {"type": ["object", "string", "null"]},
        "Model monitoring",
        MONITORING_SETTINGS_DOC,
        SECTION_DEPLOYMENT,
        ({"data_quality": {"schedule": "daily", "baseline_channel": "train"}},),
        original=False,
    ),
    ParamSpec(
        "labeling",
        {},
        {"type": ["object", "string", "null"]},
        "Labeling before training",
        LABELING_SETTINGS_DOC,
        SECTION_TRAINING,
        (
            {
                "manifest_s3_uri": "s3://field-trials/to-label/leaves.manifest",
                "task_type": "image_classification",
                "labels": ["healthy", "rust", "blight"],
                "instructions": "Pick the disease the leaf shows.",
                "channel": "labeled",
            },
        ),
        original=False,
    ),
)

PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)
ORIGINAL_PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS if spec.original)


@dataclass(frozen=True)
class RunParams:
    """Validated, normalized parameters of one run. Empty strings become None."""

    model_name: str
    account_id: str
    model_docker_image: str | None
    model_artifact_s3_path: str | None
    environment: dict[str, str]
    training_algorithm_name: str | None
    training_docker_image: str | None
    training_hyperparameters: dict[str, str]
    training_instance_count: int
    training_instance_type: str
    endpoint_instance_type: str
    training_channels: list[dict[str, Any]]
    training_s3_output_path: str | None
    tags_s3_path: str | None = None
    plan_only: bool = False  # read the account and report the changes; change nothing
    pvc_name: str | None = None
    pvc_size: str | None = None
    pvc_storage_class: str | None = None
    # How the endpoint serves (mode, instances, autoscaling, deployment, capture, smoke test).
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    # Spot capacity with checkpoints, and the metric definitions (issue 17 items 2 and 3).
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Extra request fields per SageMaker call, within the platform's allow-list (domain.overrides).
    request_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Hyperparameter tuning instead of one training job (issue 17 item 1).
    tuning: TuningSettings = field(default_factory=TuningSettings)
    # Thresholds on the trained model's metrics before deploy (issue 17 item 7).
    quality_gate: QualityGate = field(default_factory=QualityGate)
    # A batch transform job instead of an endpoint (issue 17 item 10).
    batch: BatchSettings = field(default_factory=BatchSettings)
    # Deploy another account's registered version instead of training (issue 17 item 9).
    promote_from: PromoteFrom = field(default_factory=PromoteFrom)
    # A team's shared multi-model endpoint instead of an endpoint of its own (issue 20 item 1).
    multi_model: MultiModelSettings = field(default_factory=MultiModelSettings)
    # An Inference Recommender job before deploy (issue 20 item 2).
    instance_recommendation: RecommendationSettings = field(default_factory=RecommendationSettings)
    # A data-quality monitor on the endpoint (issue 20 item 3).
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    # A Ground Truth labeling job before training (issue 20 item 4).
    labeling: LabelingSettings = field(default_factory=LabelingSettings)

    @property
    def trains(self) -> bool:
        return self.model_artifact_s3_path is None and not self.promote_from.enabled

    @property
    def deploys(self) -> bool:
        """False for a train-only run: it trains, and names neither a serving image nor a built-in
        algorithm (whose image serves), so create_model, deploy_endpoint and expose_api skip."""
        return not (self.trains and self.model_docker_image is None and self.training_algorithm_name is None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoint"] = self.endpoint.to_dict()
        data["training"] = self.training.to_dict()
        data["tuning"] = self.tuning.to_dict()
        data["quality_gate"] = self.quality_gate.to_dict()
        data["batch"] = self.batch.to_dict()
        data["promote_from"] = self.promote_from.to_dict() or None  # unset: no KFP pipeline parameter needed
        data["multi_model"] = self.multi_model.to_dict()
        data["instance_recommendation"] = self.instance_recommendation.to_dict()
        data["monitoring"] = self.monitoring.to_dict()
        data["labeling"] = self.labeling.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunParams:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if not isinstance(values.get("endpoint"), EndpointSettings):
            values["endpoint"] = EndpointSettings.from_dict(values.get("endpoint"))
        if not isinstance(values.get("training"), TrainingSettings):
            values["training"] = TrainingSettings.from_dict(values.get("training"))
        if not isinstance(values.get("tuning"), TuningSettings):
            values["tuning"] = TuningSettings.from_dict(values.get("tuning"))
        if not isinstance(values.get("quality_gate"), QualityGate):
            values["quality_gate"] = QualityGate.from_dict(values.get("quality_gate"))
        if not isinstance(values.get("batch"), BatchSettings):
            values["batch"] = BatchSettings.from_dict(values.get("batch"))
        if not isinstance(values.get("promote_from"), PromoteFrom):
            values["promote_from"] = PromoteFrom.from_dict(values.get("promote_from"))
        if not isinstance(values.get("multi_model"), MultiModelSettings):
            values["multi_model"] = MultiModelSettings.from_dict(values.get("multi_model"))
        if not isinstance(values.get("instance_recommendation"), RecommendationSettings):
            values["instance_recommendation"] = RecommendationSettings.from_dict(
                values.get("instance_recommendation")
            )
        if not isinstance(values.get("monitoring"), MonitoringSettings):
            values["monitoring"] = MonitoringSettings.from_dict(values.get("monitoring"))
        if not isinstance(values.get("labeling"), LabelingSettings):
            values["labeling"] = LabelingSettings.from_dict(values.get("labeling"))
        return cls(**values)


# --- parsing -------------------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


class _Conf:
    """A raw conf read field by field. A value outside the read bounds is reported once, with its field,
    and then reads as unset, so no later rule (nor json.loads, int() or a message) sees it."""

    JSON_FIELDS = (
        "environment",
        "training_hyperparameters",
        "training_channels",
        "endpoint",
        "training",
        "request_overrides",
        "tuning",
        "quality_gate",
        "batch",
        "promote_from",
        "multi_model",
        "instance_recommendation",
        "monitoring",
        "labeling",
    )

    def __init__(self, raw: Mapping[str, Any], problems: Problems):
        self.problems = problems
        self.values: dict[str, Any] = {}
        for name in PARAMETER_NAMES:
            value = raw.get(name)
            found = self._bounds_problem(name, value)
            if found:
                problems.add(*found)
            else:
                self.values[name] = value

    def _bounds_problem(self, name: str, value: Any) -> tuple[str, str] | None:
        if isinstance(value, str) and name in self.JSON_FIELDS:  # JSON text: parse_json_text bounds it
            too_long = len(value) > JSON_LIMITS.max_chars
            return (
                (name, f"at most {JSON_LIMITS.max_chars} characters, got {len(value)}") if too_long else None
            )
        if isinstance(value, str) and len(value) > TEXT_MAX:
            return name, f"at most {TEXT_MAX} characters, got {len(value)}"
        return find_json_problem(value, JSON_LIMITS, name)

    def has_problem(self, name: str) -> bool:
        return self.problems.has(name)

    def text(self, name: str) -> str | None:
        """A plain text parameter, stripped; None when unset, empty or refused."""
        value = self.values.get(name)
        if _blank(value):
            return None
        if not isinstance(value, str):
            self.problems.add(name, f"must be a string, got {kind(value)}")
            return None
        return value.strip()

    def json(self, name: str, expected: type) -> Any:
        """A JSON parameter given natively or as a JSON-encoded string (the original KFP payload form)."""
        value = self.values.get(name)
        if _blank(value):
            return expected()
        if isinstance(value, str):
            value, problem = parse_json_text(value, JSON_LIMITS)
            if problem:
                self.problems.add(name, f"is a string but {problem}" if "JSON" in problem else problem)
                return expected()
        if not isinstance(value, expected):
            wanted = "a JSON object" if expected is dict else "a JSON array"
            self.problems.add(name, f"must be {wanted} (or its JSON text), got {kind(value)}")
            return expected()
        return value

    def count(self, name: str, default: int, low: int, high: int) -> int:
        value = self.values.get(name, default)
        if _blank(value):
            return default
        number = whole_number(value, signed=False)
        if number is None:
            self.problems.add(name, f"must be a whole number from {low} to {high}, got {show(value, 24)}")
            return default
        if not low <= number <= high:
            self.problems.add(name, f"must be between {low} and {high}, got {show(number, 24)}")
        return number


def _parse_plan_only(conf: _Conf) -> bool:
    value = conf.values.get("plan_only")
    if _blank(value):
        return False
    if not isinstance(value, bool):
        conf.problems.add("plan_only", f"must be true or false, got {show(value, 24)}")
        return False
    return value


def _hyperparameter_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def check_s3_uri(value: str | None, name: str, problems: Problems) -> None:
    if value is not None and not is_s3_uri(value):
        problems.add(
            name, f"must be an S3 URI like s3://bucket/path, at most 1024 characters; got {show(value)}"
        )


def check_image(value: str | None, name: str, problems: Problems) -> None:
    """An image reference as step 4 parses it, short enough for SageMaker's 255-character limit."""
    if value is None:
        return
    if len(value) > IMAGE_MAX:
        problems.add(name, f"image references are at most {IMAGE_MAX} characters, got {len(value)}")
        return
    try:
        parse_image_reference(value, name)
    except SageliftValidationError as err:
        # images.py words its rules after the value itself; show a clipped value instead.
        rule = err.problems[0][1].removeprefix(f"{value!r}: ")
        problems.add(name, f"{clip(rule, 110)}; got {show(value)}")


def _check_instance_type(value: str, name: str, family: str, problems: Problems) -> None:
    known = instance_types()[family]
    if value in known:
        return
    guess = "ml." + value if not value.startswith("ml.") and "ml." + value in known else None
    guess = guess or next(iter(difflib.get_close_matches(value[:64], known, n=1, cutoff=0.8)), None)
    hint = f"; did you mean {guess}?" if guess else " (the form lists them)"
    if not INSTANCE_TYPE_RE.match(value):
        problems.add(
            name, f"must be a SageMaker ML instance type of the ml.* family such as ml.m5.large{hint}"
        )
    else:
        problems.add(name, f"{show(value)} is not a SageMaker {family} instance type{hint}")


def _check_algorithm(value: str, problems: Problems) -> None:
    known = builtin_algorithms()
    if value in known:
        return
    guess = difflib.get_close_matches(value[:64], known, n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]}?" if guess else "one of " + ", ".join(known)
    problems.add("training_algorithm_name", f"unknown built-in algorithm {show(value)}; {hint}")


def _unknown_parameters(raw: Mapping[str, Any], problems: Problems) -> None:
    unknown = sorted((key for key in raw if key not in PARAMETER_NAMES), key=str)
    for key in unknown[:UNKNOWN_KEYS_LISTED]:
        hint = _closest(key) if isinstance(key, str) else None
        field = key if subfield("conf", key) == f"conf.{key}" else show(key, 24)  # a plain key as it is
        problems.add(
            field,
            f"unknown parameter; did you mean {hint!r}?"
            if hint
            else "unknown parameter (see the trigger form)",
        )
    if len(unknown) > UNKNOWN_KEYS_LISTED:
        problems.add("conf", f"{len(unknown)} unknown parameters in all")


def _parse_model_name(conf: _Conf) -> str | None:
    model_name = conf.text("model_name")
    if model_name is None:
        if not conf.has_problem("model_name"):
            conf.problems.add("model_name", "required: the name of the model to train and deploy")
    elif len(model_name) > MODEL_NAME_MAX or not SAGEMAKER_NAME_RE.match(model_name):
        conf.problems.add(
            "model_name",
            f"at most {MODEL_NAME_MAX} characters of letters, digits and '-', starting with a letter or digit; "
            f"got {show(model_name, 30)}",
        )
    return model_name


def _parse_account_id(conf: _Conf) -> str | None:
    value = conf.values.get("account_id")
    if _blank(value):
        if not conf.has_problem("account_id"):
            conf.problems.add("account_id", "required: the twelve-digit id of your AWS account")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        text = ""
    if not ACCOUNT_ID_RE.match(text):
        conf.problems.add("account_id", f"must be exactly twelve digits (as a string), got {show(value, 24)}")
    return text


@dataclass(frozen=True)
class _Sources:
    """Where the model comes from: its images, the algorithm, an existing artifact, the output path."""

    model_image: str | None
    artifact: str | None
    algorithm: str | None
    training_image: str | None
    output_path: str | None
    promoted: bool = False  # promote_from: the model is another account's registered version

    @property
    def trains(self) -> bool:
        return self.artifact is None and not self.promoted


def _parse_sources(conf: _Conf) -> _Sources:
    src = _Sources(
        model_image=conf.text("model_docker_image"),
        artifact=conf.text("model_artifact_s3_path"),
        algorithm=conf.text("training_algorithm_name"),
        training_image=conf.text("training_docker_image"),
        output_path=conf.text("training_s3_output_path"),
        promoted=not _blank(conf.values.get("promote_from")) and conf.values.get("promote_from") != {},
    )
    problems = conf.problems
    check_image(src.model_image, "model_docker_image", problems)
    check_image(src.training_image, "training_docker_image", problems)
    check_s3_uri(src.artifact, "model_artifact_s3_path", problems)
    check_s3_uri(src.output_path, "training_s3_output_path", problems)
    if src.algorithm is not None:
        _check_algorithm(src.algorithm, problems)
    _check_training_mode(src, conf)
    # Training with neither a serving image nor a built-in algorithm is a train-only run; deploying an
    # existing artifact needs the image that serves it.
    if (
        not src.trains
        and not src.promoted
        and src.model_image is None
        and not conf.has_problem("model_docker_image")
    ):
        problems.add(
            "model_docker_image",
            "required with model_artifact_s3_path: the image that serves the existing artifact",
        )
    return src


def _check_training_mode(src: _Sources, conf: _Conf) -> None:
    """Exactly one way to get a model: train with an image, train with an algorithm, or bring an artifact."""
    problems = conf.problems
    if src.promoted:
        for name, value in (
            ("training_docker_image", src.training_image),
            ("training_algorithm_name", src.algorithm),
            ("model_artifact_s3_path", src.artifact),
            ("model_docker_image", src.model_image),
        ):
            if value is not None:
                problems.add(
                    name,
                    "must be empty with promote_from: the promoted version's image and artifact are deployed",
                )
        return
    if not src.trains:
        for name, value in (
            ("training_docker_image", src.training_image),
            ("training_algorithm_name", src.algorithm),
        ):
            if value is not None:
                problems.add(
                    name,
                    "must be empty when model_artifact_s3_path is given (an existing artifact is deployed "
                    "without training)",
                )
        return
    if src.training_image is None and src.algorithm is None:
        if not conf.has_problem("training_docker_image") and not conf.has_problem("training_algorithm_name"):
            problems.add(
                "training_docker_image",
                "give training_docker_image or training_algorithm_name (or model_artifact_s3_path to "
                "deploy an existing artifact)",
            )
    elif src.training_image is not None and src.algorithm is not None:
        problems.add(
            "training_algorithm_name",
            "give exactly one of training_docker_image or training_algorithm_name; both were given",
        )
    if src.output_path is None and not conf.has_problem("training_s3_output_path"):
        problems.add("training_s3_output_path", "required when training (where the artifact is written)")


ARTIFACT_SUFFIX = "/output/model.tar.gz"
S3_URL_MAX = 1024


def _check_artifact_url(model_name: str | None, src: _Sources, problems: Problems) -> None:
    """create_model: SageMaker writes the artifact to <output>/<training job>/output/model.tar.gz, and
    CreateModel takes a ModelDataUrl of at most 1024 characters; the output path must leave room for it."""
    if not src.trains or src.output_path is None or model_name is None:
        return
    if problems.has("training_s3_output_path") or problems.has("model_name"):
        return
    job_len = len(model_name) + RUN_SUFFIX_LEN
    room = S3_URL_MAX - job_len - len(ARTIFACT_SUFFIX) - 1
    if len(src.output_path.rstrip("/")) > room:
        problems.add(
            "training_s3_output_path",
            f"at most {room} characters with this model name, so that <output>/<training job>"
            f"{ARTIFACT_SUFFIX} fits CreateModel's {S3_URL_MAX}",
        )


def _parse_environment(conf: _Conf) -> dict[str, str]:
    """CreateModel's Environment: at most 100 variables, names like shell variables, values of 1024."""
    environment = conf.json("environment", dict)
    problems = conf.problems
    if len(environment) > MAX_ENV_ENTRIES:
        problems.add("environment", f"at most {MAX_ENV_ENTRIES} variables, got {len(environment)}")
        return {}
    clean: dict[str, str] = {}
    for key, value in environment.items():
        field = subfield("environment", key)
        if len(key) > 1024 or not ENV_KEY_RE.match(key):
            problems.add(
                field, "variable names are letters, digits and '_', not starting with a digit, at most 1024"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.add(field, f"values must be strings, got {kind(value)}")
            continue
        text = value if isinstance(value, str) else str(value)
        if len(text) > 1024:
            problems.add(field, f"values are at most 1024 characters, got {len(text)}")
        clean[key] = text
    return clean


def _parse_hyperparameters(conf: _Conf) -> dict[str, str]:
    """CreateTrainingJob's HyperParameters: at most 100, keys of 1-256 and values of 2500 characters."""
    hyper = conf.json("training_hyperparameters", dict)
    problems = conf.problems
    if len(hyper) > MAX_HYPERPARAMETERS:
        problems.add("training_hyperparameters", f"at most {MAX_HYPERPARAMETERS} entries, got {len(hyper)}")
        return {}
    clean: dict[str, str] = {}
    for key, value in hyper.items():
        field = subfield("training_hyperparameters", key)
        if not key or len(key) > 256:
            problems.add(field, "keys are 1-256 characters")
        if value is None:
            problems.add(field, "values cannot be null")
            continue
        text = _hyperparameter_value(value)
        if len(text) > 2500:
            problems.add(field, f"values are at most 2500 characters, got {len(text)}")
        clean[key] = text
    return clean


def _parse_compute(conf: _Conf) -> tuple[int, str, str]:
    """The training instance count and the training and endpoint instance types."""
    count = conf.count("training_instance_count", 2, 1, MAX_TRAINING_INSTANCES)
    training_type = conf.text("training_instance_type") or "ml.m5.large"
    endpoint_type = conf.text("endpoint_instance_type") or "ml.m5.large"
    _check_instance_type(training_type, "training_instance_type", "training", conf.problems)
    # "auto": recommend_instance decides (README: Instance recommendation)
    if endpoint_type != AUTO_INSTANCE_TYPE:
        _check_instance_type(endpoint_type, "endpoint_instance_type", "endpoint", conf.problems)
    return count, training_type, endpoint_type


def _parse_overrides(conf: _Conf) -> dict[str, str | None]:
    """The optional overrides of platform settings; the platform's bounds are checked by build_plan."""
    problems = conf.problems
    overrides = {
        name: conf.text(name) for name in ("tags_s3_path", "pvc_name", "pvc_size", "pvc_storage_class")
    }
    check_s3_uri(overrides["tags_s3_path"], "tags_s3_path", problems)
    pvc_name, size, storage_class = (
        overrides["pvc_name"],
        overrides["pvc_size"],
        overrides["pvc_storage_class"],
    )
    if pvc_name is not None and not is_dns1123_name(pvc_name):
        problems.add(
            "pvc_name",
            f"must be a DNS-1123 name: lowercase letters, digits and '-', at most 253; got {show(pvc_name, 30)}",
        )
    if size is not None and not is_quantity(size):
        problems.add("pvc_size", f"must be a Kubernetes quantity such as 50Mi or 10Gi, got {show(size)}")
    if storage_class is not None and not is_dns1123_name(storage_class):
        problems.add("pvc_storage_class", f"must be a DNS-1123 name, got {show(storage_class)}")
    return overrides


def _parse_endpoint(conf: _Conf, src: _Sources, endpoint_type: str) -> EndpointSettings:
    """The optional serving settings; a train-only run deploys nothing, so it takes none."""
    raw = conf.values.get("endpoint")
    settings = parse_endpoint(raw, conf.problems)
    train_only = src.trains and src.model_image is None and src.algorithm is None
    if train_only and settings != EndpointSettings() and not conf.has_problem("endpoint"):
        conf.problems.add(
            "endpoint",
            "a train-only run (no model_docker_image, no training_algorithm_name) deploys nothing; "
            "give model_docker_image or leave endpoint empty",
        )
    if not conf.has_problem("endpoint_instance_type"):
        check_instance_type_applies(settings, endpoint_type, conf.problems)
    return settings


def _parse_batch(conf: _Conf, src: _Sources, endpoint: EndpointSettings) -> BatchSettings:
    """The optional batch scoring settings: a model is scored offline, so no endpoint settings apply."""
    settings = parse_batch(conf.values.get("batch"), conf.problems, training_output=src.output_path)
    if not settings.enabled:
        return settings
    if src.trains and src.model_image is None and src.algorithm is None:
        conf.problems.add(
            "batch",
            "a train-only run (no model_docker_image, no training_algorithm_name) has no model to score "
            "with; give model_docker_image or leave batch empty",
        )
    if endpoint != EndpointSettings() and not conf.has_problem("endpoint"):
        conf.problems.add(
            "endpoint",
            "batch is set, so no endpoint is created; leave endpoint empty (README: Batch scoring)",
        )
    return settings


def _parse_training(conf: _Conf, src: _Sources) -> TrainingSettings:
    """The optional training settings; a run that deploys an existing artifact trains nothing."""
    settings = parse_training(conf.values.get("training"), conf.problems, algorithm=src.algorithm)
    if not src.trains and settings != TrainingSettings() and not conf.has_problem("training"):
        conf.problems.add(
            "training",
            "model_artifact_s3_path is set, so nothing is trained; leave training empty",
        )
    return settings


def parse_params(raw: Mapping[str, Any]) -> RunParams:
    """Validate a run's raw parameters (conf merged over defaults) and normalize them.

    Raises one SageliftValidationError listing every broken rule with its field; never anything else,
    whatever ``raw`` holds.
    """
    if not isinstance(raw, Mapping):
        raise SageliftValidationError.single("conf", f"must be a JSON object of parameters, got {kind(raw)}")
    problems = Problems()
    _unknown_parameters(raw, problems)
    conf = _Conf(raw, problems)
    model_name = _parse_model_name(conf)
    account_id = _parse_account_id(conf)
    sources = _parse_sources(conf)
    environment = _parse_environment(conf)
    hyperparameters = _parse_hyperparameters(conf)
    count, training_type, endpoint_type = _parse_compute(conf)
    _check_artifact_url(model_name, sources, problems)
    given = conf.json("training_channels", list)
    # a labeling job's output manifest is a training channel of its own (added by build_plan)
    labeling = parse_labeling(conf.values.get("labeling"), problems, trains=sources.trains, channels=given)
    channels = parse_training_channels(
        given, sources.trains and not labeling.enabled and not problems.has("training_channels"), problems
    )
    overrides = _parse_overrides(conf)
    plan_only = _parse_plan_only(conf)
    endpoint = _parse_endpoint(conf, sources, endpoint_type)
    training = _parse_training(conf, sources)
    request_overrides = parse_request_overrides(conf.json("request_overrides", dict), problems)
    tuned_algorithm = None if sources.training_image else sources.algorithm
    tuning = parse_tuning(
        conf.values.get("tuning"),
        problems,
        trains=sources.trains,
        algorithm=tuned_algorithm,
        metrics=tuple(m.name for m in resolve_metric_definitions(training, tuned_algorithm)),
        fixed_hyperparameters=hyperparameters,
        training_overrides=request_overrides.get("CreateTrainingJob"),
    )
    quality_gate = parse_quality_gate(
        conf.values.get("quality_gate"),
        problems,
        training=training,
        algorithm=None if sources.training_image else sources.algorithm,
        trains=sources.trains,
    )
    batch = _parse_batch(conf, sources, endpoint)
    promote_from = parse_promote_from(conf.json("promote_from", dict), problems, account_id=account_id)
    if promote_from.enabled and plan_only:
        problems.add(
            "plan_only", "not available with promote_from yet: the plan would need the source version"
        )
    multi_model = parse_multi_model(
        conf.values.get("multi_model"),
        problems,
        deploys=not (sources.trains and sources.model_image is None and sources.algorithm is None),
        batch=batch.enabled,
        endpoint_settings=endpoint != EndpointSettings() and not conf.has_problem("endpoint"),
    )
    if multi_model.enabled and plan_only:
        problems.add(
            "plan_only", "not available with multi_model yet: the change set plans an endpoint of its own"
        )
    instance_recommendation = parse_recommendation(conf.values.get("instance_recommendation"), problems)
    monitoring = parse_monitoring(
        conf.values.get("monitoring"),
        problems,
        channels=[str(c.get("ChannelName")) for c in channels],
        trains=sources.trains,
        deploys=not (sources.trains and sources.model_image is None and sources.algorithm is None),
        batch=batch.enabled,
        capture=endpoint.data_capture.enabled,
        account_id=None if account_id is None else str(account_id),
        shared_endpoint=multi_model.enabled,
    )
    problems.raise_if_any()
    return RunParams(
        model_name=str(model_name),
        account_id=str(account_id),
        plan_only=plan_only,
        model_docker_image=sources.model_image,
        model_artifact_s3_path=sources.artifact,
        environment=environment,
        training_algorithm_name=sources.algorithm,
        training_docker_image=sources.training_image,
        training_hyperparameters=hyperparameters,
        training_instance_count=count,
        training_instance_type=training_type,
        endpoint_instance_type=endpoint_type,
        training_channels=channels,
        training_s3_output_path=sources.output_path,
        endpoint=endpoint,
        training=training,
        request_overrides=request_overrides,
        tuning=tuning,
        quality_gate=quality_gate,
        batch=batch,
        promote_from=promote_from,
        multi_model=multi_model,
        instance_recommendation=instance_recommendation,
        monitoring=monitoring,
        labeling=labeling,
        **overrides,
    )


def _closest(key: str) -> str | None:
    matches = difflib.get_close_matches(key[:100], PARAMETER_NAMES, n=1, cutoff=0.75)
    return matches[0] if matches else None


def default_conf() -> dict[str, Any]:
    return {spec.name: spec.default for spec in PARAMETERS}


__all__ = [
    "MODEL_NAME_MAX",
    "PARAMETERS",
    "PARAMETER_NAMES",
    "ParamSpec",
    "RunParams",
    "SageliftValidationError",
    "builtin_algorithm_image",
    "builtin_algorithms",
    "check_image",
    "check_s3_uri",
    "default_conf",
    "instance_types",
    "parse_params",
]
