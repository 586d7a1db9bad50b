"""Model Monitor for the local AWS: baseline processing jobs, monitoring schedules and their executions.

moto creates a processing job ``Completed`` at once (writing nothing), has data-quality job definitions
(but lists every one with the endpoint name ``"EndpointName"``, ignores the list's filters and overwrites
a definition of an existing name) and has no monitoring schedules at all. With the lifecycle installed
(LocalAws and tests/support/sagemaker_lifecycle call ``patch_monitoring``):

- **processing jobs** follow ``script_baseline(life, seconds, outcome, failure_reason, stop_seconds)``:
  ``InProgress`` for ``seconds`` then ``Completed``, ``Failed`` (``FailureReason``) or ``Stopped``;
  StopProcessingJob makes it ``Stopping`` for ``stop_seconds`` then ``Stopped`` (a stop of an ended job is
  a ValidationException); a create of an existing name is refused (ResourceInUse). A job that completes
  with the analyzer's image writes what the analyzer writes: ``statistics.json`` and ``constraints.json``
  under its output, one feature per column of the first input object (CSV: ``_c0``, ``_c1``... without a
  header, the header's names with one); with no input object it fails as SageMaker does;
- **data-quality job definitions** (moto's, fixed): a create of an existing name is refused
  (ResourceInUse), ListDataQualityJobDefinitions filters by EndpointName and NameContains and names each
  definition's endpoint, and a definition a schedule uses cannot be deleted (ResourceInUse);
- **monitoring schedules** (added): Create / Describe / Update / Delete / List (filters EndpointName,
  MonitoringJobDefinitionName); a schedule names an existing definition (else ValidationException) and
  the definition's endpoint must exist; it is ``Scheduled`` at once; DescribeMonitoringSchedule names
  the endpoint and its last execution;
- **executions** (``run_execution(aws, account, schedule, outcome)``): ``Completed``,
  ``CompletedWithViolations``, ``Failed`` or ``Stopped``, listed by ListMonitoringExecutions and shown as
  the schedule's LastMonitoringExecutionSummary. An execution with violations publishes the analyzer's
  drift metric for every baselined feature above the threshold, and stands in for CloudWatch's alarm
  evaluation: each alarm on such a metric whose threshold it exceeds goes to ALARM (moto never evaluates
  alarms).

What it does not emulate: the analysis itself (no statistics are computed from the data, the
constraints are fixed), schedule timing (no execution starts by itself), Pending/Stopped schedule states,
StartMonitoringSchedule / StopMonitoringSchedule, model-quality, bias and explainability monitors, and
the execution's processing job.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import tests.support.sagemaker_lifecycle as lifecycle

OUTCOMES = ("Completed", "Failed", "Stopped")
EXECUTION_OUTCOMES = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
ANALYZER = "sagemaker-model-monitor-analyzer"
DRIFT_OVER_THRESHOLD = 0.5
_PATCHED = False


@dataclass
class BaselineScript:
    seconds: float = 0.0
    outcome: str = "Completed"
    failure_reason: str = ""
    stop_seconds: float = 5.0


@dataclass
class _Processing:
    created: float
    script: BaselineScript
    stop_requested: float | None = None
    written: bool = False


def _state(life: Any) -> dict[str, Any]:
    """This module's state on the lifecycle (scripts and jobs), created on first use."""
    return life.__dict__.setdefault("_monitoring", {"script": BaselineScript(), "jobs": {}})


def script_baseline(
    life: Any,
    seconds: float = 0.0,
    outcome: str = "Completed",
    failure_reason: str = "",
    stop_seconds: float = 5.0,
) -> Any:
    """The next processing jobs' script on ``life`` (a SageMakerLifecycle); returns ``life``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    _state(life)["script"] = BaselineScript(seconds, outcome, failure_reason, stop_seconds)
    return life


def _schedules(backend: Any) -> dict[str, dict[str, Any]]:
    return backend.__dict__.setdefault("_sagelift_schedules", {})


def _executions(backend: Any) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault("_sagelift_executions", [])


def _features(body: bytes, header: bool, fmt: str) -> list[str]:
    text = body.decode("utf-8", "replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "json" in fmt:
        try:
            return [str(k) for k in json.loads(first)]
        except ValueError:
            return []
    cells = first.split(",")
    return [c.strip() for c in cells] if header else [f"_c{i}" for i in range(len(cells))]


def _write_baseline(account: str, job: Any, inputs: list[tuple[str, str, bytes]]) -> None:
    from moto.s3.models import s3_backends

    env = getattr(job, "environment", None) or {}
    fmt = str(env.get("dataset_format", "csv"))
    features = _features(inputs[0][2], '"header": true' in fmt, fmt)
    output = job.processing_output_config["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    statistics = {
        "version": 0.0,
        "dataset": {"item_count": 100},
        "features": [{"name": f, "inferred_type": "Fractional"} for f in features],
    }
    constraints = {
        "version": 0.0,
        "features": [{"name": f, "inferred_type": "Fractional", "completeness": 1.0} for f in features],
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1},
        },
    }
    backend = s3_backends[account]["aws"]
    backend.put_object(bucket, f"{prefix}statistics.json", json.dumps(statistics).encode())
    backend.put_object(bucket, f"{prefix}constraints.json", json.dumps(constraints).encode())


def _advance(life: Any, job: Any, account: str) -> None:
    states = _state(life)["jobs"]
    state = states.setdefault(job.processing_job_name, _Processing(life.now(), _state(life)["script"]))
    script, elapsed = state.script, life.now() - state.created
    inputs: list[tuple[str, str, bytes]] = []
    for item in job.processing_inputs or []:
        inputs += lifecycle._s3_objects(account, item["S3Input"]["S3Uri"])
    failure = None
    if state.stop_requested is not None:
        status = "Stopped" if life.now() - state.stop_requested >= script.stop_seconds else "Stopping"
    elif elapsed < script.seconds:
        status = "InProgress"
    elif script.outcome == "Completed" and job.processing_inputs and not inputs:
        source = job.processing_inputs[0]["S3Input"]["S3Uri"]
        status, failure = "Failed", f"ClientError: No S3 objects found under S3 URL '{source}'"
    else:
        status = script.outcome
        failure = (
            (script.failure_reason or "AlgorithmError: the analyzer failed") if status == "Failed" else None
        )
    job.processing_job_status = status
    job.failure_reason = failure
    job.processing_end_time = lifecycle.utc_now() if status in OUTCOMES else None
    analyzer = ANALYZER in str((job.app_specification or {}).get("ImageUri", ""))
    if status == "Completed" and analyzer and inputs and not state.written:
        _write_baseline(account, job, inputs)
        state.written = True


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _endpoint_of(definition: Any) -> str:
    return str(((definition.data_quality_job_input or {}).get("EndpointInput") or {}).get("EndpointName", ""))


def _describe_schedule(backend: Any, name: str) -> dict[str, Any]:
    from moto.sagemaker.exceptions import ResourceNotFound

    schedule = _schedules(backend).get(name)
    if schedule is None:
        raise ResourceNotFound(f"Monitoring schedule {name} not found")
    out = {k: v for k, v in schedule.items() if k != "Tags"}
    runs = [e for e in _executions(backend) if e["MonitoringScheduleName"] == name]
    if runs:
        out["LastMonitoringExecutionSummary"] = runs[-1]
    return out


def run_execution(aws: Any, account: str, schedule_name: str, outcome: str = "Completed") -> dict[str, Any]:
    """One execution of the schedule ending ``outcome``; with violations, the drift metrics are published
    and the alarms watching them whose threshold they exceed go to ALARM. Returns the execution summary."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import sagemaker_backends

    if outcome not in EXECUTION_OUTCOMES:
        raise ValueError(f"outcome must be one of {EXECUTION_OUTCOMES}")
    region = aws.region if hasattr(aws, "region") else "us-east-1"
    backend = sagemaker_backends[account][region]
    schedule = _describe_schedule(backend, schedule_name)
    definition_name = schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
    definition = backend.data_quality_job_definitions[definition_name]
    endpoint = _endpoint_of(definition)
    now = _now()
    summary = {
        "MonitoringScheduleName": schedule_name,
        "ScheduledTime": now,
        "CreationTime": now,
        "LastModifiedTime": now,
        "MonitoringExecutionStatus": outcome,
        "EndpointName": endpoint,
        "MonitoringJobDefinitionName": definition_name,
        "MonitoringType": "DataQuality",
    }
    if outcome == "Failed":
        summary["FailureReason"] = "Job inputs had no data"
    _executions(backend).append(summary)
    if outcome == "CompletedWithViolations":
        uri = definition.data_quality_baseline_config["ConstraintsResource"]["S3Uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        constraints = json.loads(bytes(s3_backends[account]["aws"].get_object(bucket, key).value))
        cloudwatch = cloudwatch_backends[account][region]
        for feature in constraints.get("features", []):
            metric = f"feature_baseline_drift_{feature['name']}"
            for alarm in list(cloudwatch.alarms.values()):
                dims = {d.name: d.value for d in alarm.dimensions}
                if (
                    alarm.metric_name == metric
                    and dims.get("Endpoint") == endpoint
                    and dims.get("MonitoringSchedule") == schedule_name
                    and float(alarm.threshold) < DRIFT_OVER_THRESHOLD
                ):
                    cloudwatch.set_alarm_state(
                        alarm.name, f"Drift {DRIFT_OVER_THRESHOLD} above {alarm.threshold}", "{}", "ALARM"
                    )
    return summary


def patch_monitoring() -> None:
    """Wrap moto's processing jobs and data-quality definitions; add monitoring schedules and executions.
    Called by LocalAws and by sagemaker_lifecycle._patch_moto; idempotent."""
    global _PATCHED
    if _PATCHED:
        return
    _PATCHED = True
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    backend_class: Any = SageMakerModelBackend
    original_create = backend_class.create_processing_job
    original_describe = backend_class.describe_processing_job
    original_create_definition = backend_class.create_data_quality_job_definition
    original_delete_definition = backend_class.delete_data_quality_job_definition
    original_create_response = SageMakerResponse.create_processing_job

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("processing_job_name")
        life = lifecycle.active()
        if life is not None and name in self.processing_jobs:
            raise ResourceInUseException(
                message=f"Job name {name} must be unique within an AWS account and region"
            )
        job = original_create(self, *args, **kwargs)
        if life is not None:  # advanced on its first describe, once the response set its Environment
            with lifecycle._LOCK:
                _state(life)["jobs"][name] = _Processing(life.now(), _state(life)["script"])
        return job

    def create_response(self: Any) -> Any:
        result = original_create_response(self)
        job = self.sagemaker_backend.processing_jobs.get(self._get_param("ProcessingJobName"))
        if job is not None:  # moto keeps no Environment; the analyzer reads its dataset_format there
            job.environment = self._get_param("Environment") or {}
        return result

    def describe(self: Any, processing_job_name: str) -> Any:
        life, job = lifecycle.active(), self.processing_jobs.get(processing_job_name)
        if life is not None and job is not None:
            with lifecycle._LOCK:
                _advance(life, job, self.account_id)
        return original_describe(self, processing_job_name)

    def stop(self: Any, processing_job_name: str) -> None:
        job = self.processing_jobs.get(processing_job_name)
        if job is None:
            raise ValidationError(message=f"Could not find processing job '{processing_job_name}'.")
        life = lifecycle.active()
        if life is None:
            job.processing_job_status = "Stopped"
            return
        with lifecycle._LOCK:
            _advance(life, job, self.account_id)
            if job.processing_job_status not in ("InProgress", "Stopping"):
                raise ValidationError(
                    message=f"The request was rejected because the processing job is in status "
                    f"{job.processing_job_status}."
                )
            state = _state(life)["jobs"][processing_job_name]
            if state.stop_requested is None:
                state.stop_requested = life.now()
            _advance(life, job, self.account_id)

    def create_definition(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("job_definition_name")
        if name in self.data_quality_job_definitions:
            raise ResourceInUseException(message=f"Job definition {name} already exists")
        return original_create_definition(self, *args, **kwargs)

    def delete_definition(self: Any, job_definition_name: str) -> None:
        for schedule in _schedules(self).values():
            if schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == job_definition_name:
                raise ResourceInUseException(
                    message=f"Job definition {job_definition_name} is used by monitoring schedule "
                    f"{schedule['MonitoringScheduleName']}"
                )
        original_delete_definition(self, job_definition_name)

    def list_definitions_response(self: Any) -> Any:
        endpoint, contains = self._get_param("EndpointName"), self._get_param("NameContains")
        out = []
        for d in self.sagemaker_backend.data_quality_job_definitions.values():
            summary = {**d.summary_object, "EndpointName": _endpoint_of(d)}
            if endpoint and summary["EndpointName"] != endpoint:
                continue
            if contains and contains not in d.job_definition_name:
                continue
            out.append(summary)
        return ActionResult({"JobDefinitionSummaries": out})

    def _check_config(backend: Any, config: dict[str, Any]) -> str:
        definition = backend.data_quality_job_definitions.get(config.get("MonitoringJobDefinitionName"))
        if definition is None:
            raise ValidationError(
                message=f"Job definition {config.get('MonitoringJobDefinitionName')} does not exist"
            )
        endpoint = _endpoint_of(definition)
        if endpoint not in backend.endpoints:
            raise ValidationError(message=f'Could not find endpoint "{endpoint}".')
        return endpoint

    def create_schedule_response(self: Any) -> Any:
        backend = self.sagemaker_backend
        name, config = self._get_param("MonitoringScheduleName"), self._get_param("MonitoringScheduleConfig")
        if name in _schedules(backend):
            raise ResourceInUseException(message=f"Monitoring schedule {name} already exists")
        endpoint = _check_config(backend, config)
        arn = (
            f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:monitoring-schedule/{name.lower()}"
        )
        now = _now()
        _schedules(backend)[name] = {
            "MonitoringScheduleArn": arn,
            "MonitoringScheduleName": name,
            "MonitoringScheduleStatus": "Scheduled",
            "MonitoringType": config.get("MonitoringType", "DataQuality"),
            "CreationTime": now,
            "LastModifiedTime": now,
            "MonitoringScheduleConfig": config,
            "EndpointName": endpoint,
            "Tags": self._get_param("Tags") or [],
        }
        return ActionResult({"MonitoringScheduleArn": arn})

    def update_schedule_response(self: Any) -> Any:
        backend = self.sagemaker_backend
        name, config = self._get_param("MonitoringScheduleName"), self._get_param("MonitoringScheduleConfig")
        schedule = _schedules(backend).get(name)
        if schedule is None:
            raise ResourceNotFound(f"Monitoring schedule {name} not found")
        schedule["EndpointName"] = _check_config(backend, config)
        schedule["MonitoringScheduleConfig"] = config
        schedule["LastModifiedTime"] = _now()
        return ActionResult({"MonitoringScheduleArn": schedule["MonitoringScheduleArn"]})

    def describe_schedule_response(self: Any) -> Any:
        return ActionResult(
            _describe_schedule(self.sagemaker_backend, self._get_param("MonitoringScheduleName"))
        )

    def delete_schedule_response(self: Any) -> Any:
        name = self._get_param("MonitoringScheduleName")
        if _schedules(self.sagemaker_backend).pop(name, None) is None:
            raise ResourceNotFound(f"Monitoring schedule {name} not found")
        return EmptyResult()

    def list_schedules_response(self: Any) -> Any:
        endpoint, definition = self._get_param("EndpointName"), self._get_param("MonitoringJobDefinitionName")
        out = []
        for s in _schedules(self.sagemaker_backend).values():
            config = s["MonitoringScheduleConfig"]
            if endpoint and s["EndpointName"] != endpoint:
                continue
            if definition and config.get("MonitoringJobDefinitionName") != definition:
                continue
            out.append(
                {
                    "MonitoringScheduleName": s["MonitoringScheduleName"],
                    "MonitoringScheduleArn": s["MonitoringScheduleArn"],
                    "CreationTime": s["CreationTime"],
                    "LastModifiedTime": s["LastModifiedTime"],
                    "MonitoringScheduleStatus": s["MonitoringScheduleStatus"],
                    "EndpointName": s["EndpointName"],
                    "MonitoringJobDefinitionName": config.get("MonitoringJobDefinitionName"),
                    "MonitoringType": s["MonitoringType"],
                }
            )
        return ActionResult({"MonitoringScheduleSummaries": out})

    def list_executions_response(self: Any) -> Any:
        name = self._get_param("MonitoringScheduleName")
        runs = [
            e for e in _executions(self.sagemaker_backend) if not name or e["MonitoringScheduleName"] == name
        ]
        return ActionResult({"MonitoringExecutionSummaries": runs})

    backend_class.create_processing_job = create
    backend_class.describe_processing_job = describe
    backend_class.stop_processing_job = stop
    backend_class.create_data_quality_job_definition = create_definition
    backend_class.delete_data_quality_job_definition = delete_definition
    responses: Any = SageMakerResponse
    responses.create_processing_job = create_response
    responses.list_data_quality_job_definitions = list_definitions_response
    responses.create_monitoring_schedule = create_schedule_response
    responses.update_monitoring_schedule = update_schedule_response
    responses.describe_monitoring_schedule = describe_schedule_response
    responses.delete_monitoring_schedule = delete_schedule_response
    responses.list_monitoring_schedules = list_schedules_response
    responses.list_monitoring_executions = list_executions_response
