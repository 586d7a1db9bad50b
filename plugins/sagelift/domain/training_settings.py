"""The conf's optional ``training`` object (issue 17 items 2 and 3): spot capacity and metrics.

- ``parse_training`` reads it (native or JSON text) into ``TrainingSettings``; every rule names its
  dotted field (``training.metric_definitions[0].regex``) and unknown keys are refused with the closest
  name. ``check_training_against_platform`` adds the rule that needs the platform (a spot job's max wait
  covers the platform's max runtime).
- ``training_job_fields`` gives the CreateTrainingJob fields the settings add: managed spot training
  with ``StoppingCondition.MaxWaitTimeInSeconds`` and ``CheckpointConfig`` under a prefix derived from
  the job's name (``derive_checkpoint_s3_uri``: ``<output>/<job>/checkpoints/``, beside the job's
  ``output/``, so a retry of the run resumes from the same checkpoints), and
  ``AlgorithmSpecification.MetricDefinitions`` from the conf for your own image; a built-in algorithm
  reports its own metrics (SageMaker refuses definitions for it), and sagelift's table of them
  (algorithm_metrics.json) names what a quality gate or a tuning objective may use.
- ``training_facts`` and ``render_training_facts`` read a DescribeTrainingJob answer back: spot
  interruptions (SecondaryStatus ``Interrupted`` in its transitions), billable against training seconds
  (the saving) and the final metric values (``FinalMetricDataList``), for the task log, the run summary
  and the XCom on both engines; ``spot_events`` and ``spot_event_lines`` what the deferred wait tells
  while the job runs (interrupted, resumed, max wait exceeded), from the transitions so that a poll
  slower than an interruption still tells it.
- ``checkpoint_role_statements``: the training role's read and list grant on the checkpoints, for
  onboarding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, kind, show

FIELD = "training"
LIMITS = JsonLimits(max_chars=64 * 1024, max_depth=6, max_nodes=1_000, max_string=1024)
# CreateTrainingJob's bounds (botocore's model): at most 40 metric definitions, names of 1-255 and
# regexes of 1-500 characters. SageMaker's longest job is 28 days; a spot job's wait counts its runtime.
MAX_METRICS = 40
METRIC_NAME_MAX = 255
METRIC_REGEX_MAX = 500
MAX_WAIT_SECONDS = 28 * 24 * 3600
CHECKPOINTS = "checkpoints"
_KEYS = ("use_spot", "max_wait_seconds", "metric_definitions")

SETTINGS_DOC = (
    "Optional, as a JSON object (or its JSON text); empty trains on demand as before. Keys: use_spot "
    "(true: managed spot training, checkpoints under <training_s3_output_path>/<job>/checkpoints/ so an "
    f"interrupted job resumes); max_wait_seconds (spot only, 1-{MAX_WAIT_SECONDS}, at least the platform's "
    "max runtime; default twice the max runtime); metric_definitions [{name, regex}] (your own training "
    f"image only, at most {MAX_METRICS}; one capture group, the value; built-in algorithms use sagelift's "
    "table). README: Spot training and metrics."
)


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass(frozen=True)
class TrainingSettings:
    use_spot: bool = False
    max_wait_seconds: int | None = None  # None: twice the platform's max runtime
    metric_definitions: tuple[MetricDefinition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metric_definitions"] = [asdict(m) for m in self.metric_definitions]
        return data

    def to_conf(self) -> dict[str, Any]:
        """The settings as a conf's ``training`` object without nulls or defaults (a KFP struct holds no
        nulls); an empty object for the defaults."""
        conf: dict[str, Any] = {}
        if self.use_spot:
            conf["use_spot"] = True
        if self.max_wait_seconds is not None:
            conf["max_wait_seconds"] = self.max_wait_seconds
        if self.metric_definitions:
            conf["metric_definitions"] = [asdict(m) for m in self.metric_definitions]
        return conf

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainingSettings:
        data = data or {}
        return cls(
            use_spot=bool(data.get("use_spot", False)),
            max_wait_seconds=data.get("max_wait_seconds"),
            metric_definitions=tuple(
                MetricDefinition(str(m["name"]), str(m["regex"]))
                for m in data.get("metric_definitions") or ()
            ),
        )


# --- parsing -------------------------------------------------------------------------------------------
def _parse_metric(raw: Any, name: str, problems: Problems) -> MetricDefinition | None:
    if not isinstance(raw, Mapping):
        problems.add(name, f"must be an object {{name, regex}}, got {kind(raw)}")
        return None
    r = ObjectReader(raw, name, ("name", "regex"), problems)
    for key in ("name", "regex"):
        if not r.given(key):
            problems.add(r.name(key), "required")
    metric = r.text("name", None, METRIC_NAME_MAX)
    regex = r.text("regex", None, METRIC_REGEX_MAX)
    if metric is not None and not metric.strip():
        problems.add(r.name("name"), "must not be blank")
    if regex is not None:
        try:
            groups = re.compile(regex).groups
        except re.error as err:
            problems.add(r.name("regex"), f"is not a regular expression: {err}")
            return None
        if groups != 1:
            problems.add(r.name("regex"), f"must have exactly one capture group (the value), got {groups}")
    if metric is None or regex is None or not metric.strip():
        return None
    return MetricDefinition(metric, regex)


def _parse_metrics(raw: Any, problems: Problems) -> tuple[MetricDefinition, ...]:
    name = f"{FIELD}.metric_definitions"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(name, f"must be a JSON array of {{name, regex}}, got {kind(raw)}")
        return ()
    if len(raw) > MAX_METRICS:
        problems.add(name, f"at most {MAX_METRICS} definitions (SageMaker's limit), got {len(raw)}")
        return ()
    metrics = [_parse_metric(item, f"{name}[{i}]", problems) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for i, metric in enumerate(metrics):
        if metric is not None and metric.name in seen:
            problems.add(f"{name}[{i}].name", f"{show(metric.name)} is defined twice")
        if metric is not None:
            seen.add(metric.name)
    return tuple(m for m in metrics if m is not None)


def parse_training(raw: Any, problems: Problems, *, algorithm: str | None = None) -> TrainingSettings:
    """The conf's ``training`` object as TrainingSettings; adds a problem per broken rule and returns the
    defaults for what could not be read. ``algorithm``: the run's built-in algorithm, whose metrics come
    from sagelift's table, so the conf may not define them."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data is None:
        return TrainingSettings()
    r = ObjectReader(data, FIELD, _KEYS, problems)
    use_spot = r.flag("use_spot", False)
    max_wait = r.whole("max_wait_seconds", None, 1, MAX_WAIT_SECONDS)
    if max_wait is not None and not use_spot:
        problems.add(
            r.name("max_wait_seconds"), "applies to spot training only; set use_spot true or drop it"
        )
    metrics = _parse_metrics(data.get("metric_definitions"), problems)
    if metrics and algorithm is not None:
        problems.add(
            r.name("metric_definitions"),
            f"the built-in algorithm {show(algorithm)} reports its metrics from sagelift's table; "
            "define metrics only for your own training image",
        )
    return TrainingSettings(use_spot=use_spot, max_wait_seconds=max_wait, metric_definitions=metrics)


def max_wait_seconds(settings: TrainingSettings, max_runtime_seconds: int) -> int:
    """A spot job's MaxWaitTimeInSeconds: the conf's, else twice the runtime (capacity may take a while)."""
    if settings.max_wait_seconds is not None:
        return settings.max_wait_seconds
    return min(2 * max_runtime_seconds, max(MAX_WAIT_SECONDS, max_runtime_seconds))


def check_training_against_platform(
    settings: TrainingSettings, max_runtime_seconds: int, problems: Problems
) -> None:
    """train_model: SageMaker refuses a spot job whose max wait is below its max runtime."""
    wait = settings.max_wait_seconds
    if settings.use_spot and wait is not None and wait < max_runtime_seconds:
        problems.add(
            f"{FIELD}.max_wait_seconds",
            f"must be at least the platform's training max runtime ({max_runtime_seconds} s), got {wait}",
        )


# --- the request fields -----------------------------------------------------------------------------
@cache
def _metrics_table() -> dict[str, Any]:
    data = json.loads(resources.files("sagelift.domain").joinpath("algorithm_metrics.json").read_text())
    return dict(data["algorithms"])


def builtin_metric_definitions(algorithm: str) -> tuple[MetricDefinition, ...]:
    return tuple(MetricDefinition(m["name"], m["regex"]) for m in _metrics_table().get(algorithm, ()))


def resolve_metric_definitions(
    settings: TrainingSettings, algorithm: str | None
) -> tuple[MetricDefinition, ...]:
    """The conf's definitions for your own image, the table's for a built-in algorithm."""
    if algorithm is not None:
        return builtin_metric_definitions(algorithm)
    return settings.metric_definitions


def derive_checkpoint_s3_uri(output_path: str, training_job: str) -> str:
    """Where a spot job keeps its checkpoints: beside its ``output/``, fixed for the run's job."""
    return f"{output_path.rstrip('/')}/{training_job}/{CHECKPOINTS}/"


def training_job_fields(
    settings: TrainingSettings,
    *,
    algorithm: str | None,
    output_path: str,
    training_job: str,
    max_runtime_seconds: int,
) -> dict[str, Any]:
    """The CreateTrainingJob fields the settings add: ``EnableManagedSpotTraining``, ``CheckpointConfig``
    and ``StoppingCondition`` (with its max wait) for spot, ``MetricDefinitions`` (to merge into
    ``AlgorithmSpecification``) for your own image's defined metrics."""
    fields: dict[str, Any] = {}
    if settings.use_spot:
        fields["EnableManagedSpotTraining"] = True
        fields["StoppingCondition"] = {
            "MaxRuntimeInSeconds": max_runtime_seconds,
            "MaxWaitTimeInSeconds": max_wait_seconds(settings, max_runtime_seconds),
        }
        fields["CheckpointConfig"] = {"S3Uri": derive_checkpoint_s3_uri(output_path, training_job)}
    # A built-in algorithm's metrics are SageMaker's own: it refuses MetricDefinitions for them ("You can't
    # override the metric definitions for Amazon SageMaker algorithms"), so only your own image sends them.
    if algorithm is None and settings.metric_definitions:
        fields["MetricDefinitions"] = [
            {"Name": m.name, "Regex": m.regex} for m in settings.metric_definitions
        ]
    return fields


# --- reading a finished job back ------------------------------------------------------------------------
def training_facts(description: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able facts of a DescribeTrainingJob answer: spot, interruptions, seconds, final metrics."""
    transitions = description.get("SecondaryStatusTransitions") or []
    interruptions = sum(1 for t in transitions if isinstance(t, Mapping) and t.get("Status") == "Interrupted")
    training = description.get("TrainingTimeInSeconds")
    billable = description.get("BillableTimeInSeconds")
    saving = None
    if isinstance(training, int | float) and isinstance(billable, int | float) and training > 0:
        saving = round(100 * (1 - billable / training), 1)
    metrics = {
        str(m["MetricName"]): m["Value"]
        for m in description.get("FinalMetricDataList") or []
        if isinstance(m, Mapping) and "MetricName" in m and isinstance(m.get("Value"), int | float)
    }
    return {
        "spot": bool(description.get("EnableManagedSpotTraining")),
        "interruptions": interruptions,
        "training_seconds": training,
        "billable_seconds": billable,
        "saving_percent": saving,
        "metrics": metrics,
    }


def render_training_facts(job: str, facts: Mapping[str, Any]) -> list[str]:
    """The lines the task log shows once the job has ended."""
    lines = []
    if facts.get("spot"):
        count = facts.get("interruptions") or 0
        if count:
            lines.append(
                f"Spot training job {job} was interrupted {count} time(s) and resumed from its checkpoints."
            )
        if facts.get("billable_seconds") is not None:
            saving = facts.get("saving_percent")
            lines.append(
                f"Spot training job {job}: billed {facts['billable_seconds']} s of "
                f"{facts.get('training_seconds')} s trained"
                + (f" ({saving:g} % saved)." if saving is not None else ".")
            )
    metrics = facts.get("metrics") or {}
    if metrics:
        shown = ", ".join(f"{name}={value:g}" for name, value in sorted(metrics.items()))
        lines.append(f"Final metrics of {job}: {shown}")
    return lines


def spot_events(description: Mapping[str, Any]) -> list[str]:
    """A spot job's interruptions and resumes so far, in order (``interrupted`` / ``resumed``), read off
    its SecondaryStatusTransitions, so a wait that polls less often than an interruption lasts still
    sees it; ``max_wait_exceeded`` last when the job gave up waiting for capacity."""
    events: list[str] = []
    for t in description.get("SecondaryStatusTransitions") or []:
        status = t.get("Status") if isinstance(t, Mapping) else None
        if status == "Interrupted":
            events.append("interrupted")
        elif status == "Training" and events and events[-1] == "interrupted":
            events.append("resumed")
        elif status == "MaxWaitTimeExceeded":
            events.append("max_wait_exceeded")
    return events


SPOT_EVENT_LINES = {
    "interrupted": "Spot training job {job} was interrupted (capacity reclaimed); SageMaker resumes it "
    "from its checkpoints.",
    "resumed": "Spot training job {job} resumed training from its checkpoints.",
    "max_wait_exceeded": "Spot training job {job} waited longer than its max wait for spot capacity.",
}


def spot_event_lines(job: str, events: list[str], already_told: int) -> list[str]:
    """The lines a wait logs for the events it has not told yet."""
    return [SPOT_EVENT_LINES[event].format(job=job) for event in events[already_told:]]


def checkpoint_role_statements(output_uris: list[str]) -> list[dict[str, Any]]:
    """The training role's IAM statements to resume a spot job: read and list the checkpoints it wrote
    under each training output prefix (``<output>/<job>/checkpoints/``; writing is the output's own
    PutObject grant). Prefixes ending in '/' (or a bucket) cover every job under them."""
    objects: set[str] = set()
    listing: dict[str, set[str]] = {}
    for uri in output_uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        prefix = key if not key or key.endswith("/") else key + "/"
        objects.add(f"arn:aws:s3:::{bucket}/{prefix}*/{CHECKPOINTS}/*")
        listing.setdefault(f"arn:aws:s3:::{bucket}", set()).add(f"{prefix}*/{CHECKPOINTS}/*")
    if not objects:
        return []
    return [
        {
            "Sid": "ReadSpotCheckpoints",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": sorted(objects),
        },
        {
            "Sid": "ListSpotCheckpoints",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": sorted(listing),
            "Condition": {"StringLike": {"s3:prefix": sorted(set().union(*listing.values()))}},
        },
    ]
