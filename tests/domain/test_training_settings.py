"""The conf's training settings (issue 17 items 2 and 3): parsing, the platform rule, reading a job back."""

from __future__ import annotations

import datetime
import fnmatch

import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.params import RunParams, parse_params
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.preflight import check_against_platform
from sagelift.domain.training_settings import (
    TrainingSettings,
    builtin_metric_definitions,
    check_training_against_platform,
    derive_checkpoint_s3_uri,
    parse_training,
    render_training_facts,
    spot_event_lines,
    spot_events,
    training_facts,
)
from tests.support.scenario import SCIENTIST_ACCOUNT, demo_conf


def _problems(raw, algorithm=None) -> dict[str, str]:
    problems = Problems()
    parse_training(raw, problems, algorithm=algorithm)
    return dict(problems.items)


def test_settings_parse_from_json_text_and_round_trip_through_the_plan():
    params = parse_params(
        demo_conf(
            training='{"use_spot": true, "max_wait_seconds": "7200", '
            '"metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]}'
        )
    )
    assert params.training.use_spot and params.training.max_wait_seconds == 7200
    assert RunParams.from_dict(params.to_dict()) == params
    assert parse_training(params.training.to_conf(), Problems()) == params.training
    assert TrainingSettings().to_conf() == {}


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ({"use_spots": True}, "training.use_spots", "did you mean 'use_spot'"),
        ({"use_spot": "yes"}, "training.use_spot", "true or false"),
        ({"max_wait_seconds": 600}, "training.max_wait_seconds", "spot training only"),
        ({"use_spot": True, "max_wait_seconds": 0}, "training.max_wait_seconds", "from 1 to 2419200"),
        ({"metric_definitions": {"a": 1}}, "training.metric_definitions", "JSON array"),
        ({"metric_definitions": [{"name": "a"}]}, "training.metric_definitions[0].regex", "required"),
        (
            {"metric_definitions": [{"name": "a", "regex": "("}]},
            "training.metric_definitions[0].regex",
            "not a regular",
        ),
        (
            {"metric_definitions": [{"name": "a", "regex": "x"}]},
            "training.metric_definitions[0].regex",
            "one capture",
        ),
        (
            {"metric_definitions": [{"name": "a", "regex": "(x)"}, {"name": "a", "regex": "(y)"}]},
            "training.metric_definitions[1].name",
            "defined twice",
        ),
        (
            {"metric_definitions": [{"name": "a", "regex": "(x)"}] * 41},
            "training.metric_definitions",
            "at most 40",
        ),
        ("[1]", "training", "JSON object"),
    ],
)
def test_each_broken_rule_names_its_field(raw, field, rule):
    problems = _problems(raw)
    assert field in problems, problems
    assert rule in problems[field]


def test_a_builtin_algorithm_takes_the_table_not_the_conf():
    problems = _problems({"metric_definitions": [{"name": "a", "regex": "(x)"}]}, algorithm="xgboost")
    assert "sagelift's table" in problems["training.metric_definitions"]
    assert "validation:auc" in [m.name for m in builtin_metric_definitions("xgboost")]


def test_training_settings_are_refused_where_nothing_trains():
    conf = demo_conf(
        training_docker_image="",
        training_channels="",
        training_s3_output_path="",
        training_hyperparameters={},
        model_artifact_s3_path="s3://scientist-ml-data/models/churn/model.tar.gz",
        training={"use_spot": True},
    )
    with pytest.raises(SageliftValidationError) as err:
        parse_params(conf)
    assert err.value.fields == ["training"]


def test_a_max_wait_below_the_platforms_max_runtime_is_refused_at_validate():
    problems = Problems()
    check_training_against_platform(TrainingSettings(use_spot=True, max_wait_seconds=3600), 86400, problems)
    assert "86400" in dict(problems.items)["training.max_wait_seconds"]
    fine = Problems()
    check_training_against_platform(TrainingSettings(use_spot=True), 86400, fine)
    assert not fine


def test_validate_runs_the_platform_rule():
    params = parse_params(demo_conf(training={"use_spot": True, "max_wait_seconds": 60}))
    problems = Problems()
    check_against_platform(params, PlatformConfig.from_dict(PLATFORM), "d", "r", problems)
    assert "training.max_wait_seconds" in problems.fields()


def test_the_checkpoint_prefix_is_the_jobs_own():
    assert (
        derive_checkpoint_s3_uri("s3://b/out/", "churn-1a2b3c4d") == "s3://b/out/churn-1a2b3c4d/checkpoints/"
    )


PLATFORM = {"region": "us-east-1", "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}}}}
NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


def test_a_finished_spot_job_reads_back_as_its_saving_interruptions_and_metrics():
    description = {
        "EnableManagedSpotTraining": True,
        "TrainingTimeInSeconds": 900,
        "BillableTimeInSeconds": 540,
        "SecondaryStatusTransitions": [
            {"Status": s, "StartTime": NOW}
            for s in ("Starting", "Training", "Interrupted", "Training", "Completed")
        ],
        "FinalMetricDataList": [
            {"MetricName": "validation:auc", "Value": 0.88, "Timestamp": NOW},
            {"MetricName": "train:loss", "Value": 0.21, "Timestamp": NOW},
        ],
    }
    facts = training_facts(description)
    assert facts == {
        "spot": True,
        "interruptions": 1,
        "training_seconds": 900,
        "billable_seconds": 540,
        "saving_percent": 40.0,
        "metrics": {"validation:auc": 0.88, "train:loss": 0.21},
    }
    lines = render_training_facts("job", facts)
    assert len(lines) == 3 and "540 s of 900 s" in lines[1] and "validation:auc=0.88" in lines[2]


def test_an_on_demand_job_without_metrics_adds_nothing():
    assert render_training_facts("job", training_facts({"TrainingJobStatus": "Completed"})) == []


def test_spot_events_come_from_the_transitions_so_a_slow_poll_misses_none():
    def described(*statuses: str) -> dict:
        return {"SecondaryStatusTransitions": [{"Status": s, "StartTime": NOW} for s in statuses]}

    assert spot_events(described("Starting", "Training")) == []
    twice = described("Training", "Interrupted", "Training", "Interrupted", "Training", "Completed")
    assert spot_events(twice) == ["interrupted", "resumed", "interrupted", "resumed"]
    assert spot_events(described("Training", "Interrupted", "MaxWaitTimeExceeded")) == [
        "interrupted",
        "max_wait_exceeded",
    ]
    lines = spot_event_lines("j", spot_events(twice), already_told=3)
    assert len(lines) == 1 and "j" in lines[0]


def test_onboarding_lets_the_training_role_resume_from_its_checkpoints():
    from sagelift.domain.onboarding import render_policies

    config = {**PLATFORM, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline"}
    policies = render_policies(
        PlatformConfig.from_dict(config),
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )
    statements = {s["Sid"]: s for s in policies["training-and-model-permissions"]["Statement"]}
    checkpoint = "scientist-ml-data/churn/output/churn-predictor-1a2b3c4d/checkpoints/epoch-3.pt"
    read = statements["ReadSpotCheckpoints"]
    assert [fnmatch.fnmatchcase(f"arn:aws:s3:::{checkpoint}", arn) for arn in read["Resource"]] == [True]
    listing = statements["ListSpotCheckpoints"]
    assert listing["Resource"] == ["arn:aws:s3:::scientist-ml-data"]
    prefix = "churn/output/churn-predictor-1a2b3c4d/checkpoints/"
    assert any(fnmatch.fnmatchcase(prefix, p) for p in listing["Condition"]["StringLike"]["s3:prefix"])
    assert not fnmatch.fnmatchcase("churn/input/x", listing["Condition"]["StringLike"]["s3:prefix"][0])


def test_every_setting_is_documented_in_the_trigger_form_and_the_readme():
    from sagelift.dags.params import airflow_params
    from tests.conftest import ROOT

    form = airflow_params()["training"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Spot training and metrics") :][:4000]
    for key in ("use_spot", "max_wait_seconds", "metric_definitions"):
        assert key in form.description, key
        assert f"`{key}`" in section, key
    assert form.schema["section"] == "Training"


def test_the_summary_shows_the_saving_and_the_final_metrics():
    from sagelift.domain.plan import build_plan
    from sagelift.domain.summary import build_run_summary, render_run_summary

    plan = build_plan(demo_conf(training={"use_spot": True}), PLATFORM, "d", "r")
    job = {
        "TrainingJobName": "j",
        "TrainingJobStatus": "Completed",
        "EnableManagedSpotTraining": True,
        "TrainingTimeInSeconds": 900,
        "BillableTimeInSeconds": 540,
        "SecondaryStatusTransitions": [{"Status": "Interrupted"}],
        "FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.88}],
    }
    summary = build_run_summary(
        plan, images=None, training={"Training": job}, model=None, endpoint=None, api=None
    )
    assert summary["training"]["saving_percent"] == 40.0
    assert summary["training"]["metrics"] == {"validation:auc": 0.88}
    text = render_run_summary(summary)
    assert "540 s of 900 s" in text and "validation:auc=0.88" in text
    skipped = build_run_summary(plan, images=None, training=None, model=None, endpoint=None, api=None)
    assert skipped["training"] is None
