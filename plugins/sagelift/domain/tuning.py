"""The tuning job's request and what its description tells (issue 17 item 1), pure.

- ``derive_tuning_job_name``: a tuning job's name has at most 32 characters (the training job's 63), so
  it is the model name cut short plus the run key: fixed for the run, so a retry or a resumed deferral
  finds the job that exists.
- ``build_tuning_job_request``: CreateHyperParameterTuningJob's body. Its ``TrainingJobDefinition`` is
  the run's training request (``build_training_job_request``: image, channels, the account's network and
  KMS settings, spot with checkpoints, metric definitions, the allowed overrides) carried over field by
  field, the tuned names taken out of its fixed hyperparameters; a spot job's checkpoints go under the
  tuning job's prefix, as its training jobs are named by SageMaker.
- ``tuning_facts`` / ``render_tuning_progress`` / ``render_tuning_facts``: a DescribeHyperParameterTuningJob
  answer as JSON-able facts (status, job counts, the best job, its objective value and hyperparameters)
  and the lines the task log shows while it waits and once it has ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.params import RunParams
from sagelift.domain.plan import RunNames
from sagelift.domain.training_settings import derive_checkpoint_s3_uri
from sagelift.domain.tuning_settings import (
    ALGORITHM_FIELDS,
    DEFINITION_FIELDS,
    ParameterRange,
    TuningSettings,
)

TUNING_JOB_NAME_MAX = 32
_RANGE_LISTS = {
    "integer": "IntegerParameterRanges",
    "continuous": "ContinuousParameterRanges",
    "categorical": "CategoricalParameterRanges",
}


def derive_tuning_job_name(names: RunNames) -> str:
    """``<model name, cut>-<run key>`` within SageMaker's 32 characters (the endpoint is the model's name)."""
    room = TUNING_JOB_NAME_MAX - len(names.run_key) - 1
    return f"{names.endpoint[:room].rstrip('-')}-{names.run_key}"


def _bound(value: Any, integer: bool) -> str:
    return str(int(value)) if integer else f"{float(value):g}"


def build_parameter_ranges(ranges: tuple[ParameterRange, ...]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ranges:
        if r.type == "categorical":
            entry: dict[str, Any] = {"Name": r.name, "Values": list(r.values)}
        else:
            integer = r.type == "integer"
            entry = {
                "Name": r.name,
                "MinValue": _bound(r.min, integer),
                "MaxValue": _bound(r.max, integer),
                "ScalingType": r.scaling,
            }
        out.setdefault(_RANGE_LISTS[r.type], []).append(entry)
    return out


def build_tuning_job_config(settings: TuningSettings) -> dict[str, Any]:
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": settings.max_parallel_jobs}
    if settings.max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = settings.max_jobs
    return {
        "Strategy": settings.strategy,
        "HyperParameterTuningJobObjective": {
            "Type": settings.objective_direction,
            "MetricName": settings.objective_metric,
        },
        "ResourceLimits": limits,
        "ParameterRanges": build_parameter_ranges(settings.parameter_ranges),
        # Hyperband stops poor jobs itself and refuses any other early stopping.
        "TrainingJobEarlyStoppingType": "Off",
    }


def build_tuning_job_request(
    params: RunParams, names: RunNames, training_request: Mapping[str, Any]
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's body around ``training_request`` (the run's CreateTrainingJob body,
    as ``build_training_job_request`` makes it, so every training setting applies to each tuned job)."""
    tuning = params.tuning
    if not tuning.enabled:
        raise ValueError("tuning: not set for this run")
    name = derive_tuning_job_name(names)
    definition: dict[str, Any] = {k: training_request[k] for k in DEFINITION_FIELDS if k in training_request}
    definition["AlgorithmSpecification"] = {
        k: v for k, v in training_request["AlgorithmSpecification"].items() if k in ALGORITHM_FIELDS
    }
    tuned = {r.name for r in tuning.parameter_ranges}
    static = {k: v for k, v in (training_request.get("HyperParameters") or {}).items() if k not in tuned}
    if static:
        definition["StaticHyperParameters"] = static
    if "CheckpointConfig" in definition and params.training_s3_output_path:
        definition["CheckpointConfig"] = {
            **definition["CheckpointConfig"],
            "S3Uri": derive_checkpoint_s3_uri(params.training_s3_output_path, name),
        }
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": build_tuning_job_config(tuning),
        "TrainingJobDefinition": definition,
        "Tags": list(training_request.get("Tags") or []),
    }


# --- reading a tuning job back ----------------------------------------------------------------------
def _counters(description: Mapping[str, Any]) -> dict[str, int]:
    raw = description.get("TrainingJobStatusCounters") or {}
    failed = int(raw.get("RetryableError") or 0) + int(raw.get("NonRetryableError") or 0)
    return {
        "completed": int(raw.get("Completed") or 0),
        "running": int(raw.get("InProgress") or 0),
        "failed": failed,
        "stopped": int(raw.get("Stopped") or 0),
    }


def best_training_job(description: Mapping[str, Any]) -> dict[str, Any] | None:
    """The best job so far: its name, objective metric and value, tuned hyperparameters; None before one."""
    best = description.get("BestTrainingJob")
    if not isinstance(best, Mapping) or not best.get("TrainingJobName"):
        return None
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = objective.get("Value")
    return {
        "training_job": str(best["TrainingJobName"]),
        "objective_metric": objective.get("MetricName"),
        "objective_value": value if isinstance(value, int | float) else None,
        "hyperparameters": {str(k): str(v) for k, v in (best.get("TunedHyperParameters") or {}).items()},
    }


def tuning_facts(description: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able facts of a DescribeHyperParameterTuningJob answer."""
    config = description.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    return {
        "tuning_job": description.get("HyperParameterTuningJobName"),
        "status": description.get("HyperParameterTuningJobStatus"),
        "strategy": config.get("Strategy"),
        "objective_metric": objective.get("MetricName"),
        "objective_direction": objective.get("Type"),
        "jobs": _counters(description),
        "best": best_training_job(description),
    }


def _best_text(best: Mapping[str, Any] | None) -> str:
    if not best:
        return "no best job yet"
    value = best.get("objective_value")
    shown = f"{value:g}" if isinstance(value, int | float) else "?"
    return f"best so far {best['training_job']} ({best.get('objective_metric')}={shown})"


def render_tuning_progress(facts: Mapping[str, Any]) -> str:
    """One line while the tuning job runs: jobs completed, running, failed, and the best so far."""
    jobs = facts.get("jobs") or {}
    return (
        f"Tuning job {facts.get('tuning_job')} {facts.get('status')}: {jobs.get('completed', 0)} training "
        f"jobs completed, {jobs.get('running', 0)} running, {jobs.get('failed', 0)} failed; "
        + _best_text(facts.get("best"))
    )


def render_tuning_facts(facts: Mapping[str, Any]) -> list[str]:
    """The lines the task log shows once the tuning job has ended."""
    lines = [render_tuning_progress(facts)]
    best = facts.get("best")
    if best:
        params = ", ".join(f"{k}={v}" for k, v in sorted((best.get("hyperparameters") or {}).items()))
        lines.append(
            f"Best training job {best['training_job']}: {best.get('objective_metric')}="
            f"{best.get('objective_value')} with {params or 'no tuned hyperparameters'}"
        )
    return lines
