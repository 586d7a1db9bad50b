"""Hyperparameter tuning jobs for the local AWS: the tuning part of tests/support/sagemaker_lifecycle.

moto creates a tuning job ``Completed`` at once with a made-up best job (``FakeTrainingJobName``, which
DescribeTrainingJob does not know) and lacks StopHyperParameterTuningJob. With a lifecycle installed and
``SageMakerLifecycle.tuning(...)`` scripted, each DescribeHyperParameterTuningJob computes the job from the
emulated time since its creation:

- ``InProgress`` for ``seconds``: its training jobs complete one after another, evenly over that time
  (one per entry of ``objective_values``, in order), at most ``MaxParallelTrainingJobs`` of the rest
  ``InProgress`` (``TrainingJobStatusCounters``); then ``Completed``, ``Failed`` with ``FailureReason``
  (half of its jobs completed), or ``Stopped``;
- each completed training job exists in the account, named as SageMaker names them
  (``<tuning job>-<nnn>-<8 hex>``; the hex hashes the job's position, not random, so the same run on
  either engine names them alike), from the job's TrainingJobDefinition: its static hyperparameters plus
  the tuned ones (integer and continuous ranges stepped from min to max, categorical values in turn),
  ``Completed`` with its objective value in ``FinalMetricDataList`` and its artifact where SageMaker writes
  it (``<output>/<job>/output/model.tar.gz``);
- ``BestTrainingJob``: the completed job with the best value for the objective's direction, with its
  ``TunedHyperParameters`` and ``FinalHyperParameterTuningJobObjectiveMetric``; absent before one completes;
- ``StopHyperParameterTuningJob`` (added): ``Stopping`` for ``stop_seconds``, then ``Stopped``; stopping an
  ended job is a ValidationException, as for training jobs.

What it does not emulate: the search itself (the values tried are fixed steps, not Bayesian), training
jobs ``InProgress`` (only completed ones exist), early stopping, warm starts, the training log of the
tuning's jobs, ListTrainingJobsForHyperParameterTuningJob, and retries of failed training jobs.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

import tests.support.sagemaker_lifecycle as lifecycle

TUNING_OUTCOMES = ("Completed", "Failed", "Stopped")


@dataclass
class TuningScript:
    seconds: float = 0.0
    outcome: str = "Completed"
    failure_reason: str = ""
    stop_seconds: float = 5.0
    # The objective value each training job reports, in the order they complete.
    objective_values: tuple[float, ...] = (0.81, 0.92, 0.87)


@dataclass
class _Tuning:
    created: float
    script: TuningScript
    stop_requested: float | None = None
    children: list[str] = field(default_factory=list)  # training jobs created so far
    values: dict[str, float] = field(default_factory=dict)
    tuned: dict[str, dict[str, str]] = field(default_factory=dict)


def _tuned_values(config: dict[str, Any], i: int, n: int) -> dict[str, str]:
    ranges = config.get("ParameterRanges") or {}
    values: dict[str, str] = {}
    step = (i + 1) / (n + 1)
    for r in ranges.get("IntegerParameterRanges") or []:
        low, high = int(r["MinValue"]), int(r["MaxValue"])
        values[r["Name"]] = str(low + round((high - low) * step))
    for r in ranges.get("ContinuousParameterRanges") or []:
        low, high = float(r["MinValue"]), float(r["MaxValue"])
        values[r["Name"]] = f"{low + (high - low) * step:g}"
    for r in ranges.get("CategoricalParameterRanges") or []:
        values[r["Name"]] = str(r["Values"][i % len(r["Values"])])
    return values


def _child_name(tuning: str, i: int) -> str:
    return f"{tuning}-{i + 1:03d}-{hashlib.sha256(f'{i}'.encode()).hexdigest()[:8]}"


def _create_child(life: Any, backend: Any, job: Any, state: _Tuning, i: int, value: float) -> None:
    from moto.sagemaker.models import FakeTrainingJob

    definition = job.training_job_definition or {}
    config = job.hyper_parameter_tuning_job_config
    name = _child_name(job.hyper_parameter_tuning_job_name, i)
    tuned = _tuned_values(config, i, len(state.script.objective_values))
    spec = dict(definition.get("AlgorithmSpecification") or {})
    child = FakeTrainingJob(
        account_id=backend.account_id,
        region_name=backend.region_name,
        training_job_name=name,
        hyper_parameters={**(definition.get("StaticHyperParameters") or {}), **tuned},
        algorithm_specification=spec,
        role_arn=definition.get("RoleArn", ""),
        input_data_config=definition.get("InputDataConfig") or [],
        output_data_config=definition.get("OutputDataConfig") or {},
        resource_config=definition.get("ResourceConfig") or {},
        vpc_config=definition.get("VpcConfig") or {},
        stopping_condition=definition.get("StoppingCondition") or {},
        tags=list(job.tags or []),
        enable_network_isolation=bool(definition.get("EnableNetworkIsolation")),
        enable_inter_container_traffic_encryption=bool(
            definition.get("EnableInterContainerTrafficEncryption")
        ),
        enable_managed_spot_training=bool(definition.get("EnableManagedSpotTraining")),
        checkpoint_config=definition.get("CheckpointConfig") or {},
        debug_hook_config={},
        debug_rule_configurations=[],
        tensor_board_output_config={},
        experiment_config={},
    )
    child.algorithm_specification = spec  # moto puts its own MetricDefinitions in place of the sent ones
    backend.training_jobs[name] = child
    metric = config["HyperParameterTuningJobObjective"]["MetricName"]
    life.jobs[name] = lifecycle._Job(
        life.now(), lifecycle.TrainingScript(seconds=0.0, outcome="Completed", metrics={metric: value})
    )
    state.children.append(name)
    state.values[name] = value
    state.tuned[name] = tuned


def advance_tuning(life: Any, backend: Any, job: Any) -> None:
    """Set the job's status, counters and best job for the emulated time now (called under the lock)."""
    state = life.tunings.setdefault(
        job.hyper_parameter_tuning_job_name, _Tuning(life.now(), life.tuning_script or TuningScript())
    )
    script, elapsed = state.script, life.now() - state.created
    n = len(script.objective_values)
    config = job.hyper_parameter_tuning_job_config
    failure = ""
    if state.stop_requested is not None:
        stopped = life.now() - state.stop_requested >= script.stop_seconds
        status = "Stopped" if stopped else "Stopping"
        done = len(state.children)
    elif elapsed < script.seconds:
        status, done = "InProgress", min(n, int(n * elapsed / script.seconds))
    else:
        status = script.outcome
        done = {"Completed": n, "Failed": n // 2, "Stopped": len(state.children)}[status]
        failure = script.failure_reason if status == "Failed" else ""
    for i in range(len(state.children), done):
        _create_child(life, backend, job, state, i, script.objective_values[i])
    parallel = int(config["ResourceLimits"]["MaxParallelTrainingJobs"])
    running = min(parallel, n - len(state.children)) if status in ("InProgress", "Stopping") else 0
    job.hyper_parameter_tuning_job_status = status
    job.failure_reason = failure
    job.training_job_status_counters = {
        "Completed": len(state.children),
        "InProgress": running,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    job.objective_status_counters = {"Succeeded": len(state.children), "Pending": running, "Failed": 0}
    job.hyper_parameter_tuning_end_time = (
        datetime.datetime.now(datetime.UTC) if status in TUNING_OUTCOMES else None
    )
    job.best_training_job = _best(backend, job, state)
    job.OverallBestTrainingJob = None
    job.tuning_job_completion_details = None
    job.consumed_resources = None


def _best(backend: Any, job: Any, state: _Tuning) -> dict[str, Any] | None:
    if not state.values:
        return None
    objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
    pick = max if objective["Type"] == "Maximize" else min
    name = pick(state.children, key=lambda c: state.values[c])
    child = backend.training_jobs[name]
    return {
        "TrainingJobName": name,
        "TrainingJobArn": child.arn,
        "TuningJobName": job.hyper_parameter_tuning_job_name,
        "CreationTime": child.creation_time,
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": state.tuned[name],
        "FinalHyperParameterTuningJobObjectiveMetric": {
            "Type": objective["Type"],
            "MetricName": objective["MetricName"],
            "Value": state.values[name],
        },
        "ObjectiveStatus": "Succeeded",
    }


def patch_tuning() -> None:
    """Wrap moto's tuning calls so the active lifecycle decides states; add the stop. Called once by
    sagemaker_lifecycle._patch_moto."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    backend_class: Any = SageMakerModelBackend
    original_create = backend_class.create_hyper_parameter_tuning_job
    original_describe = backend_class.describe_hyper_parameter_tuning_job

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        arn = original_create(self, *args, **kwargs)
        life = lifecycle.active()
        name = kwargs.get("hyper_parameter_tuning_job_name", args[0] if args else "")
        if life is not None:
            with lifecycle._LOCK:
                life.tunings[name] = _Tuning(life.now(), life.tuning_script or TuningScript())
                advance_tuning(life, self, self.hyper_parameter_tuning_jobs[name])
        return arn

    def describe(self: Any, hyper_parameter_tuning_job_name: str) -> Any:
        life = lifecycle.active()
        job = self.hyper_parameter_tuning_jobs.get(hyper_parameter_tuning_job_name)
        if life is not None and job is not None:
            with lifecycle._LOCK:
                advance_tuning(life, self, job)
        return original_describe(self, hyper_parameter_tuning_job_name)

    def stop(self: Any, hyper_parameter_tuning_job_name: str) -> None:
        job = self.hyper_parameter_tuning_jobs.get(hyper_parameter_tuning_job_name)
        if job is None:
            raise ValidationError(message=f"Could not find tuning job '{hyper_parameter_tuning_job_name}'.")
        life = lifecycle.active()
        if life is None:
            job.hyper_parameter_tuning_job_status = "Stopped"
            return
        with lifecycle._LOCK:
            advance_tuning(life, self, job)
            if job.hyper_parameter_tuning_job_status not in ("InProgress", "Stopping"):
                raise ValidationError(
                    message="The request was rejected because the hyperparameter tuning job is in status "
                    f"{job.hyper_parameter_tuning_job_status}."
                )
            state = life.tunings[hyper_parameter_tuning_job_name]
            if state.stop_requested is None:
                state.stop_requested = life.now()
            advance_tuning(life, self, job)

    def stop_response(self: Any) -> Any:
        self.sagemaker_backend.stop_hyper_parameter_tuning_job(self._get_param("HyperParameterTuningJobName"))
        return ActionResult({})

    backend_class.create_hyper_parameter_tuning_job = create
    backend_class.describe_hyper_parameter_tuning_job = describe
    backend_class.stop_hyper_parameter_tuning_job = stop
    SageMakerResponse.stop_hyper_parameter_tuning_job = stop_response  # type: ignore[attr-defined]
