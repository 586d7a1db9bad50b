"""The conf's optional ``batch`` object (issue 17 item 10): score an S3 prefix offline instead of serving.

A run with ``batch`` set trains (or takes its artifact) and creates its model as any run does, then runs
one SageMaker batch transform job over the input prefix instead of creating an endpoint and an API.

- ``parse_batch`` reads the object (native or JSON text) into ``BatchSettings``; every rule names its
  dotted field (``batch.split_type``), unknown keys are refused with the closest name, and the instance
  type is checked against botocore's transform instance types (shipped in instance_types.json).
- ``check_batch_against_platform``: both prefixes must lie under the account's ``batch_prefixes`` when
  the platform lists any (the model's role reads the input and writes the output with the account's
  grants; the list keeps a conf from aiming it anywhere else).
- ``build_transform_job_request``: CreateTransformJob's body (tags, the account's output and volume KMS
  keys, the platform's allowed overrides); the output prefix defaults to
  ``<training_s3_output_path>/<job>/batch/`` (``derive_batch_output_s3_uri``), beside the training job's
  ``output/``, fixed for the run so a retry writes to the same place.
- ``transform_facts`` reads a DescribeTransformJob answer back for the task log, the summary and XCom.

Nothing is left to delete after a batch run: the job is a record that ends by itself, its results are
the scientist's data (teardown removes neither).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, show
from sagelift.domain.overrides import merge_overrides
from sagelift.domain.platform import s3_key_segments_problem
from sagelift.domain.security import LOCAL_STORAGE_RE, NetworkSettings

FIELD = "batch"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)
SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("None", "Line")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
MAX_INSTANCES = 100
MAX_PAYLOAD_MB = 100  # SageMaker's limit on one request to the container
DEFAULT_PAYLOAD_MB = 6  # what SageMaker uses when MaxPayloadInMB is unset
MAX_CONCURRENT = 1000
OUTPUT_FOLDER = "batch"
_KEYS = (
    "input_s3_uri",
    "output_s3_uri",
    "content_type",
    "split_type",
    "strategy",
    "instance_type",
    "instance_count",
    "max_payload_mb",
    "max_concurrent_transforms",
    "assemble_with",
    "accept",
)

SETTINGS_DOC = (
    "Optional, as a JSON object (or its JSON text): score an S3 input prefix with a batch transform job "
    "instead of creating an endpoint. Keys: input_s3_uri (required); output_s3_uri (default "
    "<training_s3_output_path>/<job>/batch/); content_type; split_type (None, Line, RecordIO, TFRecord); "
    "strategy (MultiRecord, SingleRecord); instance_type (default ml.m5.large); instance_count "
    f"(1-{MAX_INSTANCES}); max_payload_mb (0-{MAX_PAYLOAD_MB}); max_concurrent_transforms; assemble_with "
    "(None, Line); accept. README: Batch scoring."
)


@cache
def transform_instance_types() -> tuple[str, ...]:
    """SageMaker's transform instance types, shipped from botocore's model (TransformInstanceType)."""
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_types.json").read_text())
    return tuple(data["transform"])


@dataclass(frozen=True)
class BatchSettings:
    input_s3_uri: str | None = None  # None: batch scoring is off
    output_s3_uri: str | None = None  # None: derived from the training output path and the job
    content_type: str | None = None
    split_type: str = "None"
    strategy: str = "MultiRecord"
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    max_payload_mb: int | None = None
    max_concurrent_transforms: int | None = None
    assemble_with: str = "None"
    accept: str | None = None

    @property
    def enabled(self) -> bool:
        return self.input_s3_uri is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_conf(self) -> dict[str, Any]:
        """The settings as a conf's ``batch`` object without nulls or defaults (a KFP struct holds no
        nulls); an empty object when batch scoring is off."""
        if not self.enabled:
            return {}
        defaults = BatchSettings()
        return {
            key: value
            for key, value in asdict(self).items()
            if value is not None and (key == "input_s3_uri" or value != getattr(defaults, key))
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BatchSettings:
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None})


def _s3_prefix(r: ObjectReader, key: str) -> str | None:
    uri = r.s3_uri(key)
    if uri is not None and s3_key_segments_problem(uri) is not None:
        r.problems.add(r.name(key), f"{show(uri, 48)} has an empty, '.' or '..' path segment")
        return None
    return uri


def _instance_type(r: ObjectReader) -> str:
    value = r.text("instance_type", DEFAULT_INSTANCE_TYPE, 64)
    known = transform_instance_types()
    if value in known:
        return str(value)
    close = difflib.get_close_matches(str(value), known, n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else " (README: Batch scoring)"
    r.problems.add(r.name("instance_type"), f"{show(value)} is not a SageMaker transform instance type{hint}")
    return DEFAULT_INSTANCE_TYPE


def parse_batch(raw: Any, problems: Problems, *, training_output: str | None = None) -> BatchSettings:
    """The conf's ``batch`` object as BatchSettings; adds a problem per broken rule. ``training_output``:
    the run's training_s3_output_path, where the output prefix is derived when the conf gives none."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return BatchSettings()
    r = ObjectReader(data, FIELD, _KEYS, problems)
    if not r.given("input_s3_uri"):
        problems.add(r.name("input_s3_uri"), "required: the S3 prefix whose objects the job scores")
    input_uri = _s3_prefix(r, "input_s3_uri")
    output_uri = _s3_prefix(r, "output_s3_uri")
    if not r.given("output_s3_uri") and training_output is None:
        problems.add(
            r.name("output_s3_uri"),
            "required when nothing is trained (no training_s3_output_path to derive it from)",
        )
    if input_uri is not None and output_uri is not None and output_uri.startswith(input_uri):
        problems.add(
            r.name("output_s3_uri"), "must not lie under input_s3_uri (a later run would score the results)"
        )
    settings = BatchSettings(
        input_s3_uri=input_uri,
        output_s3_uri=output_uri,
        content_type=r.text("content_type", None, 256),
        split_type=r.choice("split_type", "None", SPLIT_TYPES),
        strategy=r.choice("strategy", "MultiRecord", STRATEGIES),
        instance_type=_instance_type(r),
        instance_count=r.whole("instance_count", 1, 1, MAX_INSTANCES),
        max_payload_mb=r.whole("max_payload_mb", None, 0, MAX_PAYLOAD_MB),
        max_concurrent_transforms=r.whole("max_concurrent_transforms", None, 0, MAX_CONCURRENT),
        assemble_with=r.choice("assemble_with", "None", ASSEMBLE_WITH),
        accept=r.text("accept", None, 256),
    )
    if settings.split_type != "None" and settings.strategy == "MultiRecord" and settings.max_payload_mb == 0:
        problems.add(r.name("max_payload_mb"), "must be above 0 for MultiRecord batches of split records")
    _check_payload_times_concurrency(settings, r, problems)
    return settings


def _check_payload_times_concurrency(settings: BatchSettings, r: ObjectReader, problems: Problems) -> None:
    """SageMaker refuses MaxConcurrentTransforms x MaxPayloadInMB above 100 MB (the payload defaults to
    6 MB when unset); MaxPayloadInMB 0 (unlimited, for streaming) is not multiplied."""
    concurrency = settings.max_concurrent_transforms
    payload = DEFAULT_PAYLOAD_MB if settings.max_payload_mb is None else settings.max_payload_mb
    if concurrency and payload and concurrency * payload > MAX_PAYLOAD_MB:
        given = (
            "" if settings.max_payload_mb is not None else f" (max_payload_mb unset: SageMaker's {payload})"
        )
        problems.add(
            r.name("max_concurrent_transforms"),
            f"times max_payload_mb must be at most {MAX_PAYLOAD_MB} MB, got {concurrency} x {payload}{given}",
        )


def check_batch_against_platform(
    settings: BatchSettings, allowed: Sequence[str], training_output: str | None, problems: Problems
) -> None:
    """batch_transform: the prefixes lie under the account's ``batch_prefixes`` when it lists any (a
    derived output prefix lies under the training output path)."""
    if not settings.enabled or not allowed:
        return
    derived = None if training_output is None else training_output.rstrip("/") + "/"
    for key, uri in (
        ("input_s3_uri", settings.input_s3_uri),
        ("output_s3_uri", settings.output_s3_uri or derived),
    ):
        if uri is not None and not any(uri.startswith(prefix) for prefix in allowed):
            problems.add(
                f"{FIELD}.{key}",
                f"{show(uri, 48)} is not under the account's batch_prefixes ({', '.join(allowed)})",
            )


def derive_batch_output_s3_uri(training_output: str, job: str) -> str:
    """Where a run's transform writes when the conf names no prefix: beside its training job's output."""
    return f"{training_output.rstrip('/')}/{job}/{OUTPUT_FOLDER}/"


def batch_output_s3_uri(settings: BatchSettings, training_output: str | None, job: str) -> str:
    if settings.output_s3_uri is not None:
        return settings.output_s3_uri
    if training_output is None:  # parse_batch refuses this
        raise ValueError("batch.output_s3_uri: required when nothing is trained")
    return derive_batch_output_s3_uri(training_output, job)


def build_transform_job_request(
    settings: BatchSettings,
    *,
    job_name: str,
    model_name: str,
    training_output: str | None,
    tags: Sequence[Mapping[str, str]],
    network: NetworkSettings | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateTransformJob's body. The job runs in the model's network settings (VPC, isolation: set on
    CreateModel); the account's output KMS key encrypts the results and its volume key the instances'
    storage (except instance types with local NVMe storage, which SageMaker refuses a key for)."""
    if settings.input_s3_uri is None:
        raise ValueError("batch.input_s3_uri: required for a transform job")
    transform_input: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": settings.input_s3_uri}},
        "SplitType": settings.split_type,
    }
    if settings.content_type:
        transform_input["ContentType"] = settings.content_type
    output: dict[str, Any] = {
        "S3OutputPath": batch_output_s3_uri(settings, training_output, job_name),
        "AssembleWith": settings.assemble_with,
    }
    if settings.accept:
        output["Accept"] = settings.accept
    resources_: dict[str, Any] = {
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
    }
    if network is not None and network.output_kms_key:
        output["KmsKeyId"] = network.output_kms_key
    if network is not None and network.volume_kms_key and not LOCAL_STORAGE_RE.match(settings.instance_type):
        resources_["VolumeKmsKeyId"] = network.volume_kms_key
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "BatchStrategy": settings.strategy,
        "TransformInput": transform_input,
        "TransformOutput": output,
        "TransformResources": resources_,
        "Tags": [dict(tag) for tag in tags],
    }
    if settings.max_payload_mb is not None:
        request["MaxPayloadInMB"] = settings.max_payload_mb
    if settings.max_concurrent_transforms is not None:
        request["MaxConcurrentTransforms"] = settings.max_concurrent_transforms
    return merge_overrides(request, overrides)


def transform_facts(description: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able facts of a DescribeTransformJob answer: the job, its status, where the results are, its
    instances and seconds. SageMaker reports no record counts for a transform job (they are in its
    CloudWatch metrics and logs), so none are claimed here."""
    output = description.get("TransformOutput") or {}
    source = ((description.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource") or {}
    resources_ = description.get("TransformResources") or {}
    started, ended = description.get("TransformStartTime"), description.get("TransformEndTime")
    seconds = None
    if started is not None and ended is not None and hasattr(started, "timestamp"):
        seconds = round(float(ended.timestamp() - started.timestamp()), 1)
    return {
        "job": description.get("TransformJobName"),
        "arn": description.get("TransformJobArn"),
        "status": description.get("TransformJobStatus"),
        "input_s3_uri": source.get("S3Uri"),
        "output_s3_uri": output.get("S3OutputPath"),
        "instance_type": resources_.get("InstanceType"),
        "instance_count": resources_.get("InstanceCount"),
        "seconds": seconds,
    }
