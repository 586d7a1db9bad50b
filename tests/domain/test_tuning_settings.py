"""The conf's tuning settings (issue 17 item 1): what validate refuses, naming the field, before anything runs."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.params import RunParams, parse_params
from sagelift.domain.tuning_settings import TuningSettings, tunable_hyperparameters
from tests.support.scenario import demo_conf

METRICS = [{"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"}]
TUNING = {
    "strategy": "Bayesian",
    "objective_metric": "validation:auc",
    "parameter_ranges": {
        "alpha": {"type": "continuous", "min": 0.01, "max": 1, "scaling": "Logarithmic"},
        "depth": {"type": "integer", "min": "3", "max": 9},
        "booster": {"type": "categorical", "values": ["gbtree", "dart"]},
    },
    "max_jobs": 6,
    "max_parallel_jobs": 2,
}


def own_image(**tuning) -> dict:
    return demo_conf(training={"metric_definitions": METRICS}, tuning={**TUNING, **tuning})


def builtin(**tuning) -> dict:
    conf = demo_conf(tuning={**TUNING, **tuning})
    del conf["training_docker_image"], conf["model_docker_image"]
    return {**conf, "training_algorithm_name": "xgboost", "training_hyperparameters": {"num_round": "50"}}


def test_settings_parse_and_round_trip_through_the_plan_and_kfp_struct():
    params = parse_params(own_image())
    tuning = params.tuning
    assert tuning.enabled and tuning.strategy == "Bayesian" and tuning.max_jobs == 6
    assert [(r.name, r.type) for r in tuning.parameter_ranges] == [
        ("alpha", "continuous"),
        ("depth", "integer"),
        ("booster", "categorical"),
    ]
    assert RunParams.from_dict(params.to_dict()) == params
    conf = tuning.to_conf()
    assert TuningSettings.from_dict(conf) == tuning
    assert "null" not in str(conf).lower() and None not in conf.values()
    assert parse_params(own_image(**conf)).tuning == tuning
    assert not TuningSettings().enabled and TuningSettings().to_conf() == {}


def test_defaults_and_a_builtin_algorithm_tunes_its_own_hyperparameters_on_its_own_metrics():
    conf = builtin(
        parameter_ranges={"eta": {"type": "continuous", "min": 0.1, "max": 0.5}},
        max_jobs=None,
        max_parallel_jobs=None,
        strategy=None,
        objective_direction="Maximize",
    )
    tuning = parse_params(conf).tuning
    assert (tuning.strategy, tuning.max_jobs, tuning.max_parallel_jobs) == ("Bayesian", 10, 2)
    assert "eta" in (tunable_hyperparameters("xgboost") or ())


@pytest.mark.parametrize(
    ("conf", "field", "rule"),
    [
        (own_image(strategy="Annealing"), "tuning.strategy", "Bayesian, Random, Hyperband, Grid"),
        (own_image(objective_direction="Up"), "tuning.objective_direction", "Maximize, Minimize"),
        (
            own_image(objective_metric="validation:f1"),
            "tuning.objective_metric",
            "training.metric_definitions",
        ),
        (own_image(objective_metric=None), "tuning.objective_metric", "required"),
        (own_image(max_jobs=751), "tuning.max_jobs", "from 1 to 750"),
        (own_image(max_parallel_jobs=101), "tuning.max_parallel_jobs", "from 1 to 100"),
        (own_image(max_jobs=2, max_parallel_jobs=3), "tuning.max_parallel_jobs", "at most max_jobs (2)"),
        (own_image(max_job=3), "tuning.max_job", "did you mean 'max_jobs'"),
        (own_image(parameter_ranges={}), "tuning.parameter_ranges", "non-empty"),
        (own_image(parameter_ranges=None), "tuning.parameter_ranges", "required"),
        (
            own_image(parameter_ranges={"a": {"type": "integer", "min": 5, "max": 5}}),
            "tuning.parameter_ranges.a.max",
            "above min",
        ),
        (
            own_image(parameter_ranges={"a": {"type": "integer", "min": 1.5, "max": 5}}),
            "tuning.parameter_ranges.a.min",
            "whole number",
        ),
        (
            own_image(parameter_ranges={"a": {"type": "float", "min": 1, "max": 5}}),
            "tuning.parameter_ranges.a.type",
            "integer, continuous, categorical",
        ),
        (
            own_image(
                parameter_ranges={"a": {"type": "continuous", "min": 0, "max": 5, "scaling": "Logarithmic"}}
            ),
            "tuning.parameter_ranges.a.scaling",
            "min above 0",
        ),
        (
            own_image(
                parameter_ranges={
                    "a": {"type": "integer", "min": 0, "max": 5, "scaling": "ReverseLogarithmic"}
                }
            ),
            "tuning.parameter_ranges.a.scaling",
            "continuous ranges only",
        ),
        (
            own_image(
                parameter_ranges={"a": {"type": "continuous", "min": 0, "max": 1, "scaling": "Reverse"}}
            ),
            "tuning.parameter_ranges.a.scaling",
            "must be one of",
        ),
        (
            own_image(parameter_ranges={"a": {"type": "categorical", "values": [str(i) for i in range(31)]}}),
            "tuning.parameter_ranges.a.values",
            "at most 30 values",
        ),
        (
            own_image(parameter_ranges={"a": {"type": "categorical", "values": ["x", "x"]}}),
            "tuning.parameter_ranges.a.values[1]",
            "listed twice",
        ),
        (
            own_image(parameter_ranges={"a": {"type": "categorical", "values": ["x"], "min": 1}}),
            "tuning.parameter_ranges.a.min",
            "integer and continuous ranges only",
        ),
        (
            own_image(parameter_ranges={"eta": {"type": "continuous", "min": 0.1, "max": 0.3}}),
            "tuning.parameter_ranges.eta",
            "also a fixed training_hyperparameters entry",
        ),
        (
            own_image(parameter_ranges={f"p{i}": {"type": "integer", "min": 1, "max": 2} for i in range(31)}),
            "tuning.parameter_ranges",
            "at most 30 hyperparameters",
        ),
        (own_image(strategy="Grid"), "tuning.max_jobs", "one job per combination"),
        (
            own_image(strategy="Grid", max_jobs=None),
            "tuning.parameter_ranges.alpha",
            "categorical ranges only",
        ),
        (builtin(), "tuning.parameter_ranges.depth", "not a tunable hyperparameter of 'xgboost'"),
        (
            builtin(parameter_ranges={"num_round": {"type": "integer", "min": 10, "max": 90}}),
            "tuning.parameter_ranges.num_round",
            "also a fixed",
        ),
        (
            builtin(
                objective_metric="accuracy",
                parameter_ranges={"eta": {"type": "continuous", "min": 0, "max": 1}},
            ),
            "tuning.objective_metric",
            "built-in algorithm 'xgboost'",
        ),
        (
            {**own_image(), "model_artifact_s3_path": "s3://x/y/model.tar.gz"},
            "tuning",
            "nothing is trained",
        ),
        (
            {
                **own_image(),
                "request_overrides": {"CreateTrainingJob": {"DebugHookConfig": {"S3OutputPath": "s3://b/d"}}},
            },
            "request_overrides.CreateTrainingJob.DebugHookConfig",
            "tuning job's training definition has no such field",
        ),
        (demo_conf(tuning="{not json"), "tuning", "JSON"),
    ],
)
def test_validate_refuses_naming_the_field_and_the_rule(conf, field, rule):
    with pytest.raises(SageliftValidationError) as err:
        parse_params(conf)
    problems = dict(err.value.problems)
    assert field in problems, problems
    assert rule in problems[field]
    assert len(str(err.value).splitlines()[0]) < 200


def test_an_empty_tuning_object_trains_one_job():
    assert not parse_params(demo_conf(tuning={})).tuning.enabled
    assert not parse_params(demo_conf(tuning="")).tuning.enabled
