"""SageMaker lifecycles and AWS faults for the local AWS, scripted per test.

moto completes every training job and endpoint at once and never fails. A test installs a
``SageMakerLifecycle`` on the running ``LocalAws`` (the moto server lives in the test process, so the
emulation works the same for ``dag.test`` in this process and for ``airflow standalone`` components in
other processes, which reach the server over HTTP)::

    life = SageMakerLifecycle(time_scale=10)            # 10 emulated seconds per real second
    life.training(seconds=120, outcome="Failed", failure_reason="AlgorithmError: out of memory")
    life.endpoint_update(seconds=60, outcome="RolledBack", failure_reason="health check failed")
    life.fault("sagemaker:CreateTrainingJob", "throttle", count=1)
    with life.installed(local_aws):
        ...

Emulated, computed at each Describe* from the emulated time since the resource was created:
- training: ``InProgress`` with SecondaryStatus Starting -> Downloading -> Training (and its
  SecondaryStatusTransitions) for ``seconds``, then ``Completed``, ``Failed`` with ``FailureReason``, or
  ``Stopped``; ``StopTrainingJob`` (added; moto lacks it) -> ``Stopping`` for ``stop_seconds`` -> ``Stopped``
  (stopping a finished job is a ValidationException, as in SageMaker);
- managed spot training (a job sent with ``EnableManagedSpotTraining``): ``training(interruptions=n)``
  interrupts it n times from 40% of ``seconds``, each for 10% of them: SecondaryStatus ``Interrupted``,
  then ``Training`` again (both in SecondaryStatusTransitions), still ``InProgress``; a Completed job
  reports ``TrainingTimeInSeconds`` (the scripted seconds) and ``BillableTimeInSeconds`` (less by
  ``spot_saving`` for a spot job, equal otherwise). ``training(metrics={...})`` sets a Completed job's
  ``FinalMetricDataList``; the ``MetricDefinitions`` sent are kept (moto puts its own in their place);
- the training log: moto's CloudWatch Logs gets, in ``/aws/sagemaker/TrainingJobs``, one stream per
  instance named as SageMaker names them (``<job>/algo-<n>-<epoch seconds>``), created at the Downloading
  transition (10% of ``seconds``), and lines as the job progresses in emulated time: one at Downloading,
  one at Training (20%), two per epoch (40%, 60%, 80%; the two share a timestamp, as lines printed
  together do), one at the end (Completed, Failed with its reason, or Stopped), or a SIGTERM line when
  ``StopTrainingJob`` is called, after which nothing more is written. Event timestamps are the real times
  at which the emulated moments happen. ``training_log_lines`` gives a job's lines, and
  ``SageMakerLifecycle.task_log_lines`` the lines as the deferred wait prints them;
- endpoints: CreateEndpoint -> ``Creating`` for ``seconds`` -> ``InService`` or ``Failed`` with
  ``FailureReason``; UpdateEndpoint -> ``Updating`` (still on the old config) -> ``InService`` on the new
  config, or ``RolledBack``: ``InService`` on the old ``EndpointConfigName`` with a ``FailureReason``;
- guarded updates (UpdateEndpoint with a blue/green ``DeploymentConfig``; ``LastDeploymentConfig``
  then shows it): the new fleet is provisioned for ``seconds``, then traffic shifts as the
  TrafficRoutingConfiguration says, the endpoint ``Updating`` throughout: ALL_AT_ONCE 100% then one
  baking period (WaitIntervalInSeconds); CANARY the canary's CAPACITY_PERCENT, a baking period, then
  100%; LINEAR one step of LinearStepSize after another, each followed by a baking period; then
  TerminationWaitInSeconds before ``InService`` on the new config. ``traffic(endpoint)`` is the share on
  the new fleet now, ``deployment_events`` what each deployment did, in emulated seconds. Alarms of the
  AutoRollbackConfiguration are watched from the first shift to the end: one in ``ALARM`` in moto's
  CloudWatch then (a test's SetAlarmState, or ``endpoint_update(alarm_fires_after=...)``, which puts the
  deployment's first alarm, or ``alarm_name``, in ALARM at that emulated second as CloudWatch would)
  rolls the update back: ``RollingBack`` for ``rollback_seconds``, then ``InService`` on the old config
  with a ``FailureReason`` naming the alarm (its wording is assumed; SageMaker's is not documented). An
  UpdateEndpoint naming an alarm that does not exist is refused (ValidationException; also assumed);
- faults per operation (``"<service>:<Operation>"`` as in botocore, or ``"*"``): ``throttle``
  (ThrottlingException, HTTP 400; S3: SlowDown, HTTP 503), ``internal`` (InternalFailure, HTTP 500), ``reset`` (the TCP
  connection is closed without an answer), ``latency`` (``latency_seconds`` added before the answer),
  ``lost`` (processed, answer lost: the local AWS performs the operation, then the connection is closed
  without an answer, as when a load balancer drops it after the service acted; botocore then sends the
  same request again), for the next ``count`` calls or with ``probability`` (seeded, so a test is
  repeatable). Error bodies are in the service's protocol (JSON ``__type``, rest-json
  ``x-amzn-ErrorType``, XML ``<Code>``). S3 is throttled as S3 does it: 503 ``SlowDown``.
  Faults apply only to the product's calls: requests from ``LocalAws.client()`` (a test looking into an
  account, marked by moto's account header) pass untouched. ``injected`` logs every fault served, and
  ``lost_answers`` the HTTP status of each answer a ``lost`` fault withheld;
- what a request sent twice meets, as AWS answers it (moto itself accepts most repeats and overwrites or
  duplicates): CreateTrainingJob of an existing name answers ``ResourceInUse``; CreateModel,
  CreateEndpointConfig and CreateEndpoint ``ValidationException: Cannot create already existing ...``;
  API Gateway CreateResource of a path its parent already has, PutMethod of an existing method and
  PutMethodResponse of an existing status code answer ``ConflictException`` (AWS's wording); so do
  CreateUsagePlanKey of a key the plan holds and UpdateUsagePlan adding a stage the plan names (AWS
  refuses both; its exact code and wording there are assumed). CreateRestApi, CreateUsagePlan,
  CreateApiKey and CreateDeployment make another one, as in AWS. While an endpoint is Updating,
  DescribeEndpoint shows the config being deployed in ``PendingDeploymentSummary``;
- the model registry as SageMaker keeps it (``_patch_model_registry``): CreateModelPackage with a
  ``ClientToken`` already used answers the version it made (moto registers another), and
  UpdateModelPackage keeps the version's ``CustomerMetadataProperties`` unless it sends new ones (moto
  drops them).

- batch transform jobs (``transform(seconds, outcome, failure_reason, stop_seconds)``): CreateTransformJob
  of an existing name answers ``ResourceInUse`` (as CreateTrainingJob; SageMaker's code here is assumed);
  ``InProgress`` for ``seconds``, then ``Completed``, ``Failed`` with ``FailureReason`` or ``Stopped``;
  ``StopTransformJob`` (added; moto lacks it) -> ``Stopping`` for ``stop_seconds`` -> ``Stopped``. A
  job whose input prefix holds no object fails, as SageMaker does; a Completed job writes one
  ``<input key>.out`` per input object under its output prefix (one line ``<n> records scored`` per
  object, n its lines), so a user sees results;

- hyperparameter tuning jobs (``tuning(seconds, outcome, failure_reason, stop_seconds,
  objective_values=...)``): their training jobs complete over ``seconds`` and exist in the account, the
  best one is reported, StopHyperParameterTuningJob is added; see tests/support/sagemaker_tuning.

What it does not emulate: billing or instance capacity, CloudWatch metrics of a job, a training log's
real content or size, CloudWatch's ingestion delay (a line is readable as soon as it is due),
``MaxRuntimeInSeconds`` (a job never times out by itself), warm pools, spot capacity itself (no
``MaxWaitTimeExceeded``, no checkpoint objects written to S3, no log lines for an interruption, metrics
parsed from the log by the definitions),
endpoint ``SystemUpdating``/``OutOfService``/``UpdateRollbackFailed``, auto-scaling, alarms evaluating
metrics (an alarm changes state only when a test or the script sets it), INSTANCE_COUNT capacity sizes
(read as percentages), rolling updates (RollingUpdatePolicy), MaximumExecutionTimeoutInSeconds, the real order in which
SageMaker fills SecondaryStatusTransitions, per-account or per-region throttling quotas (a fault hits
whichever caller makes the call), and faults inside a response stream (a fault is the whole response).
Without an installed lifecycle the local AWS keeps moto's instant behaviour.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from tests.support.local_aws import LocalAws

_ACTIVE: SageMakerLifecycle | None = None
_LOCK = threading.Lock()

TRAINING_OUTCOMES = ("Completed", "Failed", "Stopped")
ENDPOINT_OUTCOMES = ("InService", "Failed", "RolledBack")
FAULTS = ("throttle", "internal", "reset", "latency", "lost")
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_LOG_EPOCHS = 3
TRAINING_LOG_STARTS = 0.1  # of the scripted seconds: the Downloading transition creates the streams
SIGTERM_LINE = "Received SIGTERM; training stopped"


@dataclass
class TrainingScript:
    seconds: float = 0.0
    outcome: str = "Completed"
    failure_reason: str = ""
    stop_seconds: float = 5.0
    # Managed spot (a job sent with EnableManagedSpotTraining): interruptions, each from SPOT_INTERRUPTED_AT
    # of the scripted seconds for SPOT_INTERRUPTED_FOR of them, and the share of the training seconds not
    # billed (BillableTimeInSeconds = TrainingTimeInSeconds * (1 - spot_saving)).
    interruptions: int = 0
    spot_saving: float = 0.6
    # FinalMetricDataList of a Completed job (name -> value); None keeps moto's own (train:progress).
    metrics: dict[str, float] | None = None


SPOT_INTERRUPTED_AT = 0.4
SPOT_INTERRUPTED_FOR = 0.1


@dataclass
class EndpointScript:
    seconds: float = 0.0
    outcome: str = "InService"
    failure_reason: str = ""
    # A guarded update's alarm goes into ALARM this many emulated seconds after UpdateEndpoint.
    alarm_fires_after: float | None = None
    alarm_name: str | None = None  # None: the deployment's first alarm
    rollback_seconds: float = 0.0


@dataclass
class FaultRule:
    operation: str
    kind: str
    count: int | None = 1
    probability: float | None = None
    latency_seconds: float = 2.0

    def matches(self, operation: str) -> bool:
        return self.operation in ("*", operation)


@dataclass
class _Job:
    created: float
    script: TrainingScript
    stop_requested: float | None = None
    wall_created: float = field(default_factory=time.time)
    account: str = ""
    region: str = ""
    instance_count: int = 1
    logged: int = 0  # entries of the log script written so far


def _log_script(
    job_name: str, host: str, instance_count: int, outcome: str, failure_reason: str
) -> list[tuple[float, list[str]]]:
    """(fraction of the scripted seconds, the lines one instance writes together then)."""
    ends = {
        "Completed": "Training completed; model artifacts saved to /opt/ml/model",
        "Failed": f"Training failed: {failure_reason or 'no reason given'}",
        "Stopped": SIGTERM_LINE,
    }
    epochs = [
        (
            0.2 + 0.6 * k / TRAINING_LOG_EPOCHS,
            [
                f"epoch {k}/{TRAINING_LOG_EPOCHS}: train-loss={0.62 / k:.4f}",
                f"epoch {k}/{TRAINING_LOG_EPOCHS}: validation-auc={0.70 + 0.06 * k:.4f}",
            ],
        )
        for k in range(1, TRAINING_LOG_EPOCHS + 1)
    ]
    return [
        (
            TRAINING_LOG_STARTS,
            [
                f"Training job {job_name} started on {host} of {instance_count} host(s); downloading input data"
            ],
        ),
        (0.2, ["Input data downloaded; training started"]),
        *epochs,
        (1.0, [ends[outcome]]),
    ]


def training_log_lines(
    job_name: str, instance_count: int = 1, outcome: str = "Completed", failure_reason: str = ""
) -> dict[str, list[str]]:
    """Each host's (``algo-<n>``) training log lines for a job that ran its script to its end."""
    return {
        f"algo-{n}": [
            line
            for _, lines in _log_script(job_name, f"algo-{n}", instance_count, outcome, failure_reason)
            for line in lines
        ]
        for n in range(1, instance_count + 1)
    }


@dataclass
class _EndpointChange:
    started: float
    script: EndpointScript
    kind: str  # create | update
    old_config: str | None = None
    old_variants: Any = None
    new_config: str | None = None
    new_variants: Any = None
    deployment: dict[str, Any] | None = None  # a guarded update's DeploymentConfig
    wall_started: float = field(default_factory=time.time)
    account: str = ""
    region: str = ""
    fired: bool = False
    rolled_back_at: float | None = None
    tripped: list[str] = field(default_factory=list)


def deployment_timeline(
    provision_seconds: float, deployment: dict[str, Any]
) -> tuple[list[tuple[float, int]], float]:
    """A guarded update's traffic shifts (emulated second, percent on the new fleet) and when it ends."""
    policy = deployment["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    bake = float(routing["WaitIntervalInSeconds"])
    end_wait = float(policy.get("TerminationWaitInSeconds", 0))
    start = provision_seconds
    if routing["Type"] == "CANARY":
        share = int(routing["CanarySize"]["Value"])
        return [(start, share), (start + bake, 100)], start + bake + end_wait
    if routing["Type"] == "LINEAR":
        step = int(routing["LinearStepSize"]["Value"])
        steps = -(-100 // step)
        shifts = [(start + i * bake, min(100, (i + 1) * step)) for i in range(steps)]
        return shifts, start + steps * bake + end_wait
    return [(start, 100)], start + bake + end_wait


def rollback_alarm_names(deployment: dict[str, Any] | None) -> list[str]:
    alarms = ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [str(a["AlarmName"]) for a in alarms]


@dataclass
class SageMakerLifecycle:
    """The per-test script; see the module docstring."""

    time_scale: float = 1.0
    seed: int = 0
    training_script: TrainingScript = field(default_factory=TrainingScript)
    create_script: EndpointScript = field(default_factory=EndpointScript)
    update_script: EndpointScript = field(default_factory=EndpointScript)
    rules: list[FaultRule] = field(default_factory=list)
    injected: list[tuple[str, str]] = field(default_factory=list)
    lost_answers: list[tuple[str, int]] = field(default_factory=list)
    jobs: dict[str, _Job] = field(default_factory=dict)
    endpoints: dict[str, _EndpointChange] = field(default_factory=dict)
    # (endpoint, emulated seconds since its UpdateEndpoint, what happened) of each guarded update
    deployment_events: list[tuple[str, float, str]] = field(default_factory=list)
    transform_script: TransformScript = field(default_factory=lambda: TransformScript())
    transforms: dict[str, _Transform] = field(default_factory=dict)
    # Hyperparameter tuning jobs (tests/support/sagemaker_tuning): the script and each job's state.
    tuning_script: Any = None
    tunings: dict[str, Any] = field(default_factory=dict)
    # Ground Truth labeling jobs (tests/support/sagemaker_labeling): the next jobs' script.
    labeling_script: Any = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._started = time.monotonic()

    # --- scripting ---------------------------------------------------------------------------------
    def training(
        self,
        seconds: float = 0.0,
        outcome: str = "Completed",
        failure_reason: str = "",
        stop_seconds: float = 5.0,
        *,
        interruptions: int = 0,
        spot_saving: float = 0.6,
        metrics: dict[str, float] | None = None,
    ) -> SageMakerLifecycle:
        if outcome not in TRAINING_OUTCOMES:
            raise ValueError(f"outcome must be one of {TRAINING_OUTCOMES}")
        if interruptions * SPOT_INTERRUPTED_FOR > 1 - SPOT_INTERRUPTED_AT:
            raise ValueError("too many interruptions for one job")
        self.training_script = TrainingScript(
            seconds, outcome, failure_reason, stop_seconds, interruptions, spot_saving, metrics
        )
        return self

    def endpoint_create(
        self, seconds: float = 0.0, outcome: str = "InService", failure_reason: str = ""
    ) -> SageMakerLifecycle:
        if outcome not in ("InService", "Failed"):
            raise ValueError("a create ends InService or Failed")
        self.create_script = EndpointScript(seconds, outcome, failure_reason)
        return self

    def endpoint_update(
        self,
        seconds: float = 0.0,
        outcome: str = "InService",
        failure_reason: str = "",
        *,
        alarm_fires_after: float | None = None,
        alarm_name: str | None = None,
        rollback_seconds: float = 0.0,
    ) -> SageMakerLifecycle:
        if outcome not in ENDPOINT_OUTCOMES:
            raise ValueError(f"outcome must be one of {ENDPOINT_OUTCOMES}")
        self.update_script = EndpointScript(
            seconds, outcome, failure_reason, alarm_fires_after, alarm_name, rollback_seconds
        )
        return self

    def tuning(
        self,
        seconds: float = 0.0,
        outcome: str = "Completed",
        failure_reason: str = "",
        stop_seconds: float = 5.0,
        *,
        objective_values: tuple[float, ...] = (0.81, 0.92, 0.87),
    ) -> SageMakerLifecycle:
        """The next tuning jobs' script; see tests/support/sagemaker_tuning."""
        from tests.support.sagemaker_tuning import TUNING_OUTCOMES, TuningScript

        if outcome not in TUNING_OUTCOMES:
            raise ValueError(f"outcome must be one of {TUNING_OUTCOMES}")
        self.tuning_script = TuningScript(
            seconds, outcome, failure_reason, stop_seconds, tuple(objective_values)
        )
        return self

    def labeling(
        self,
        seconds: float = 0.0,
        outcome: str = "Completed",
        failure_reason: str = "",
        stop_seconds: float = 5.0,
    ) -> SageMakerLifecycle:
        """The next labeling jobs' script; see tests/support/sagemaker_labeling."""
        from tests.support.sagemaker_labeling import LABELING_OUTCOMES, LabelingScript

        if outcome not in LABELING_OUTCOMES:
            raise ValueError(f"outcome must be one of {LABELING_OUTCOMES}")
        self.labeling_script = LabelingScript(seconds, outcome, failure_reason, stop_seconds)
        return self

    def transform(
        self,
        seconds: float = 0.0,
        outcome: str = "Completed",
        failure_reason: str = "",
        stop_seconds: float = 5.0,
    ) -> SageMakerLifecycle:
        """The next transform jobs' script (batch scoring); see the module docstring."""
        if outcome not in TRAINING_OUTCOMES:
            raise ValueError(f"outcome must be one of {TRAINING_OUTCOMES}")
        self.transform_script = TransformScript(seconds, outcome, failure_reason, stop_seconds)
        return self

    def traffic(self, endpoint_name: str) -> int | None:
        """The percent of traffic on the new fleet of a guarded update in progress now (None: none is)."""
        with _LOCK:
            change = self.endpoints.get(endpoint_name)
            if change is None or change.deployment is None:
                return None
            elapsed = self.now() - change.started
            if change.rolled_back_at is not None and elapsed >= change.rolled_back_at:
                return 0
            shifts, _ = deployment_timeline(change.script.seconds, change.deployment)
            return max((share for at, share in shifts if at <= elapsed), default=0)

    def fault(
        self,
        operation: str,
        kind: str,
        *,
        count: int | None = 1,
        probability: float | None = None,
        latency_seconds: float = 2.0,
    ) -> SageMakerLifecycle:
        if kind not in FAULTS:
            raise ValueError(f"kind must be one of {FAULTS}")
        self.rules.append(
            FaultRule(operation, kind, None if probability else count, probability, latency_seconds)
        )
        return self

    def now(self) -> float:
        """Emulated seconds since the lifecycle was created."""
        return (time.monotonic() - self._started) * self.time_scale

    @contextlib.contextmanager
    def installed(self, aws: LocalAws) -> Iterator[SageMakerLifecycle]:
        global _ACTIVE
        _patch_moto()
        with _LOCK:
            _ACTIVE = self
        aws.request_hook = self._on_request
        try:
            yield self
        finally:
            aws.request_hook = None
            with _LOCK:
                _ACTIVE = None

    # --- faults ------------------------------------------------------------------------------------
    def _on_request(self, environ: dict[str, Any]) -> Callable[..., Any] | None:
        """A WSGI app answering with the fault, or None to let moto answer."""
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID") or environ.get("PATH_INFO", "").startswith("/moto-api"):
            return None
        service, operation, protocol = identify_operation(environ)
        name = f"{service}:{operation}"
        with _LOCK:
            rule = next((r for r in self.rules if r.matches(name) and self._fires(r)), None)
            if rule is None:
                return None
            self.injected.append((name, rule.kind))
        if rule.kind == "latency":
            time.sleep(rule.latency_seconds)
            return None
        if rule.kind == "reset":
            return _reset_app
        if rule.kind == "lost":
            return self._lost_answer_app(name)
        if rule.kind == "internal":
            code, status = "InternalFailure", 500
        elif service == "s3":
            code, status = "SlowDown", 503  # how S3 throttles (and a HEAD answer has no body to name it)
        else:
            code, status = "ThrottlingException", 400
        return _error_app(protocol, code, status, f"injected by the test's fault plan ({rule.kind})")

    def _lost_answer_app(self, name: str) -> Callable[..., Any]:
        """Let the local AWS act on the request, then drop the connection instead of answering."""

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            statuses: list[str] = []

            def withheld(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
                statuses.append(status)
                return lambda data: None

            answer = _moto_app()(environ, withheld)
            try:
                for _ in answer:  # the whole answer is produced, so the operation has been performed
                    pass
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
            with _LOCK:
                self.lost_answers.append((name, int(statuses[0].split()[0]) if statuses else 0))
            return _reset_app(environ, start_response)

        return app

    def _fires(self, rule: FaultRule) -> bool:
        if rule.probability is not None:
            return self._random.random() < rule.probability
        if rule.count is None or rule.count <= 0:
            return False
        rule.count -= 1
        return True

    # --- state machine, called from the patched moto backend ---------------------------------------
    def advance_training(self, job: Any) -> None:
        state = self.jobs.setdefault(job.training_job_name, _Job(self.now(), self.training_script))
        _, _, _, state.region, state.account, _ = job.arn.split(":", 5)
        state.instance_count = int((job.resource_config or {}).get("InstanceCount", 1))
        script, elapsed = state.script, self.now() - state.created
        created = job.creation_time
        transitions = [("Starting", "Preparing the instances for training")]
        if state.stop_requested is not None:
            stopped = self.now() - state.stop_requested >= script.stop_seconds
            status, secondary = ("Stopped", "Stopped") if stopped else ("Stopping", "Stopping")
            failure = ""
        elif elapsed < script.seconds:
            status = "InProgress"
            secondary = "Starting" if elapsed < script.seconds * 0.1 else "Downloading"
            if elapsed >= script.seconds * 0.2:
                secondary = "Training"
            failure = ""
        else:
            status = script.outcome
            secondary = {"Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped"}[status]
            failure = script.failure_reason if status == "Failed" else ""
        for name, message in (
            ("Downloading", "Downloading input data"),
            ("Training", "Training image download completed. Training in progress."),
            (secondary, f"Training job {secondary.lower()}"),
        ):
            if name in ("Downloading", "Training") and _order(secondary) < _order(name):
                continue
            if (name, message) not in transitions and name not in [t[0] for t in transitions]:
                transitions.append((name, message))
        spot = bool(getattr(job, "enable_managed_spot_training", False))
        if spot and script.interruptions and state.stop_requested is None:
            secondary, transitions = _spot_transitions(script, elapsed, secondary, transitions)
        job.training_job_status = status
        job.secondary_status = secondary
        job.failure_reason = failure or None
        job.secondary_status_transitions = [
            {"Status": name, "StartTime": created, "StatusMessage": message} for name, message in transitions
        ]
        if status == "Completed":
            job.training_time_in_seconds = int(script.seconds)
            job.billable_time_in_seconds = (
                int(script.seconds * (1 - script.spot_saving)) if spot else int(script.seconds)
            )
            if script.metrics is not None:
                job.final_metric_data_list = [
                    {"MetricName": name, "Value": float(value), "Timestamp": created}
                    for name, value in script.metrics.items()
                ]
        self.write_training_logs(job.training_job_name, state)

    # --- training logs, written into moto's CloudWatch Logs as they fall due --------------------------
    def _due_log_entries(self, name: str, state: _Job, host: str) -> list[tuple[float, list[str]]]:
        script = state.script
        entries = [
            (fraction * script.seconds, lines)
            for fraction, lines in _log_script(
                name, host, state.instance_count, script.outcome, script.failure_reason
            )
        ]
        if state.stop_requested is not None:
            stopped_at = state.stop_requested - state.created
            entries = [e for e in entries if e[0] <= stopped_at]
            if entries:
                entries.append((stopped_at, [SIGTERM_LINE]))
        elapsed = self.now() - state.created
        return [e for e in entries if e[0] <= elapsed]

    def _stream_name(self, name: str, state: _Job, n: int) -> str:
        started = state.wall_created + TRAINING_LOG_STARTS * state.script.seconds / self.time_scale
        return f"{name}/algo-{n}-{int(started)}"

    def write_training_logs(self, name: str, state: _Job) -> None:
        """Append the lines of ``name`` that fell due since the last call to its streams (under _LOCK)."""
        from moto.logs.models import logs_backends
        from moto.sagemaker.models import sagemaker_backends

        if not state.account or name not in sagemaker_backends[state.account][state.region].training_jobs:
            return  # not seen by the patched backend yet, or gone (the local AWS was reset)
        if len(self._due_log_entries(name, state, "algo-1")) <= state.logged:
            return  # every instance writes the same number of lines at the same times
        due = {n: self._due_log_entries(name, state, f"algo-{n}") for n in range(1, state.instance_count + 1)}
        backend = logs_backends[state.account][state.region]
        if TRAINING_LOG_GROUP not in backend.groups:
            backend.create_log_group(TRAINING_LOG_GROUP, tags={})
        for n, entries in due.items():
            stream = self._stream_name(name, state, n)
            backend.ensure_log_stream(TRAINING_LOG_GROUP, stream)
            events = [
                {"timestamp": int((state.wall_created + at / self.time_scale) * 1000), "message": line}
                for at, lines in entries[state.logged :]
                for line in lines
            ]
            backend.put_log_events(TRAINING_LOG_GROUP, stream, events)
        state.logged = len(due[1])

    def write_all_training_logs(self, account: str, region: str, stream: str | None = None) -> None:
        """Before a read of the account's logs: the lines of the job that ``stream`` (a stream name or
        prefix, ``<job>/...``) belongs to, or of every job when the read names no stream."""
        job = stream.split("/", 1)[0] if stream else None
        for name, state in self.jobs.items():
            if (state.account, state.region) == (account, region) and job in (None, name):
                self.write_training_logs(name, state)

    def task_log_lines(self, name: str) -> list[str]:
        """The lines of job ``name`` written so far, as the deferred training wait prints them: as they
        are for one instance; ``[algo-<n>-<epoch seconds>] <line>`` (the stream name after the job name)
        for several. Stream by stream; the wait interleaves them by time."""
        with _LOCK:
            state = self.jobs[name]
            self.write_training_logs(name, state)
            lines = []
            for n in range(1, state.instance_count + 1):
                stream = self._stream_name(name, state, n).removeprefix(f"{name}/")
                for _, entry in self._due_log_entries(name, state, f"algo-{n}"):
                    lines += [f"[{stream}] {line}" if state.instance_count > 1 else line for line in entry]
        return lines

    def stop_training(self, job: Any) -> None:
        self.advance_training(job)
        if job.training_job_status not in ("InProgress", "Stopping"):
            from moto.sagemaker.exceptions import ValidationError

            raise ValidationError(
                message=f"The request was rejected because the training job is in status "
                f"{job.training_job_status}."
            )
        state = self.jobs[job.training_job_name]
        if state.stop_requested is None:
            state.stop_requested = self.now()
        self.advance_training(job)

    def advance_endpoint(self, endpoint: Any) -> None:
        change = self.endpoints.get(endpoint.endpoint_name)
        if change is None:
            return
        if change.deployment is not None:
            self._advance_guarded(endpoint, change)
            return
        done = self.now() - change.started >= change.script.seconds
        if not done:
            endpoint.endpoint_status = "Creating" if change.kind == "create" else "Updating"
            return
        endpoint.pending_deployment_summary = None
        outcome = change.script.outcome
        if outcome == "RolledBack":
            endpoint.endpoint_status = "InService"
        else:
            endpoint.endpoint_status = outcome
            if change.kind == "update":
                endpoint.endpoint_config_name = change.new_config
                endpoint.production_variants = change.new_variants
        endpoint.failure_reason = change.script.failure_reason if outcome != "InService" else None
        del self.endpoints[endpoint.endpoint_name]

    def _advance_guarded(self, endpoint: Any, change: _EndpointChange) -> None:
        """A blue/green update with traffic shifting and alarm rollback (see the module docstring)."""
        assert change.deployment is not None
        elapsed = self.now() - change.started
        shifts, ends = deployment_timeline(change.script.seconds, change.deployment)
        if change.rolled_back_at is None and elapsed >= change.script.seconds:
            tripped = self._tripped(change, min(elapsed, ends))
            if tripped is not None:
                change.rolled_back_at, change.tripped = tripped
        name = endpoint.endpoint_name
        if change.rolled_back_at is not None:
            if elapsed < change.rolled_back_at + change.script.rollback_seconds:
                endpoint.endpoint_status = "RollingBack"
                return
            for at, share in shifts:
                if at <= change.rolled_back_at:
                    self.deployment_events.append((name, at, f"{share}% on the new fleet"))
            self.deployment_events.append(
                (name, change.rolled_back_at, f"rolled back: {', '.join(change.tripped)} in ALARM")
            )
            endpoint.endpoint_status = "InService"
            endpoint.pending_deployment_summary = None
            endpoint.failure_reason = (
                f"Deployment rolled back: CloudWatch alarm(s) {', '.join(change.tripped)} went into ALARM "
                "state while the new fleet was baking."
            )
            del self.endpoints[name]
            return
        if elapsed < ends:
            endpoint.endpoint_status = "Updating"
            return
        self.deployment_events += [(name, at, f"{share}% on the new fleet") for at, share in shifts]
        self.deployment_events.append((name, ends, "old fleet terminated"))
        endpoint.pending_deployment_summary = None
        endpoint.endpoint_status = "InService"
        endpoint.endpoint_config_name = change.new_config
        endpoint.production_variants = change.new_variants
        endpoint.failure_reason = None
        del self.endpoints[name]

    def _tripped(self, change: _EndpointChange, until: float) -> tuple[float, list[str]] | None:
        """(when, which alarms) the first of the deployment's alarms went into ALARM between the first
        shift and ``until`` (emulated seconds since UpdateEndpoint), or None."""
        from moto.cloudwatch.models import cloudwatch_backends

        names = rollback_alarm_names(change.deployment)
        if not names:
            return None
        alarms = cloudwatch_backends[change.account][change.region].alarms
        script = change.script
        fires = script.alarm_fires_after
        if fires is not None and not change.fired and fires <= until:
            change.fired = True
            scripted = script.alarm_name or names[0]
            if scripted in alarms:
                alarms[scripted].update_state(
                    "Threshold Crossed: emulated by the test's lifecycle", "{}", "ALARM"
                )
                if scripted in names:
                    return max(fires, script.seconds), [scripted]
        found: list[tuple[float, str]] = []
        for name in names:
            alarm = alarms.get(name)
            if alarm is None or alarm.state_value != "ALARM":
                continue
            wall = alarm.state_updated_timestamp.replace(tzinfo=datetime.UTC).timestamp()
            at = max(script.seconds, (wall - change.wall_started) * self.time_scale)
            if at <= until:
                found.append((at, name))
        if not found:
            return None
        first = min(at for at, _ in found)
        return first, [name for at, name in found if at == first]


def _spot_transitions(
    script: TrainingScript, elapsed: float, secondary: str, transitions: list[tuple[str, str]]
) -> tuple[str, list[tuple[str, str]]]:
    """A spot job's SecondaryStatus and transitions: Training -> Interrupted -> Training per interruption."""
    if secondary in ("Starting", "Downloading"):
        return secondary, transitions
    ended = transitions[-1] if secondary != "Training" else None
    base = [t for t in transitions if t[0] in ("Starting", "Downloading", "Training")]
    for k in range(script.interruptions):
        start = script.seconds * (SPOT_INTERRUPTED_AT + k * SPOT_INTERRUPTED_FOR)
        if elapsed < start:
            break
        base.append(("Interrupted", "The spot instance was reclaimed; waiting for spot capacity"))
        if elapsed < start + script.seconds * SPOT_INTERRUPTED_FOR:
            return "Interrupted", base
        base.append(("Training", "Training resumed from the last checkpoint"))
    if ended is not None:
        base.append(ended)
    return secondary, base


def _order(secondary: str) -> int:
    order = ["Starting", "Downloading", "Training"]
    return order.index(secondary) if secondary in order else len(order)


def active() -> SageMakerLifecycle | None:
    return _ACTIVE


_PATCHED = False


def _patch_moto() -> None:
    """Wrap moto's SageMaker backend so the active lifecycle decides states; idempotent."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.core.responses import ActionResult
    from moto.logs.models import LogsBackend
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    backend: Any = SageMakerModelBackend
    original_describe_job = backend.describe_training_job
    original_create_job = backend.create_training_job
    original_create_endpoint = backend.create_endpoint
    original_create_model = backend.create_model
    original_create_endpoint_config = backend.create_endpoint_config
    original_update_endpoint = backend.update_endpoint
    original_describe_endpoint = backend.describe_endpoint

    def refuse_existing(self: Any, kind: str, name: str, existing: Any) -> None:
        """SageMaker refuses a create of a name that exists (moto overwrites it)."""
        if active() is None or name not in existing:
            return
        resource = {"model": "model", "endpoint configuration": "endpoint-config", "endpoint": "endpoint"}
        arn = f"arn:aws:sagemaker:{self.region_name}:{self.account_id}:{resource[kind]}/{name}"
        raise ValidationError(message=f'Cannot create already existing {kind} "{arn}".')

    def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("training_job_name", args[0] if args else None)
        if active() is not None and name in self.training_jobs:
            raise ResourceInUseException(
                message="Training job names must be unique within an AWS account and region, and a training "
                f"job with this name already exists (arn:aws:sagemaker:{self.region_name}:{self.account_id}:"
                f"training-job/{name})"
            )
        spec = kwargs.get("algorithm_specification") or {}
        sent_metrics = copy.deepcopy(spec.get("MetricDefinitions"))
        job = original_create_job(self, *args, **kwargs)
        life = active()
        if life is not None:  # moto replaces the definitions sent with its own: keep what was sent
            job.algorithm_specification.pop("MetricDefinitions", None)
            if sent_metrics:
                job.algorithm_specification["MetricDefinitions"] = sent_metrics
        if life is not None:
            with _LOCK:
                life.jobs[job.training_job_name] = _Job(life.now(), life.training_script)
                life.advance_training(job)
        return job

    def describe_training_job(self: Any, training_job_name: str) -> Any:
        life, job = active(), self.training_jobs.get(training_job_name)
        if life is not None and job is not None:
            with _LOCK:
                life.advance_training(job)
        return original_describe_job(self, training_job_name)

    def stop_training_job(self: Any, training_job_name: str) -> None:
        job = self.training_jobs.get(training_job_name)
        if job is None:
            raise ValidationError(message=f"Could not find training job '{training_job_name}'.")
        life = active()
        if life is None:
            job.training_job_status, job.secondary_status = "Stopped", "Stopped"
            return
        with _LOCK:
            life.stop_training(job)

    def stop_training_job_response(self: Any) -> Any:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return ActionResult({})

    def create_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_existing(self, "model", kwargs.get("model_name", args[0] if args else ""), self._models)
        return original_create_model(self, *args, **kwargs)

    def create_endpoint_config(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("endpoint_config_name", args[0] if args else "")
        refuse_existing(self, "endpoint configuration", name, self.endpoint_configs)
        return original_create_endpoint_config(self, *args, **kwargs)

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        refuse_existing(self, "endpoint", endpoint_name, self.endpoints)
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        life = active()
        if life is not None:
            with _LOCK:
                life.endpoints[endpoint_name] = _EndpointChange(life.now(), life.create_script, "create")
                life.advance_endpoint(endpoint)
        return endpoint

    def update_endpoint(
        self: Any, endpoint_name: str, endpoint_config_name: str, deployment_config: Any = None
    ) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        existing = self.endpoints.get(endpoint_name)
        if existing is not None and existing.endpoint_status != "InService":
            raise ValidationError(
                message=f"Cannot update in-progress endpoint "
                f'"arn:aws:sagemaker:{self.region_name}:{self.account_id}:endpoint/{endpoint_name}".'
            )
        if active() is not None and deployment_config:
            alarms = cloudwatch_backends[self.account_id][self.region_name].alarms
            missing = [n for n in rollback_alarm_names(deployment_config) if n not in alarms]
            if missing:
                raise ValidationError(message=f"The CloudWatch alarm(s) {', '.join(missing)} do not exist.")
        old = (existing.endpoint_config_name, existing.production_variants) if existing else (None, None)
        endpoint = original_update_endpoint(self, endpoint_name, endpoint_config_name)
        if deployment_config:
            endpoint.last_deployment_config = deployment_config
        life = active()
        if life is not None:
            with _LOCK:
                life.endpoints[endpoint_name] = _EndpointChange(
                    life.now(),
                    life.update_script,
                    "update",
                    old_config=old[0],
                    old_variants=old[1],
                    new_config=endpoint_config_name,
                    new_variants=endpoint.production_variants,
                    deployment=deployment_config or None,
                    account=self.account_id,
                    region=self.region_name,
                )
                # While Updating, SageMaker still reports the config being replaced, and the one being
                # deployed in PendingDeploymentSummary.
                endpoint.endpoint_config_name, endpoint.production_variants = old
                endpoint.pending_deployment_summary = {
                    "EndpointConfigName": endpoint_config_name,
                    "StartTime": endpoint.last_modified_time,
                }
                life.advance_endpoint(endpoint)
        return endpoint

    def describe_endpoint(self: Any, endpoint_name: str) -> Any:
        life, endpoint = active(), self.endpoints.get(endpoint_name)
        if life is not None and endpoint is not None:
            with _LOCK:
                life.advance_endpoint(endpoint)
        return original_describe_endpoint(self, endpoint_name)

    def reading_logs(original: Callable[..., Any]) -> Callable[..., Any]:
        """A CloudWatch Logs read that first writes the training log lines due by now."""

        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            life = active()
            stream = kwargs.get("log_stream_name") or kwargs.get("log_stream_name_prefix")
            with _LOCK:
                if life is not None:
                    life.write_all_training_logs(self.account_id, self.region_name, stream)
                return original(self, *args, **kwargs)

        return read

    for operation in ("describe_log_groups", "describe_log_streams", "get_log_events", "filter_log_events"):
        setattr(LogsBackend, operation, reading_logs(getattr(LogsBackend, operation)))
    backend.create_training_job = create_training_job
    backend.describe_training_job = describe_training_job
    backend.stop_training_job = stop_training_job
    backend.create_endpoint = create_endpoint
    backend.create_model = create_model
    backend.create_endpoint_config = create_endpoint_config
    _patch_apigateway()
    _patch_model_registry()
    _patch_transform()
    _patch_tuning()
    _patch_recommender()
    _patch_labeling()
    _patch_monitoring()
    backend.update_endpoint = update_endpoint
    backend.describe_endpoint = describe_endpoint

    def update_endpoint_response(self: Any) -> Any:
        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
            deployment_config=self._get_param("DeploymentConfig"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerResponse.update_endpoint = update_endpoint_response  # type: ignore[attr-defined]
    SageMakerResponse.stop_training_job = stop_training_job_response  # type: ignore[attr-defined]
    _PATCHED = True


def _patch_model_registry() -> None:
    """CreateModelPackage honours its ClientToken; UpdateModelPackage keeps the metadata it does not send.
    Only while a lifecycle is installed."""
    from moto.sagemaker.models import SageMakerModelBackend

    backend: Any = SageMakerModelBackend
    original_create = backend.create_model_package
    original_update = backend.update_model_package

    def create_model_package(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = kwargs.get("client_token")
        if active() is not None and token:
            for package in self.model_packages.values():
                if getattr(package, "client_token", None) == token:
                    return package.arn
        return original_create(self, *args, **kwargs)

    def update_model_package(self: Any, model_package_arn: str, *args: Any, **kwargs: Any) -> Any:
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, ""))
        kept = None if package is None else package.customer_metadata_properties
        arn = original_update(self, model_package_arn, *args, **kwargs)
        if (
            active() is not None
            and package is not None
            and kwargs.get("customer_metadata_properties") is None
        ):
            package.customer_metadata_properties = kept
        return arn

    backend.create_model_package = create_model_package
    backend.update_model_package = update_model_package


def _patch_apigateway() -> None:
    """API Gateway refuses what moto repeats: a second child of one path, method, method response,
    usage plan key or usage plan stage. Only while a lifecycle is installed."""
    from moto.apigateway.exceptions import ConflictException
    from moto.apigateway.models import APIGatewayBackend

    backend: Any = APIGatewayBackend
    original_create_resource = backend.create_resource
    original_put_method = backend.put_method
    original_put_method_response = backend.put_method_response
    original_create_usage_plan_key = backend.create_usage_plan_key
    original_update_usage_plan = backend.update_usage_plan

    def create_resource(self: Any, function_id: str, parent_resource_id: str, path_part: str) -> Any:
        if active() is not None and path_part:
            siblings = self.get_rest_api(function_id).resources.values()
            if any(r.parent_id == parent_resource_id and r.path_part == path_part for r in siblings):
                raise ConflictException(
                    f"Another resource with the same parent already has this name: {path_part}"
                )
        return original_create_resource(self, function_id, parent_resource_id, path_part)

    def put_method(
        self: Any, function_id: str, resource_id: str, method_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        resource = self.get_resource(function_id, resource_id)
        if active() is not None and method_type in resource.resource_methods:
            raise ConflictException("Method already exists for this resource")
        return original_put_method(self, function_id, resource_id, method_type, *args, **kwargs)

    def put_method_response(
        self: Any, function_id: str, resource_id: str, method_type: str, response_code: str, *args: Any
    ) -> Any:
        method = self.get_method(function_id, resource_id, method_type)
        if active() is not None and str(response_code) in method.method_responses:
            raise ConflictException("Response already exists for this resource")
        return original_put_method_response(self, function_id, resource_id, method_type, response_code, *args)

    def create_usage_plan_key(self: Any, usage_plan_id: str, payload: dict[str, Any]) -> Any:
        if active() is not None and payload.get("keyId") in self.usage_plan_keys.get(usage_plan_id, {}):
            raise ConflictException(f"Usage plan {usage_plan_id} already has API key {payload.get('keyId')}")
        return original_create_usage_plan_key(self, usage_plan_id, payload)

    def update_usage_plan(self: Any, usage_plan_id: str, patch_operations: Any) -> Any:
        plan = self.usage_plans.get(usage_plan_id)
        if active() is not None and plan is not None:
            named = {f"{s['apiId']}:{s['stage']}" for s in plan.api_stages or []}
            for op in patch_operations or []:
                if op.get("op") == "add" and op.get("path") == "/apiStages" and op.get("value") in named:
                    raise ConflictException(
                        f"API stage {op['value']} is already in usage plan {usage_plan_id}"
                    )
        return original_update_usage_plan(self, usage_plan_id, patch_operations)

    backend.create_resource = create_resource
    backend.put_method = put_method
    backend.put_method_response = put_method_response
    backend.create_usage_plan_key = create_usage_plan_key
    backend.update_usage_plan = update_usage_plan


@cache
def _moto_app() -> Callable[..., Any]:
    """A WSGI app of moto's server over the same (process-wide) backends the local AWS serves."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


# --- identifying the operation of a raw request ----------------------------------------------------
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@cache
def _service_model(signing_name: str) -> Any:
    """The botocore model of a service by its signing name (the same as the service name for the
    services sagelift calls: sts, iam, s3, ecr, sagemaker, apigateway)."""
    import botocore.exceptions
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(signing_name)
    except botocore.exceptions.UnknownServiceError:
        return None


@cache
def _rest_routes(signing_name: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], int, str]]:
    model = _service_model(signing_name)
    routes = []
    for operation in model.operation_names:
        http = model.operation_model(operation).http
        path, _, query = http["requestUri"].partition("?")
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(path))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        keys = tuple(k.split("=")[0] for k in query.split("&") if k)
        shape = model.operation_model(operation).input_shape
        if shape is not None:  # required query members (ListParts' uploadId) also select the operation
            keys += tuple(
                str(member.serialization["name"])
                for name, member in shape.members.items()
                if member.serialization.get("location") == "querystring" and name in shape.required_members
            )
        routes.append((http["method"], re.compile(f"^{pattern}/?$"), keys, len(path), operation))
    return routes


_OPTIONAL = frozenset({"x-id"})


def identify_operation(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(service signing name, operation, protocol) of a signed AWS request, as far as it can tell."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    model = _service_model(service) if scope else None
    protocol = model.protocol if model is not None else "rest-xml"
    if protocol in ("query", "ec2"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode(errors="replace")).get("Action", ["Unknown"])[0]
        return service, action, protocol
    if model is None:
        return service, "Unknown", protocol
    # The path as sent: a label holding a "/" (TagResource's ARN) arrives as %2F, which PATH_INFO decodes.
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?", 1)[0]
    method, path = environ.get("REQUEST_METHOD", ""), raw or environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if service == "s3" and environ.get("HTTP_HOST", "").count(".") >= 1 and not path.startswith("/"):
        path = "/" + path
    # Query keys like ``tagging`` select the operation; fixed ones like ``x-id=GetObject`` may be absent.
    candidates = [
        (sum(k in query for k in keys), length, operation)
        for route_method, pattern, keys, length, operation in _rest_routes(service)
        if route_method == method
        and pattern.match(path)
        and all(k in query for k in keys if k not in _OPTIONAL)
    ]
    if not candidates:
        return service, f"{method} {path}", protocol
    return service, max(candidates)[2], protocol


def _error_app(protocol: str, code: str, status: int, message: str) -> Callable[..., Any]:
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Slow Down"}[status]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_id = "sagelift-fault-0000"
        headers = [("x-amzn-RequestId", request_id)]
        if protocol == "json":
            body = json.dumps({"__type": code, "message": message}).encode()
            headers.append(("Content-Type", "application/x-amz-json-1.1"))
        elif protocol == "rest-json":
            body = json.dumps({"message": message}).encode()
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        elif protocol == "rest-xml":
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            headers.append(("Content-Type", "application/xml"))
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers.append(("Content-Type", "text/xml"))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {reason}", headers)
        return [body]

    return app


def _reset_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        # SO_LINGER 0: close with RST, as a load balancer dropping the connection would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    raise ConnectionResetError("injected connection reset")


def count_resources(aws: LocalAws, account: str) -> dict[str, int]:
    """How many of each resource a run leaves in ``account``: what must not change on retries."""
    sm = aws.client("sagemaker", account)
    apigateway = aws.client("apigateway", account)
    apis = apigateway.get_rest_apis(limit=500)["items"]
    plans = apigateway.get_usage_plans(limit=500)["items"]
    return {
        "training_jobs": len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]),
        "models": len(sm.list_models(MaxResults=100)["Models"]),
        "endpoint_configs": len(sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]),
        "endpoints": len(sm.list_endpoints(MaxResults=100)["Endpoints"]),
        "rest_apis": len(apis),
        "api_resources": sum(
            len(apigateway.get_resources(restApiId=a["id"], limit=500)["items"]) for a in apis
        ),
        "api_stages": sum(len(apigateway.get_stages(restApiId=a["id"])["item"]) for a in apis),
        "usage_plans": len(plans),
        "usage_plan_stages": sum(len(p.get("apiStages") or []) for p in plans),
        "usage_plan_keys": sum(
            len(apigateway.get_usage_plan_keys(usagePlanId=p["id"], limit=500)["items"]) for p in plans
        ),
        "api_keys": len(apigateway.get_api_keys(limit=500)["items"]),
        "ecr_repositories": len(aws.client("ecr", account).describe_repositories()["repositories"]),
    }


def deployments_per_run(aws: LocalAws, account: str) -> dict[str, int]:
    """API Gateway deployments by description (sagelift names the run in it): one per run is expected.

    Kept apart from ``count_resources``: clearing expose_api deploys again, by design.
    """
    apigateway = aws.client("apigateway", account)
    counts: dict[str, int] = {}
    for api in apigateway.get_rest_apis(limit=500)["items"]:
        for deployment in apigateway.get_deployments(restApiId=api["id"], limit=500)["items"]:
            description = str(deployment.get("description", ""))
            counts[description] = counts.get(description, 0) + 1
    return counts


# --- batch transform jobs ----------------------------------------------------------------------------
@dataclass
class TransformScript:
    seconds: float = 0.0
    outcome: str = "Completed"
    failure_reason: str = ""
    stop_seconds: float = 5.0


@dataclass
class _Transform:
    created: float
    script: TransformScript
    stop_requested: float | None = None
    written: bool = False


def _s3_objects(account: str, uri: str) -> list[tuple[str, str, bytes]]:
    """(bucket, key, body) of every object under ``uri`` in the local AWS (in process)."""
    from moto.s3.models import s3_backends

    bucket_name, _, prefix = uri.removeprefix("s3://").partition("/")
    backend = s3_backends[account]["aws"]
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:  # no such bucket: nothing under the prefix
        return []
    out = []
    for key in list(bucket.keys.keys()):
        if key.startswith(prefix):
            obj = bucket.keys[key]
            out.append((bucket_name, key, bytes(obj.value)))
    return out


def _advance_transform(life: SageMakerLifecycle, job: Any, account: str) -> None:
    state = life.transforms.setdefault(job.transform_job_name, _Transform(life.now(), life.transform_script))
    elapsed = life.now() - state.created
    source = job.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
    inputs = _s3_objects(account, source)
    failure = ""
    if state.stop_requested is not None:
        stopped = life.now() - state.stop_requested >= state.script.stop_seconds
        status = "Stopped" if stopped else "Stopping"
    elif elapsed < state.script.seconds:
        status = "InProgress"
    elif state.script.outcome == "Completed" and not inputs:
        status, failure = (
            "Failed",
            f"ClientError: No S3 objects found under S3 URL given in input data source: '{source}'",
        )
    else:
        status = state.script.outcome
        failure = state.script.failure_reason if status == "Failed" else ""
    job.transform_job_status = status
    job.failure_reason = failure
    job.transform_end_time = utc_now() if status in TRAINING_OUTCOMES else None
    if status == "Completed" and not state.written:
        _write_transform_output(account, source, job.transform_output["S3OutputPath"], inputs)
        state.written = True


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _write_transform_output(
    account: str, source: str, output: str, inputs: list[tuple[str, str, bytes]]
) -> None:
    """One ``<input key>.out`` per input object under the output prefix, as SageMaker names them."""
    from moto.s3.models import s3_backends

    backend = s3_backends[account]["aws"]
    in_prefix = source.removeprefix("s3://").partition("/")[2]
    out_bucket, _, out_prefix = output.removeprefix("s3://").partition("/")
    if out_prefix and not out_prefix.endswith("/"):
        out_prefix += "/"
    for _, key, body in inputs:
        relative = key[len(in_prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
        records = len([line for line in body.splitlines() if line.strip()])
        backend.put_object(out_bucket, f"{out_prefix}{relative}.out", f"{records} records scored\n".encode())


def _patch_transform() -> None:
    """moto's transform jobs follow the active lifecycle: a fixed name, a status over time, stop."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    backend: Any = SageMakerModelBackend
    original_create = backend.create_transform_job
    original_describe = backend.describe_transform_job

    def create_transform_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("transform_job_name", args[0] if args else None)
        life = active()
        if life is not None and name in self.transform_jobs:
            raise ResourceInUseException(
                message=f"Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists (arn:aws:sagemaker:{self.region_name}:{self.account_id}:transform-job/{name})"
            )
        job = original_create(self, *args, **kwargs)
        if life is not None:
            with _LOCK:
                life.transforms[job.transform_job_name] = _Transform(life.now(), life.transform_script)
                _advance_transform(life, job, self.account_id)
        return job

    def describe_transform_job(self: Any, transform_job_name: str) -> Any:
        life, job = active(), self.transform_jobs.get(transform_job_name)
        if life is not None and job is not None:
            with _LOCK:
                _advance_transform(life, job, self.account_id)
        return original_describe(self, transform_job_name)

    def stop_transform_job(self: Any, transform_job_name: str) -> None:
        job = self.transform_jobs.get(transform_job_name)
        if job is None:
            raise ValidationError(message=f"Could not find transform job '{transform_job_name}'.")
        life = active()
        if life is None:
            job.transform_job_status = "Stopped"
            return
        with _LOCK:
            _advance_transform(life, job, self.account_id)
            if job.transform_job_status not in ("InProgress", "Stopping"):
                raise ValidationError(
                    message=f"The request was rejected because the transform job is in status "
                    f"{job.transform_job_status}."
                )
            state = life.transforms[transform_job_name]
            if state.stop_requested is None:
                state.stop_requested = life.now()
            _advance_transform(life, job, self.account_id)

    def stop_transform_job_response(self: Any) -> Any:
        self.sagemaker_backend.stop_transform_job(self._get_param("TransformJobName"))
        return ActionResult({})

    backend.create_transform_job = create_transform_job
    backend.describe_transform_job = describe_transform_job
    backend.stop_transform_job = stop_transform_job
    SageMakerResponse.stop_transform_job = stop_transform_job_response  # type: ignore[attr-defined]


def _patch_tuning() -> None:
    from tests.support.sagemaker_tuning import patch_tuning

    patch_tuning()


def _patch_recommender() -> None:
    from tests.support.sagemaker_recommender import patch_recommender

    patch_recommender()


def _patch_labeling() -> None:
    from tests.support.sagemaker_labeling import patch_labeling

    patch_labeling()


def _patch_monitoring() -> None:
    from tests.support.sagemaker_monitoring import patch_monitoring

    patch_monitoring()
