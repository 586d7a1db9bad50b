"""The conf's optional ``labeling`` object (issue 20 item 4): a Ground Truth labeling job before training,
whose output manifest becomes a training channel.

- ``parse_labeling`` reads the object (native or JSON text) into ``LabelingSettings``: the input manifest,
  a built-in task type (``TASK_TYPES``, from the bundled ``labeling_task_types.json``), the label
  attribute name (Ground Truth's rules), the labels, the workers' instructions and the training channel
  the labels feed. Every rule names its dotted field (``labeling.task_type``).
- ``check_labeling_against_platform``: the account must have a workteam (``labeling_workteam_arn``) in the
  platform's region, Ground Truth's Lambda functions must exist there, and the manifest must lie under
  the account's ``labeling_prefixes`` (its objects are shown to the workteam, so the platform bounds
  which data a conf may send to people).
- ``labeling_channel``: the training channel over the job's output manifest. Ground Truth writes it at
  ``<S3OutputPath>/<job>/manifests/output/output.manifest``, and the job's name is fixed for the run, so
  validate puts the channel in the plan (``build_plan``): training and tuning read it like any channel.
  Augmented manifests are read in Pipe mode only; image tasks' ``source-ref`` objects are wrapped in
  RecordIO (what SageMaker's image algorithms read), text tasks stream their ``source`` inline.
- ``build_labeling_job_request``: CreateLabelingJob's body, with the region's pre-annotation and
  annotation-consolidation Lambda ARNs from the table; ``render_ui_template`` and
  ``label_category_config``: the two documents the step writes beside the job's output before creating
  it. The conf's text reaches the template HTML-escaped, with Liquid's braces escaped too, so it is shown
  to workers as text and never evaluated as a template.
"""

from __future__ import annotations

import html
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
from sagelift.domain.platform import WORKTEAM_ARN_RE, s3_key_segments_problem

FIELD = "labeling"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=2048)
MAX_LABELS = 30  # Ground Truth's limit on the categories of its built-in classification tasks
MAX_LABEL_CHARS = 256
MAX_INSTRUCTIONS = 2000
DEFAULT_ATTRIBUTE = "label"
DEFAULT_CHANNEL = "train"
DEFAULT_TASK_SECONDS = 300
MAX_TASK_SECONDS = 28800  # 8 hours: Ground Truth's limit per task
# How long the job's tasks stay open to the workteam (TaskAvailabilityLifetimeInSeconds): Ground Truth's
# own default for a private workteam is 30 days, far past any wait; sagelift sets it, 2 days by default.
DEFAULT_AVAILABILITY_SECONDS = 2 * 86400
MIN_AVAILABILITY_SECONDS = 60
MAX_AVAILABILITY_SECONDS = 30 * 86400
# After the last task closes, Ground Truth consolidates the annotations and writes the output manifest.
LABELING_WAIT_SLACK_SECONDS = 3600
# LabelAttributeName in botocore's SageMaker model; Ground Truth adds "<name>-metadata" beside it.
ATTRIBUTE_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}")
CHANNEL_RE = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
# Workers' text holds no control character but tab and newline; Ground Truth's TaskTitle holds only
# [\t\n\r -\uD7FF\uE000-\uFFFD] (botocore's model): no emoji either
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_NOT_IN_TITLE_RE = re.compile("[^\t\n\r -\ud7ff\ue000-\ufffd]")
INPUT_FOLDER = "labeling-input"
TEMPLATE_NAME = "template.liquid.html"
CATEGORIES_NAME = "label-categories.json"
_KEYS = (
    "manifest_s3_uri",
    "task_type",
    "label_attribute_name",
    "labels",
    "instructions",
    "channel",
    "title",
    "workers_per_object",
    "task_time_limit_seconds",
    "task_availability_seconds",
)


@cache
def _table() -> dict[str, Any]:
    return json.loads(resources.files("sagelift.domain").joinpath("labeling_task_types.json").read_text())


def task_types() -> dict[str, dict[str, str]]:
    """sagelift's name of each built-in task type -> its Ground Truth function, data kind, UI element."""
    return dict(_table()["task_types"])


TASK_TYPES = tuple(sorted(_table()["task_types"]))

SETTINGS_DOC = (
    "Optional, as a JSON object: a Ground Truth labeling job before training whose output manifest "
    "becomes a training channel. Keys: manifest_s3_uri (required; under the account's labeling_prefixes); "
    f"task_type (required: {', '.join(TASK_TYPES)}); labels (required, 1-{MAX_LABELS}); "
    f"label_attribute_name (default {DEFAULT_ATTRIBUTE}); instructions; title; channel (default "
    f"{DEFAULT_CHANNEL}); workers_per_object (1-9); task_time_limit_seconds; task_availability_seconds. README: Labeling before "
    "training."
)


def lambda_arns(task_type: str, region: str) -> tuple[str, str] | None:
    """The built-in task type's pre-annotation and annotation-consolidation Lambda ARNs in ``region``, or
    None where Ground Truth has none."""
    account = _table()["lambda_accounts"].get(region)
    if account is None:
        return None
    function = task_types()[task_type]["function"]
    prefix = f"arn:aws:lambda:{region}:{account}:function:"
    return f"{prefix}PRE-{function}", f"{prefix}ACS-{function}"


@dataclass(frozen=True)
class LabelingSettings:
    manifest_s3_uri: str | None = None  # None: no labeling
    task_type: str = "image_classification"
    label_attribute_name: str = DEFAULT_ATTRIBUTE
    labels: tuple[str, ...] = ()
    instructions: str | None = None
    channel: str = DEFAULT_CHANNEL
    title: str | None = None
    workers_per_object: int = 1
    task_time_limit_seconds: int = DEFAULT_TASK_SECONDS
    task_availability_seconds: int = DEFAULT_AVAILABILITY_SECONDS

    @property
    def enabled(self) -> bool:
        return self.manifest_s3_uri is not None

    @property
    def wait_seconds(self) -> int:
        """The longest the job can run: its tasks stay open ``task_availability_seconds``, the last one
        taken may last ``task_time_limit_seconds``, then the annotations are consolidated. label_data
        waits this long (not the training budget), and the model's lock lease covers it."""
        return self.task_availability_seconds + self.task_time_limit_seconds + LABELING_WAIT_SLACK_SECONDS

    @property
    def source_attribute(self) -> str:
        """The manifest key of each data object: ``source-ref`` (an S3 object) or ``source`` (inline text)."""
        return "source-ref" if task_types()[self.task_type]["data"] == "image" else "source"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    def to_conf(self) -> dict[str, Any]:
        """The settings as a conf's ``labeling`` object without nulls (a KFP struct holds none); an empty
        object when labeling is off."""
        if not self.enabled:
            return {}
        return {key: value for key, value in self.to_dict().items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LabelingSettings:
        values = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__ and v is not None}
        if "labels" in values:
            values["labels"] = tuple(values["labels"])
        return cls(**values)


def _labels(r: ObjectReader, problems: Problems) -> tuple[str, ...]:
    raw = r.raw.get("labels")
    where = r.name("labels")
    if raw is None:
        problems.add(where, f"required: the 1-{MAX_LABELS} labels workers choose from")
        return ()
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LABELS:
        problems.add(where, f"must be a list of 1-{MAX_LABELS} labels, got {show(raw, 24)}")
        return ()
    if not all(isinstance(label, str) and 1 <= len(label.strip()) <= MAX_LABEL_CHARS for label in raw):
        problems.add(where, f"each label is a non-empty string of at most {MAX_LABEL_CHARS} characters")
        return ()
    labels = tuple(label.strip() for label in raw)
    if len(set(labels)) != len(labels):
        problems.add(where, "labels must be unique")
    return labels


def _attribute(r: ObjectReader, task_type: str, problems: Problems) -> str:
    value = r.text("label_attribute_name", DEFAULT_ATTRIBUTE, 127)
    where = r.name("label_attribute_name")
    suffix = task_types().get(task_type, {}).get("label_attribute_suffix", "")
    if not ATTRIBUTE_RE.fullmatch(value):
        problems.add(
            where, f"letters, digits and '-', starting and ending with a letter or digit; got {show(value)}"
        )
    elif value.endswith("-metadata") or value in ("source", "source-ref"):
        problems.add(
            where,
            f"must not be source or source-ref nor end in -metadata (Ground Truth's); got {show(value)}",
        )
    elif suffix and not value.endswith(suffix):
        problems.add(where, f"a {task_type} job's label attribute must end in {suffix}, got {show(value)}")
    elif not suffix and value.endswith("-ref"):
        problems.add(
            where, f"only a job whose labels are S3 objects may end in -ref (a {task_type} job's are not)"
        )
    return str(value)


def _worker_text(r: ObjectReader, key: str, max_len: int, problems: Problems) -> str | None:
    """The title or instructions workers read (CreateLabelingJob's TaskTitle, TaskDescription)."""
    value = r.text(key, None, max_len)
    if not value:
        return None
    if (bad := _CONTROL_RE.search(value)) is not None:
        problems.add(
            r.name(key), f"has a control character (U+{ord(bad.group()):04X}); text, tabs and newlines only"
        )
        return None
    if key == "title" and (bad := _NOT_IN_TITLE_RE.search(value)) is not None:
        problems.add(
            r.name(key), f"has U+{ord(bad.group()):04X}, which a Ground Truth task title cannot hold (emoji)"
        )
        return None
    if not value.strip():
        problems.add(r.name(key), "is only spaces; give some text or leave it out")
        return None
    return value


def _task_type(r: ObjectReader, problems: Problems) -> str:
    value = r.raw.get("task_type")
    if value is None:
        problems.add(r.name("task_type"), f"required: one of {', '.join(TASK_TYPES)}")
        return TASK_TYPES[0]
    return r.choice("task_type", TASK_TYPES[0], TASK_TYPES)


def parse_labeling(
    raw: Any, problems: Problems, *, trains: bool = True, channels: Sequence[Mapping[str, Any]] = ()
) -> LabelingSettings:
    """The conf's ``labeling`` object as LabelingSettings; adds a problem per broken rule. ``trains``:
    whether the run trains (labels feed training only); ``channels``: the conf's training channels (the
    labeling channel's name must be new)."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return LabelingSettings()
    if not trains:
        problems.add(
            FIELD,
            "labels feed training, and this run trains nothing (model_artifact_s3_path or promote_from)",
        )
    r = ObjectReader(data, FIELD, _KEYS, problems)
    manifest = r.s3_uri("manifest_s3_uri")
    if not r.given("manifest_s3_uri"):
        problems.add(r.name("manifest_s3_uri"), "required: the S3 object of the input manifest (JSON lines)")
    elif manifest is not None and (manifest.endswith("/") or s3_key_segments_problem(manifest) is not None):
        problems.add(
            r.name("manifest_s3_uri"), f"must name one S3 object (a manifest file), got {show(manifest, 48)}"
        )
        manifest = None
    task_type = _task_type(r, problems)
    channel = r.text("channel", DEFAULT_CHANNEL, 64)
    if not CHANNEL_RE.fullmatch(channel):
        problems.add(r.name("channel"), f"1-64 letters, digits and .-_ (a ChannelName), got {show(channel)}")
    elif any(isinstance(c, Mapping) and c.get("ChannelName") == channel for c in channels):
        problems.add(
            r.name("channel"),
            f"training_channels already has a channel {show(channel)}; name another for the labeled data",
        )
    return LabelingSettings(
        manifest_s3_uri=manifest,
        task_type=task_type,
        label_attribute_name=_attribute(r, task_type, problems),
        labels=_labels(r, problems),
        instructions=_worker_text(r, "instructions", MAX_INSTRUCTIONS, problems),
        channel=channel,
        title=_worker_text(r, "title", 128, problems),
        workers_per_object=r.whole("workers_per_object", 1, 1, 9),
        task_time_limit_seconds=r.whole(
            "task_time_limit_seconds", DEFAULT_TASK_SECONDS, 30, MAX_TASK_SECONDS
        ),
        task_availability_seconds=r.whole(
            "task_availability_seconds",
            DEFAULT_AVAILABILITY_SECONDS,
            MIN_AVAILABILITY_SECONDS,
            MAX_AVAILABILITY_SECONDS,
        ),
    )


def check_labeling_against_platform(
    settings: LabelingSettings,
    *,
    account_id: str,
    workteam_arn: str | None,
    prefixes: Sequence[str],
    region: str,
    problems: Problems,
) -> None:
    """label_data: the account's workteam, the region's Lambda functions, the manifest's prefix."""
    if not settings.enabled:
        return
    if workteam_arn is None:
        problems.add(
            FIELD,
            f"account {account_id} has no labeling_workteam_arn in the platform; ask the platform team to "
            "onboard a workteam (README: Labeling before training)",
        )
    else:
        match = WORKTEAM_ARN_RE.fullmatch(workteam_arn)
        if match is not None and match["region"] != region:
            problems.add(
                FIELD, f"the account's workteam is in {match['region']}, the platform runs in {region}"
            )
    if lambda_arns(settings.task_type, region) is None:
        problems.add(
            f"{FIELD}.task_type", f"Ground Truth's built-in task types are not available in {region}"
        )
    manifest = str(settings.manifest_s3_uri)
    if not prefixes:
        problems.add(
            f"{FIELD}.manifest_s3_uri",
            f"account {account_id} lists no labeling_prefixes in the platform, so no data may be sent to labelers",
        )
    elif not any(manifest.startswith(prefix) for prefix in prefixes):
        problems.add(
            f"{FIELD}.manifest_s3_uri",
            f"{show(manifest, 48)} is not under the account's labeling_prefixes ({', '.join(prefixes)})",
        )


# --- names and documents -----------------------------------------------------------------------------
def derive_labeling_job_name(training_job: str) -> str:
    """The run's labeling job: named as its training job, so its output lies beside the model's."""
    return training_job


def output_manifest_s3_uri(training_output: str, job: str) -> str:
    """Where Ground Truth writes the labeled manifest: ``<S3OutputPath>/<job>/manifests/output/``."""
    return f"{training_output.rstrip('/')}/{job}/manifests/output/output.manifest"


def input_documents_prefix(training_output: str, job: str) -> str:
    """Where the step writes the job's UI template and label categories, beside the job's output."""
    return f"{training_output.rstrip('/')}/{job}/{INPUT_FOLDER}/"


def labeling_channel(settings: LabelingSettings, training_output: str, job: str) -> dict[str, Any]:
    """The training channel over the labeling job's output manifest (see the module docstring)."""
    image = task_types()[settings.task_type]["data"] == "image"
    channel: dict[str, Any] = {
        "ChannelName": settings.channel,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "AugmentedManifestFile",
                "S3Uri": output_manifest_s3_uri(training_output, job),
                "S3DataDistributionType": "FullyReplicated",
                "AttributeNames": [settings.source_attribute, settings.label_attribute_name],
            }
        },
        "InputMode": "Pipe",
    }
    if image:
        channel["ContentType"] = "application/x-image"
        channel["RecordWrapperType"] = "RecordIO"
    return channel


def _text(value: str) -> str:
    """A conf string as inert template text: HTML-escaped, and Liquid's braces as character references."""
    return html.escape(value, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def render_ui_template(settings: LabelingSettings) -> str:
    """The worker UI (Liquid over Ground Truth's crowd HTML elements) of the built-in task type."""
    spec = task_types()[settings.task_type]
    title = _text(settings.title or spec["title"])
    instructions = _text(settings.instructions or spec["title"])
    element, name, attr = spec["element"], spec["field_name"], spec["labels_attribute"]
    labels = f'{attr}="{{{{ task.input.labels | to_json | escape }}}}"'
    if spec["data"] == "image":
        source = 'src="{{ task.input.taskObject | grant_read_access }}"'
        body = ""
    elif element == "crowd-entity-annotation":
        source = 'text="{{ task.input.taskObject | escape }}"'
        body = ""
    else:
        source = ""
        body = "\n    <classification-target>{{ task.input.taskObject | escape }}</classification-target>"
    return (
        '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n'
        "<crowd-form>\n"
        f'  <{element} name="{name}" header="{title}" {labels} {source}>{body}\n'
        f'    <full-instructions header="Instructions">{instructions}</full-instructions>\n'
        f"    <short-instructions>{instructions}</short-instructions>\n"
        f"  </{element}>\n"
        "</crowd-form>\n"
    )


def label_category_config(settings: LabelingSettings) -> dict[str, Any]:
    """LabelCategoryConfigS3Uri's document: Ground Truth's label category format."""
    return {"document-version": "2018-11-28", "labels": [{"label": label} for label in settings.labels]}


def build_labeling_job_request(
    settings: LabelingSettings,
    *,
    job_name: str,
    training_output: str,
    region: str,
    role_arn: str,
    workteam_arn: str,
    tags: Sequence[Mapping[str, str]],
    output_kms_key: str | None = None,
) -> dict[str, Any]:
    """CreateLabelingJob's body. The job reads the manifest and the two documents with ``role_arn`` (the
    training role) and writes its output under the training output path."""
    arns = lambda_arns(settings.task_type, region)
    if settings.manifest_s3_uri is None or arns is None:  # validate refuses both
        raise ValueError("labeling: no manifest, or no Ground Truth functions in the region")
    pre, consolidation = arns
    documents = input_documents_prefix(training_output, job_name)
    title = settings.title or task_types()[settings.task_type]["title"]
    output: dict[str, Any] = {"S3OutputPath": training_output.rstrip("/") + "/"}
    if output_kms_key:
        output["KmsKeyId"] = output_kms_key
    return {
        "LabelingJobName": job_name,
        "LabelAttributeName": settings.label_attribute_name,
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": settings.manifest_s3_uri}}},
        "OutputConfig": output,
        "RoleArn": role_arn,
        "LabelCategoryConfigS3Uri": documents + CATEGORIES_NAME,
        "HumanTaskConfig": {
            "WorkteamArn": workteam_arn,
            "UiConfig": {"UiTemplateS3Uri": documents + TEMPLATE_NAME},
            "PreHumanTaskLambdaArn": pre,
            "TaskTitle": title,
            "TaskDescription": " ".join((settings.instructions or title).split())[:255],
            "NumberOfHumanWorkersPerDataObject": settings.workers_per_object,
            "TaskTimeLimitInSeconds": settings.task_time_limit_seconds,
            "TaskAvailabilityLifetimeInSeconds": settings.task_availability_seconds,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": consolidation},
        },
        "Tags": [dict(tag) for tag in tags],
    }


def labeling_facts(description: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able facts of a DescribeLabelingJob answer: the job, its status, its counts, its output."""
    counters = description.get("LabelCounters") or {}
    output = description.get("LabelingJobOutput") or {}
    return {
        "job": description.get("LabelingJobName"),
        "arn": description.get("LabelingJobArn"),
        "status": description.get("LabelingJobStatus"),
        "label_attribute_name": description.get("LabelAttributeName"),
        "labeled": counters.get("TotalLabeled"),
        "human_labeled": counters.get("HumanLabeled"),
        "machine_labeled": counters.get("MachineLabeled"),
        "failed": counters.get("FailedNonRetryableError"),
        "unlabeled": counters.get("Unlabeled"),
        "output_manifest_s3_uri": output.get("OutputDatasetS3Uri"),
    }
