"""The conf's optional ``tuning`` object (issue 17 item 1): a hyperparameter tuning job instead of one
training job, whose best training job's model is deployed.

``parse_tuning`` reads it (native or JSON text) into ``TuningSettings`` and checks, before anything
runs, every rule SageMaker would otherwise refuse minutes later, each naming its dotted field
(``tuning.parameter_ranges.eta.min``):

- ``strategy`` Bayesian (default), Random, Hyperband or Grid (Grid searches categorical ranges only and
  runs one job per combination, so it takes no ``max_jobs``);
- ``objective_metric``: a metric the job defines, from sagelift's table for a built-in algorithm
  (algorithm_metrics.json) or the conf's ``training.metric_definitions`` for your own image;
  ``objective_direction`` Maximize (default) or Minimize;
- ``parameter_ranges``: ``{name: {type, min, max, scaling} | {type: categorical, values}}``, integer
  or continuous with min < max and a scaling SageMaker accepts for them (Logarithmic needs min > 0,
  ReverseLogarithmic continuous values in [0, 1)), categorical with 1-30 distinct values; a tuned name
  may not also be a fixed ``training_hyperparameters`` entry, and for a built-in algorithm it must be one
  of its tunable hyperparameters (algorithm_tuning.json);
- ``max_jobs`` (1-750) and ``max_parallel_jobs`` (1-100, at most ``max_jobs``): SageMaker's limits.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object, whole_number
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, kind, show, subfield

FIELD = "tuning"
LIMITS = JsonLimits(max_chars=64 * 1024, max_depth=6, max_nodes=2_000, max_string=1024)
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
DIRECTIONS = ("Maximize", "Minimize")
RANGE_TYPES = ("integer", "continuous", "categorical")
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
# SageMaker's limits: training jobs per tuning job, concurrent ones, hyperparameters searched, values of
# a categorical range (botocore's model caps each range list and a categorical's values at 30).
MAX_JOBS = 750
MAX_PARALLEL_JOBS = 100
MAX_RANGES = 30
MAX_CATEGORICAL_VALUES = 30
NAME_MAX = 256
VALUE_MAX = 256
DEFAULT_MAX_JOBS = 10
DEFAULT_MAX_PARALLEL_JOBS = 2
_KEYS = (
    "strategy",
    "objective_metric",
    "objective_direction",
    "parameter_ranges",
    "max_jobs",
    "max_parallel_jobs",
)
_RANGE_KEYS = ("type", "min", "max", "scaling", "values")
# The CreateTrainingJob fields a tuning job's TrainingJobDefinition also has (botocore's
# HyperParameterTrainingJobDefinition; HyperParameters become its StaticHyperParameters): the run's
# training request is carried over field by field, its allowed overrides included.
DEFINITION_FIELDS = (
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)
ALGORITHM_FIELDS = ("TrainingImage", "TrainingInputMode", "AlgorithmName", "MetricDefinitions")

SETTINGS_DOC = (
    "Optional, as a JSON object; empty trains one job as before. Keys: strategy (Bayesian, Random, "
    "Hyperband or Grid), objective_metric (a metric the job defines) and objective_direction (Maximize "
    "or Minimize), parameter_ranges {name: {type: integer|continuous, min, max, scaling} or {type: "
    f"categorical, values}}}}, max_jobs (1-{MAX_JOBS}), max_parallel_jobs (1-{MAX_PARALLEL_JOBS}). "
    "The best job's model is deployed. README: Tuning."
)


@dataclass(frozen=True)
class ParameterRange:
    name: str
    type: str  # integer | continuous | categorical
    min: float | None = None
    max: float | None = None
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def to_conf(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "values": list(self.values)}
        conf: dict[str, Any] = {"type": self.type, "min": self.min, "max": self.max}
        if self.scaling != "Auto":
            conf["scaling"] = self.scaling
        return conf


@dataclass(frozen=True)
class TuningSettings:
    """Empty (``enabled`` False) unless the conf asks for tuning."""

    strategy: str = ""
    objective_metric: str = ""
    objective_direction: str = "Maximize"
    parameter_ranges: tuple[ParameterRange, ...] = ()
    max_jobs: int | None = None  # None for Grid: one job per combination
    max_parallel_jobs: int = DEFAULT_MAX_PARALLEL_JOBS

    @property
    def enabled(self) -> bool:
        return bool(self.strategy)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameter_ranges"] = [asdict(r) for r in self.parameter_ranges]
        return data

    def to_conf(self) -> dict[str, Any]:
        """The conf's ``tuning`` object without nulls (a KFP struct holds none); empty when disabled."""
        if not self.enabled:
            return {}
        conf: dict[str, Any] = {
            "strategy": self.strategy,
            "objective_metric": self.objective_metric,
            "objective_direction": self.objective_direction,
            "parameter_ranges": {r.name: r.to_conf() for r in self.parameter_ranges},
            "max_parallel_jobs": self.max_parallel_jobs,
        }
        if self.max_jobs is not None:
            conf["max_jobs"] = self.max_jobs
        return conf

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TuningSettings:
        data = data or {}
        if not data.get("strategy"):
            return cls()
        ranges = data.get("parameter_ranges") or []
        if isinstance(ranges, Mapping):  # the conf's shape (to_conf), keyed by name
            ranges = [{"name": name, **value} for name, value in ranges.items()]
        return cls(
            strategy=str(data["strategy"]),
            objective_metric=str(data.get("objective_metric") or ""),
            objective_direction=str(data.get("objective_direction") or "Maximize"),
            parameter_ranges=tuple(
                ParameterRange(
                    name=str(r["name"]),
                    type=str(r["type"]),
                    min=r.get("min"),
                    max=r.get("max"),
                    scaling=str(r.get("scaling") or "Auto"),
                    values=tuple(str(v) for v in r.get("values") or ()),
                )
                for r in ranges
            ),
            max_jobs=data.get("max_jobs"),
            max_parallel_jobs=int(data.get("max_parallel_jobs") or DEFAULT_MAX_PARALLEL_JOBS),
        )


@cache
def _tunable_table() -> dict[str, tuple[str, ...]]:
    data = json.loads(resources.files("sagelift.domain").joinpath("algorithm_tuning.json").read_text())
    return {name: tuple(params) for name, params in data["algorithms"].items()}


def tunable_hyperparameters(algorithm: str) -> tuple[str, ...] | None:
    """The hyperparameters a built-in algorithm tunes, or None when sagelift has no table for it."""
    return _tunable_table().get(algorithm)


# --- parsing -------------------------------------------------------------------------------------------
def _bound(raw: Any, name: str, integer: bool, problems: Problems) -> float | None:
    if raw is None:
        problems.add(name, "required")
        return None
    if integer:
        number = whole_number(raw)
        if number is None:
            problems.add(name, f"must be a whole number, got {show(raw, 24)}")
        return number
    if isinstance(raw, str) and len(raw) <= 24:
        with contextlib.suppress(ValueError):
            raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw or abs(raw) == float("inf"):
        problems.add(name, f"must be a number, got {show(raw, 24)}")
        return None
    return float(raw)


def _parse_range(key: Any, raw: Any, problems: Problems) -> ParameterRange | None:
    name = subfield(f"{FIELD}.parameter_ranges", key)
    if not isinstance(key, str) or not key.strip() or len(key) > NAME_MAX:
        problems.add(name, f"a hyperparameter name of 1-{NAME_MAX} characters is required")
        return None
    if not isinstance(raw, Mapping):
        problems.add(
            name, f"must be an object {{type, min, max, scaling}} or {{type, values}}, got {kind(raw)}"
        )
        return None
    r = ObjectReader(raw, name, _RANGE_KEYS, problems)
    if not r.given("type"):
        problems.add(r.name("type"), f"required: one of {', '.join(RANGE_TYPES)}")
        return None
    kind_ = r.choice("type", "", RANGE_TYPES)
    if not kind_:
        return None
    if kind_ == "categorical":
        return _parse_categorical(key, r, problems)
    for other in ("values",):
        if r.given(other):
            problems.add(r.name(other), f"applies to categorical ranges only, not {kind_}")
    low = _bound(raw.get("min"), r.name("min"), kind_ == "integer", problems)
    high = _bound(raw.get("max"), r.name("max"), kind_ == "integer", problems)
    scaling = r.choice("scaling", "Auto", SCALINGS)
    if low is None or high is None:
        return None
    if not low < high:
        problems.add(r.name("max"), f"must be above min ({low:g}), got {high:g}")
        return None
    if scaling == "Logarithmic" and low <= 0:
        problems.add(r.name("scaling"), f"Logarithmic needs min above 0, got {low:g}")
        return None
    if scaling == "ReverseLogarithmic":
        if kind_ == "integer":
            problems.add(r.name("scaling"), "ReverseLogarithmic applies to continuous ranges only")
            return None
        if not (low >= 0 and high < 1):
            problems.add(
                r.name("scaling"), f"ReverseLogarithmic needs 0 <= min < max < 1, got {low:g}-{high:g}"
            )
            return None
    return ParameterRange(key, kind_, low, high, scaling)


def _parse_categorical(key: str, r: ObjectReader, problems: Problems) -> ParameterRange | None:
    for other in ("min", "max", "scaling"):
        if r.given(other):
            problems.add(r.name(other), "applies to integer and continuous ranges only, not categorical")
    values = r.raw.get("values")
    name = r.name("values")
    if not isinstance(values, list) or not values:
        problems.add(name, f"a list of 1-{MAX_CATEGORICAL_VALUES} values is required, got {kind(values)}")
        return None
    if len(values) > MAX_CATEGORICAL_VALUES:
        problems.add(name, f"at most {MAX_CATEGORICAL_VALUES} values (SageMaker's limit), got {len(values)}")
        return None
    texts: list[str] = []
    for i, value in enumerate(values):
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, int | float):
            value = f"{value:g}" if isinstance(value, float) else str(value)
        if not isinstance(value, str) or not value or len(value) > VALUE_MAX:
            problems.add(f"{name}[{i}]", f"must be a string or number of 1-{VALUE_MAX} characters")
            return None
        if value in texts:
            problems.add(f"{name}[{i}]", f"{show(value)} is listed twice")
            return None
        texts.append(value)
    return ParameterRange(key, "categorical", values=tuple(texts))


def _parse_ranges(raw: Any, problems: Problems) -> tuple[ParameterRange, ...]:
    name = f"{FIELD}.parameter_ranges"
    if raw is None:
        problems.add(name, "required: at least one hyperparameter to search")
        return ()
    if not isinstance(raw, Mapping) or not raw:
        problems.add(name, f"must be a non-empty object {{name: range}}, got {kind(raw)}")
        return ()
    if len(raw) > MAX_RANGES:
        problems.add(name, f"at most {MAX_RANGES} hyperparameters (SageMaker's limit), got {len(raw)}")
        return ()
    ranges = [_parse_range(key, value, problems) for key, value in raw.items()]
    return tuple(r for r in ranges if r is not None)


def _check_objective(
    metric: str | None, algorithm: str | None, metrics: tuple[str, ...], problems: Problems
) -> None:
    name = f"{FIELD}.objective_metric"
    if metric is None:
        problems.add(name, "required: the metric the tuning job optimizes")
    elif metric not in metrics:
        where = (
            f"the built-in algorithm {show(algorithm)}'s metrics"
            if algorithm is not None
            else "training.metric_definitions (define it there for your own image)"
        )
        known = ", ".join(metrics[:8]) if metrics else "none"
        problems.add(name, f"{show(metric)} is not one of {where}; known: {known}")


def _check_names(
    ranges: tuple[ParameterRange, ...], algorithm: str | None, fixed: Mapping[str, Any], problems: Problems
) -> None:
    tunable = tunable_hyperparameters(algorithm) if algorithm is not None else None
    if algorithm is not None and tunable is None:
        problems.add(
            FIELD,
            f"sagelift has no tunable-hyperparameter table for the built-in algorithm {show(algorithm)}; "
            "tune your own training image instead",
        )
    for r in ranges:
        name = subfield(f"{FIELD}.parameter_ranges", r.name)
        if r.name in fixed:
            problems.add(
                name, "is also a fixed training_hyperparameters entry; remove it from one of the two"
            )
        if tunable is not None and r.name not in tunable:
            problems.add(
                name,
                f"is not a tunable hyperparameter of {show(algorithm)}; tunable: {', '.join(tunable[:8])}, ...",
            )


def _check_overrides(overrides: Mapping[str, Any], problems: Problems) -> None:
    """A CreateTrainingJob override the tuning job's training definition cannot carry would be dropped
    silently: refuse it instead."""
    for key in sorted(overrides):
        if key == "HyperParameters":
            continue
        inner = overrides[key]
        if key not in DEFINITION_FIELDS:
            problems.add(
                f"request_overrides.CreateTrainingJob.{key}",
                "a tuning job's training definition has no such field; drop it or the tuning",
            )
        elif key == "AlgorithmSpecification" and isinstance(inner, Mapping):
            for sub in sorted(k for k in inner if k not in ALGORITHM_FIELDS):
                problems.add(
                    f"request_overrides.CreateTrainingJob.AlgorithmSpecification.{sub}",
                    "a tuning job's algorithm specification has no such field; drop it or the tuning",
                )


def parse_tuning(
    raw: Any,
    problems: Problems,
    *,
    trains: bool = True,
    algorithm: str | None = None,
    metrics: tuple[str, ...] = (),
    fixed_hyperparameters: Mapping[str, Any] | None = None,
    training_overrides: Mapping[str, Any] | None = None,
) -> TuningSettings:
    """The conf's ``tuning`` object as TuningSettings; adds a problem per broken rule. ``algorithm``: the
    run's built-in algorithm (None for your own image); ``metrics``: the names of the metrics the training
    job defines; ``fixed_hyperparameters``: the conf's training_hyperparameters; ``training_overrides``:
    the conf's CreateTrainingJob overrides, which the tuning job's training definition must hold too."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return TuningSettings()
    if not trains:
        problems.add(FIELD, "model_artifact_s3_path is set, so nothing is trained; leave tuning empty")
        return TuningSettings()
    r = ObjectReader(data, FIELD, _KEYS, problems)
    strategy = r.choice("strategy", "Bayesian", STRATEGIES)
    metric = r.text("objective_metric", None, NAME_MAX)
    direction = r.choice("objective_direction", "Maximize", DIRECTIONS)
    ranges = _parse_ranges(data.get("parameter_ranges"), problems)
    max_jobs = r.whole("max_jobs", None, 1, MAX_JOBS)
    parallel = r.whole("max_parallel_jobs", DEFAULT_MAX_PARALLEL_JOBS, 1, MAX_PARALLEL_JOBS)
    if strategy == "Grid":
        if r.given("max_jobs"):
            problems.add(r.name("max_jobs"), "Grid runs one job per combination of values; drop max_jobs")
            max_jobs = None
        for p in ranges:
            if p.type != "categorical":
                problems.add(
                    subfield(f"{FIELD}.parameter_ranges", p.name), "Grid searches categorical ranges only"
                )
    elif max_jobs is None and not r.given("max_jobs"):
        max_jobs = DEFAULT_MAX_JOBS
    if max_jobs is not None and parallel > max_jobs:
        problems.add(r.name("max_parallel_jobs"), f"must be at most max_jobs ({max_jobs}), got {parallel}")
    _check_objective(metric, algorithm, metrics, problems)
    _check_names(ranges, algorithm, fixed_hyperparameters or {}, problems)
    _check_overrides(training_overrides or {}, problems)
    return TuningSettings(
        strategy=strategy,
        objective_metric=metric or "",
        objective_direction=direction,
        parameter_ranges=ranges,
        max_jobs=max_jobs,
        max_parallel_jobs=parallel,
    )
