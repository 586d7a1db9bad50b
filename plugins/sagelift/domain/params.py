"""The pipeline's run parameters: defined once, validated once, shared by every engine.

The 13 parameters of the original Kubeflow pipeline keep their names and defaults, so the original
payload is accepted unchanged: its JSON-valued parameters (environment, training_hyperparameters,
training_channels) may arrive as JSON-encoded strings and its counts as strings like "2"; native
objects, arrays and integers work too. A few optional parameters narrow platform settings where the
platform allows it (the tag document, the PVC); nothing here can override platform configuration.

``PARAMETERS`` feeds the Airflow trigger form (see sagelift.operators.params) and the KFP pipeline;
``parse_params`` turns a raw conf into ``RunParams`` or raises one SageliftValidationError listing every
broken rule with its field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.platform import is_dns1123_name, is_quantity

# SageMaker resource names: CreateTrainingJob/CreateModel/CreateEndpoint share this rule.
SAGEMAKER_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SAGEMAKER_NAME_MAX = 63
# "-" + 8 hex characters of the run key are appended to per-run names.
RUN_SUFFIX_LEN = 9
MODEL_NAME_MAX = SAGEMAKER_NAME_MAX - RUN_SUFFIX_LEN

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
S3_URI_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<key>/.*)?$")
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
# An OCI image reference: [registry[:port]/]path[:tag][@digest]
IMAGE_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
ENV_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

MAX_TRAINING_INSTANCES = 100
MAX_HYPERPARAMETERS = 100
MAX_ENV_ENTRIES = 100
MAX_CHANNELS = 20

CHANNEL_KEYS = {
    "ChannelName",
    "DataSource",
    "ContentType",
    "CompressionType",
    "RecordWrapperType",
    "InputMode",
    "ShuffleConfig",
}
S3_DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
S3_DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
COMPRESSION_TYPES = ("None", "Gzip")
RECORD_WRAPPERS = ("None", "RecordIO")
INPUT_MODES = ("File", "Pipe", "FastFile")


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
        "SageMaker ML instance type for training.",
        SECTION_TRAINING,
        ("ml.m5.large",),
    ),
    ParamSpec(
        "endpoint_instance_type",
        "ml.m5.large",
        {"type": "string"},
        "Endpoint instance type",
        "SageMaker ML instance type that hosts the endpoint.",
        SECTION_DEPLOYMENT,
        ("ml.m5.large",),
    ),
    ParamSpec(
        "training_channels",
        [],
        {"type": ["array", "string", "null"]},
        "Training channels",
        "Data channels for the training job: a JSON array shaped like CreateTrainingJob's InputDataConfig "
        "(ChannelName, DataSource.S3DataSource.S3Uri, ...); a JSON-encoded string is accepted too.",
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
        "tags_s3_path",
        "",
        _STRING_OR_EMPTY,
        "Tag document override",
        "S3 URI of a tag document to use instead of the platform's standard one. Usually left empty.",
        SECTION_ADVANCED,
        (),
        original=False,
    ),
    ParamSpec(
        "pvc_name",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume claim name",
        "Name of the PersistentVolumeClaim ensured by step 1 (a DNS-1123 name). Empty: the platform default.",
        SECTION_ADVANCED,
        (),
        original=False,
    ),
    ParamSpec(
        "pvc_size",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume claim size",
        "Storage request of the claim, a Kubernetes quantity such as 50Mi. Empty: the platform default.",
        SECTION_ADVANCED,
        (),
        original=False,
    ),
    ParamSpec(
        "pvc_storage_class",
        "",
        _STRING_OR_EMPTY,
        "Pipeline volume storage class",
        "StorageClass of the claim. Empty: the platform default.",
        SECTION_ADVANCED,
        (),
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
    pvc_name: str | None = None
    pvc_size: str | None = None
    pvc_storage_class: str | None = None

    @property
    def trains(self) -> bool:
        return self.model_artifact_s3_path is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunParams:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# --- parsing -------------------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _text(raw: Mapping[str, Any], name: str, problems: Problems) -> str | None:
    value = raw.get(name)
    if _blank(value):
        return None
    if not isinstance(value, str):
        problems.add(name, f"must be a string, got {type(value).__name__}")
        return None
    return value.strip()


def _json_value(raw: Mapping[str, Any], name: str, kind: type, problems: Problems) -> Any:
    """Accept a native object/array or its JSON-encoded string (the original KFP payload form)."""
    value = raw.get(name)
    if _blank(value):
        return kind()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            problems.add(name, f"is a string but not valid JSON ({err.msg} at character {err.pos})")
            return kind()
    if not isinstance(value, kind):
        expected = "a JSON object" if kind is dict else "a JSON array"
        problems.add(name, f"must be {expected}, got {type(value).__name__}")
        return kind()
    return value


def _count(raw: Mapping[str, Any], name: str, default: int, low: int, high: int, problems: Problems) -> int:
    value = raw.get(name, default)
    if _blank(value):
        return default
    if isinstance(value, bool):
        problems.add(name, "must be a whole number, got a boolean")
        return default
    if isinstance(value, str):
        if not re.fullmatch(r"\s*\d+\s*", value):
            problems.add(name, f"must be a whole number, got {value!r}")
            return default
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        problems.add(name, f"must be a whole number, got {type(value).__name__}")
        return default
    if not low <= value <= high:
        problems.add(name, f"must be between {low} and {high}, got {value}")
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
    if value is not None and not S3_URI_RE.match(value):
        problems.add(name, f"must be an S3 URI like s3://bucket/path, got {value!r}")


def check_image(value: str | None, name: str, problems: Problems) -> None:
    if value is None:
        return
    if len(value) > 255 or not IMAGE_RE.match(value):
        problems.add(
            name,
            f"must be an image reference like registry/repository:tag (or @sha256:...), "
            f"lowercase repository, at most 255 characters; got {value!r}",
        )


def _check_instance_type(value: str, name: str, kind: str, problems: Problems) -> None:
    if not INSTANCE_TYPE_RE.match(value):
        problems.add(
            name,
            f"must be a SageMaker ML instance type of the ml.* family such as ml.m5.large, got {value!r}",
        )
    elif value not in instance_types()[kind]:
        problems.add(name, f"{value!r} is not a SageMaker {kind} instance type")


def _check_channels(channels: list[Any], problems: Problems) -> list[dict[str, Any]]:
    name = "training_channels"
    if len(channels) > MAX_CHANNELS:
        problems.add(name, f"at most {MAX_CHANNELS} channels, got {len(channels)}")
    seen: set[str] = set()
    cleaned: list[dict[str, Any]] = []
    for i, channel in enumerate(channels):
        where = f"{name}[{i}]"
        if not isinstance(channel, dict):
            problems.add(where, "each channel must be an object like InputDataConfig's Channel")
            continue
        unknown = sorted(set(channel) - CHANNEL_KEYS)
        if unknown:
            problems.add(where, f"unknown channel field(s) {unknown}; allowed: {sorted(CHANNEL_KEYS)}")
        channel_name = channel.get("ChannelName")
        if not isinstance(channel_name, str) or not CHANNEL_NAME_RE.match(channel_name):
            problems.add(
                f"{where}.ChannelName", "required: 1-64 characters of letters, digits, '.', '-', '_'"
            )
        elif channel_name in seen:
            problems.add(f"{where}.ChannelName", f"channel names must be unique; {channel_name!r} repeats")
        else:
            seen.add(channel_name)
        source = channel.get("DataSource")
        s3 = source.get("S3DataSource") if isinstance(source, dict) else None
        if not isinstance(s3, dict):
            problems.add(f"{where}.DataSource.S3DataSource", "required: an object with S3Uri and S3DataType")
        else:
            uri = s3.get("S3Uri")
            if not isinstance(uri, str) or not S3_URI_RE.match(uri):
                problems.add(f"{where}.DataSource.S3DataSource.S3Uri", f"must be an S3 URI, got {uri!r}")
            data_type = s3.get("S3DataType", "S3Prefix")
            if data_type not in S3_DATA_TYPES:
                problems.add(f"{where}.DataSource.S3DataSource.S3DataType", f"must be one of {S3_DATA_TYPES}")
            distribution = s3.get("S3DataDistributionType", "FullyReplicated")
            if distribution not in S3_DISTRIBUTIONS:
                problems.add(
                    f"{where}.DataSource.S3DataSource.S3DataDistributionType",
                    f"must be one of {S3_DISTRIBUTIONS}",
                )
        for key, allowed in (
            ("CompressionType", COMPRESSION_TYPES),
            ("RecordWrapperType", RECORD_WRAPPERS),
            ("InputMode", INPUT_MODES),
        ):
            if key in channel and channel[key] not in allowed:
                problems.add(f"{where}.{key}", f"must be one of {allowed}, got {channel[key]!r}")
        content_type = channel.get("ContentType")
        if content_type is not None and (not isinstance(content_type, str) or len(content_type) > 256):
            problems.add(f"{where}.ContentType", "must be a string of at most 256 characters")
        cleaned.append(channel)
    return cleaned


def parse_params(raw: Mapping[str, Any]) -> RunParams:
    """Validate a run's raw parameters (conf merged over defaults) and normalize them."""
    problems = Problems()
    unknown = sorted(set(raw) - set(PARAMETER_NAMES))
    for key in unknown:
        hint = _closest(key)
        problems.add(
            key,
            "unknown parameter"
            + (f"; did you mean {hint!r}?" if hint else f"; known parameters: {', '.join(PARAMETER_NAMES)}"),
        )

    model_name = _text(raw, "model_name", problems)
    if model_name is None:
        if "model_name" not in problems.fields():
            problems.add("model_name", "required: the name of the model to train and deploy")
    elif len(model_name) > MODEL_NAME_MAX or not SAGEMAKER_NAME_RE.match(model_name):
        problems.add(
            "model_name",
            f"letters, digits and '-' only, starting with a letter or digit, at most "
            f"{MODEL_NAME_MAX} characters (SageMaker names are limited to "
            f"{SAGEMAKER_NAME_MAX} with the run suffix); got {model_name!r}",
        )

    account_raw = raw.get("account_id")
    account_id = None if _blank(account_raw) else str(account_raw).strip()
    if account_id is None:
        problems.add("account_id", "required: the twelve-digit id of your AWS account")
    elif isinstance(account_raw, bool) or not ACCOUNT_ID_RE.match(account_id):
        problems.add("account_id", f"must be exactly twelve digits, got {account_raw!r}")

    model_image = _text(raw, "model_docker_image", problems)
    artifact = _text(raw, "model_artifact_s3_path", problems)
    algorithm = _text(raw, "training_algorithm_name", problems)
    training_image = _text(raw, "training_docker_image", problems)
    output_path = _text(raw, "training_s3_output_path", problems)
    check_image(model_image, "model_docker_image", problems)
    check_image(training_image, "training_docker_image", problems)
    check_s3_uri(artifact, "model_artifact_s3_path", problems)
    check_s3_uri(output_path, "training_s3_output_path", problems)

    if artifact is not None:
        for name, value in (
            ("training_docker_image", training_image),
            ("training_algorithm_name", algorithm),
        ):
            if value is not None:
                problems.add(
                    name,
                    "must be empty when model_artifact_s3_path is given (an existing artifact "
                    "is deployed without training)",
                )
    else:
        if training_image is None and algorithm is None:
            problems.add(
                "training_docker_image",
                "give exactly one of training_docker_image or "
                "training_algorithm_name (or model_artifact_s3_path to "
                "deploy an existing artifact); none was given",
            )
        elif training_image is not None and algorithm is not None:
            problems.add(
                "training_algorithm_name",
                "give exactly one of training_docker_image or training_algorithm_name; both were given",
            )
        if output_path is None:
            problems.add("training_s3_output_path", "required when training (where the artifact is written)")
    if algorithm is not None and algorithm not in builtin_algorithms():
        problems.add(
            "training_algorithm_name",
            f"unknown built-in algorithm {algorithm!r}; one of {', '.join(builtin_algorithms())}",
        )
    if model_image is None and algorithm is None:
        problems.add(
            "model_docker_image",
            "required: the image that serves the model (only a built-in algorithm brings its own)",
        )

    environment = _json_value(raw, "environment", dict, problems)
    env_clean: dict[str, str] = {}
    if len(environment) > MAX_ENV_ENTRIES:
        problems.add("environment", f"at most {MAX_ENV_ENTRIES} variables, got {len(environment)}")
    for key, value in environment.items():
        if not ENV_KEY_RE.match(key) or len(key) > 1024:
            problems.add(
                f"environment.{key}",
                "variable names are letters, digits and '_', not starting with "
                "a digit, at most 1024 characters",
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.add(f"environment.{key}", f"values must be strings, got {type(value).__name__}")
            continue
        text = value if isinstance(value, str) else str(value)
        if len(text) > 1024:
            problems.add(f"environment.{key}", "values are at most 1024 characters")
        env_clean[key] = text

    hyper = _json_value(raw, "training_hyperparameters", dict, problems)
    hyper_clean: dict[str, str] = {}
    if len(hyper) > MAX_HYPERPARAMETERS:
        problems.add("training_hyperparameters", f"at most {MAX_HYPERPARAMETERS} entries, got {len(hyper)}")
    for key, value in hyper.items():
        if not key or len(key) > 256:
            problems.add(f"training_hyperparameters.{key}", "keys are 1-256 characters")
        if value is None:
            problems.add(f"training_hyperparameters.{key}", "values cannot be null")
            continue
        text = _hyperparameter_value(value)
        if len(text) > 2500:
            problems.add(
                f"training_hyperparameters.{key}", f"values are at most 2500 characters, got {len(text)}"
            )
        hyper_clean[key] = text

    count = _count(raw, "training_instance_count", 2, 1, MAX_TRAINING_INSTANCES, problems)
    training_type = _text(raw, "training_instance_type", problems) or "ml.m5.large"
    endpoint_type = _text(raw, "endpoint_instance_type", problems) or "ml.m5.large"
    _check_instance_type(training_type, "training_instance_type", "training", problems)
    _check_instance_type(endpoint_type, "endpoint_instance_type", "endpoint", problems)

    channels = _check_channels(_json_value(raw, "training_channels", list, problems), problems)

    tags_path = _text(raw, "tags_s3_path", problems)
    check_s3_uri(tags_path, "tags_s3_path", problems)
    pvc_name = _text(raw, "pvc_name", problems)
    if pvc_name is not None and not is_dns1123_name(pvc_name):
        problems.add(
            "pvc_name",
            f"must be a DNS-1123 name (lowercase letters, digits and '-', starting and "
            f"ending with a letter or digit), got {pvc_name!r}",
        )
    pvc_size = _text(raw, "pvc_size", problems)
    if pvc_size is not None and not is_quantity(pvc_size):
        problems.add("pvc_size", f"must be a Kubernetes quantity such as 50Mi or 10Gi, got {pvc_size!r}")
    pvc_class = _text(raw, "pvc_storage_class", problems)
    if pvc_class is not None and not is_dns1123_name(pvc_class):
        problems.add("pvc_storage_class", f"must be a DNS-1123 name, got {pvc_class!r}")

    problems.raise_if_any()
    return RunParams(
        model_name=str(model_name),
        account_id=str(account_id),
        model_docker_image=model_image,
        model_artifact_s3_path=artifact,
        environment=env_clean,
        training_algorithm_name=algorithm,
        training_docker_image=training_image,
        training_hyperparameters=hyper_clean,
        training_instance_count=count,
        training_instance_type=training_type,
        endpoint_instance_type=endpoint_type,
        training_channels=channels,
        training_s3_output_path=output_path,
        tags_s3_path=tags_path,
        pvc_name=pvc_name,
        pvc_size=pvc_size,
        pvc_storage_class=pvc_class,
    )


def _closest(key: str) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, PARAMETER_NAMES, n=1, cutoff=0.75)
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
    "default_conf",
    "instance_types",
    "parse_params",
]
