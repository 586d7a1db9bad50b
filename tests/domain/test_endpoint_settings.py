"""The run's optional ``endpoint`` object (issue 16): parsed and checked by validate, field by field,
against the account's caps, before anything is created."""

from __future__ import annotations

import base64
import json

import pytest

from sagelift.domain.endpoint_settings import (
    EndpointCaps,
    EndpointSettings,
    check_endpoint_against_caps,
    parse_endpoint,
)
from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.params import RunParams, parse_params
from sagelift.domain.plan import build_plan
from sagelift.domain.platform import PlatformConfig
from tests.support.scenario import SCIENTIST_ACCOUNT, demo_conf

CAPTURES = "s3://sagelift-captures-333333333333/captures/"


def problems_of(raw) -> list[tuple[str, str]]:
    problems = Problems()
    parse_endpoint(raw, problems)
    return problems.items


def fields_of(raw) -> list[str]:
    return [field for field, _ in problems_of(raw)]


def platform(caps=None) -> dict:
    account = {"deployers": {"users": ["admin"]}}
    if caps is not None:
        account["endpoint"] = caps
    return {"region": "us-east-1", "accounts": {SCIENTIST_ACCOUNT: account}}


def test_no_endpoint_object_serves_as_before():
    for raw in (None, "", {}, "  ", "{}"):
        problems = Problems()
        assert parse_endpoint(raw, problems) == EndpointSettings()
        assert not problems
    params = parse_params(demo_conf())
    assert params.endpoint == EndpointSettings()
    assert params.endpoint.mode == "realtime" and params.endpoint.instance_count is None


def test_a_full_object_is_read_natively_or_as_json_text():
    raw = {
        "instance_count": 2,
        "autoscaling": {"min_capacity": 2, "max_capacity": 4, "target_invocations_per_instance": 70},
        "deployment": {"type": "canary", "canary_percent": 25, "bake_seconds": 300, "alarms": ["a", "b"]},
        "data_capture": {"sampling_percent": 20, "destination_s3_uri": CAPTURES + "churn/"},
        "smoke_test": {"body": "{}", "expected_status": 200},
    }
    for given in (raw, json.dumps(raw)):
        problems = Problems()
        settings = parse_endpoint(given, problems)
        assert not problems.items
        assert settings.instance_count == 2
        assert (
            settings.autoscaling is not None and settings.autoscaling.target_invocations_per_instance == 70.0
        )
        assert settings.deployment.type == "canary" and settings.deployment.canary_percent == 25
        assert settings.deployment.alarms == ("a", "b")
        assert settings.data_capture.enabled and settings.data_capture.sampling_percent == 20
        assert settings.smoke_test is not None and settings.smoke_test.expected_status == 200
        # the plan carries it through XCom and KFP parameters as JSON
        assert EndpointSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"deployment": {"type": "canary", "canary_percent": 100}}, "endpoint.deployment.canary_percent"),
        ({"deployment": {"type": "canary", "canary_percent": 51}}, "endpoint.deployment.canary_percent"),
        (
            {"deployment": {"type": "linear", "linear_step_percent": 9}},
            "endpoint.deployment.linear_step_percent",
        ),
        (
            {"deployment": {"type": "linear", "linear_step_percent": 51}},
            "endpoint.deployment.linear_step_percent",
        ),
        ({"deployment": {"type": "canary", "canary_percent": 0}}, "endpoint.deployment.canary_percent"),
        (
            {"deployment": {"type": "linear", "linear_step_percent": 100}},
            "endpoint.deployment.linear_step_percent",
        ),
        ({"deployment": {"type": "linear", "canary_percent": 10}}, "endpoint.deployment.canary_percent"),
        ({"deployment": {"type": "canary", "bake_seconds": 3601}}, "endpoint.deployment.bake_seconds"),
        ({"deployment": {"type": "blue"}}, "endpoint.deployment.type"),
        ({"deployment": {"type": "linear", "alarms": ["a"] * 11}}, "endpoint.deployment.alarms"),
        (
            {"serverless": {"memory_size_mb": 1500}, "mode": "serverless"},
            "endpoint.serverless.memory_size_mb",
        ),
        (
            {"serverless": {"memory_size_mb": 7168}, "mode": "serverless"},
            "endpoint.serverless.memory_size_mb",
        ),
        (
            {"serverless": {"max_concurrency": 201}, "mode": "serverless"},
            "endpoint.serverless.max_concurrency",
        ),
        ({"serverless": {"max_concurrency": 0}, "mode": "serverless"}, "endpoint.serverless.max_concurrency"),
        ({"data_capture": {"sampling_percent": 101}}, "endpoint.data_capture.sampling_percent"),
        ({"data_capture": {"destination_s3_uri": "captures/"}}, "endpoint.data_capture.destination_s3_uri"),
        (
            {"autoscaling": {"min_capacity": 3, "max_capacity": 2, "target_invocations_per_instance": 5}},
            "endpoint.autoscaling.min_capacity",
        ),
        (
            {"autoscaling": {"min_capacity": 1, "max_capacity": 2}},
            "endpoint.autoscaling.target_invocations_per_instance",
        ),
        (
            {"autoscaling": {"min_capacity": 1, "max_capacity": 2, "target_invocations_per_instance": -1}},
            "endpoint.autoscaling.target_invocations_per_instance",
        ),
        ({"instance_count": 0}, "endpoint.instance_count"),
        ({"instance_count": "two"}, "endpoint.instance_count"),
        (
            {
                "instance_count": 5,
                "autoscaling": {"min_capacity": 1, "max_capacity": 2, "target_invocations_per_instance": 5},
            },
            "endpoint.instance_count",
        ),
        ({"mode": "batch"}, "endpoint.mode"),
        (
            {
                "mode": "async",
                "async_inference": {"output_s3_uri": CAPTURES, "success_topic_arn": "arn:aws:sns:x"},
            },
            "endpoint.async_inference.success_topic_arn",
        ),
        ({"mode": "async", "async_inference": {}}, "endpoint.async_inference.output_s3_uri"),
        ({"mode": "async"}, "endpoint.async_inference"),
        ({"smoke_test": {"body": "not base64!", "body_base64": True}}, "endpoint.smoke_test.body"),
        ({"smoke_test": {"body": "x" * (64 * 1024 + 1)}}, "endpoint.smoke_test.body"),
        (
            {"smoke_test": {"body": base64.b64encode(b"x" * (64 * 1024 + 1)).decode(), "body_base64": True}},
            "endpoint.smoke_test.body",
        ),
        ({"smoke_test": {"body": "{}", "expected_status": 99}}, "endpoint.smoke_test.expected_status"),
        ({"smoke_test": {"body": "{}", "expected_status": 600}}, "endpoint.smoke_test.expected_status"),
        ({"smoke_test": {"body": "{}", "content_type": "json"}}, "endpoint.smoke_test.content_type"),
        ({"smoke_test": {}}, "endpoint.smoke_test.body"),
        ({"autoscale": {}}, "endpoint.autoscale"),
        ({"deployment": {"typ": "canary"}}, "endpoint.deployment.typ"),
        ("[1]", "endpoint"),
        ("{not json", "endpoint"),
        ([1, 2], "endpoint"),
    ],
)
def test_each_broken_rule_names_its_field(raw, field):
    found = problems_of(raw)
    assert field in [f for f, _ in found], found
    message = str(SageliftValidationError(found))
    assert len(message.splitlines()[0]) < 200


def test_an_unknown_key_is_named_with_the_closest_known_one():
    [(field, rule)] = problems_of(
        {
            "autoscaling": {
                "min_capacity": 1,
                "max_capacity": 2,
                "target_invocations_per_instance": 9,
                "max_capacty": 3,
            }
        }
    )
    assert field == "endpoint.autoscaling.max_capacty" and "max_capacity" in rule


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"mode": "serverless", "instance_count": 2}, "endpoint.instance_count"),
        (
            {
                "mode": "serverless",
                "autoscaling": {"min_capacity": 1, "max_capacity": 2, "target_invocations_per_instance": 9},
            },
            "endpoint.autoscaling",
        ),
        ({"mode": "serverless", "deployment": {"type": "canary"}}, "endpoint.deployment.type"),
        ({"mode": "serverless", "data_capture": {"enabled": True}}, "endpoint.data_capture"),
        ({"mode": "realtime", "serverless": {"max_concurrency": 3}}, "endpoint.serverless"),
        ({"async_inference": {"output_s3_uri": CAPTURES}}, "endpoint.async_inference"),
        (
            {"mode": "async", "async_inference": {"output_s3_uri": CAPTURES}, "smoke_test": {"body": "{}"}},
            "endpoint.smoke_test",
        ),
    ],
)
def test_settings_that_do_not_apply_to_the_mode_are_refused(raw, field):
    assert field in fields_of(raw)


def test_serverless_without_sizes_takes_the_documented_defaults():
    problems = Problems()
    settings = parse_endpoint({"mode": "serverless"}, problems)
    assert not problems and settings.serverless is not None
    assert (settings.serverless.memory_size_mb, settings.serverless.max_concurrency) == (2048, 5)


def test_the_endpoint_instance_type_is_refused_for_serverless_unless_left_at_the_default():
    conf = demo_conf(endpoint={"mode": "serverless"})
    assert parse_params(conf).endpoint.mode == "serverless"
    with pytest.raises(SageliftValidationError) as err:
        parse_params({**conf, "endpoint_instance_type": "ml.c5.xlarge"})
    assert err.value.fields == ["endpoint_instance_type"]
    assert "serverless" in str(err.value).splitlines()[0]


def test_caps_bound_every_value():
    caps = EndpointCaps(
        max_instances=3,
        allowed_modes=("realtime",),
        capture_prefixes=(CAPTURES,),
        allowed_strategies=("all_at_once", "canary"),
    )
    settings = parse_endpoint(
        {
            "mode": "realtime",
            "instance_count": 4,
            "autoscaling": {"min_capacity": 4, "max_capacity": 5, "target_invocations_per_instance": 9},
            "deployment": {"type": "linear"},
            "data_capture": {"destination_s3_uri": "s3://elsewhere/captures/"},
        },
        Problems(),
    )
    problems = Problems()
    check_endpoint_against_caps(settings, caps, problems)
    assert problems.fields() == [
        "endpoint.instance_count",
        "endpoint.autoscaling.max_capacity",
        "endpoint.autoscaling.min_capacity",
        "endpoint.deployment.type",
        "endpoint.data_capture.destination_s3_uri",
    ]
    ok = Problems()
    check_endpoint_against_caps(
        parse_endpoint(
            {"instance_count": 3, "data_capture": {"destination_s3_uri": CAPTURES + "m/"}}, Problems()
        ),
        caps,
        ok,
    )
    assert not ok.items


@pytest.mark.parametrize(
    ("caps", "endpoint", "field"),
    [
        (None, {"mode": "serverless"}, "endpoint.mode"),
        (
            {"allowed_modes": ["realtime", "serverless"], "capture_prefixes": [CAPTURES]},
            {"mode": "async", "async_inference": {"output_s3_uri": CAPTURES}},
            "endpoint.mode",
        ),
        (
            {"allowed_modes": ["async"]},
            {"mode": "async", "async_inference": {"output_s3_uri": CAPTURES}},
            "endpoint.async_inference.output_s3_uri",
        ),  # no capture_prefixes: nowhere to write
        (
            {"allowed_modes": ["async"], "capture_prefixes": [CAPTURES]},
            {
                "mode": "async",
                "async_inference": {"output_s3_uri": "s3://sagelift-captures-333333333333/capturesX/"},
            },
            "endpoint.async_inference.output_s3_uri",
        ),
        (None, {"data_capture": {"enabled": True}}, "endpoint.data_capture.destination_s3_uri"),
        (None, {"instance_count": 5}, "endpoint.instance_count"),  # the default cap is 4
    ],
)
def test_validate_refuses_what_the_account_disallows(caps, endpoint, field):
    with pytest.raises(SageliftValidationError) as err:
        build_plan(demo_conf(endpoint=endpoint), platform(caps), "d", "r", triggered_by="admin")
    assert err.value.fields == [field]
    assert len(str(err.value).splitlines()[0]) < 200


def test_the_plan_carries_the_capture_destination_under_the_account_s_first_prefix():
    caps = {
        "capture_prefixes": [CAPTURES, "s3://other-bucket/c/"],
        "allowed_modes": ["realtime", "serverless"],
    }
    plan = build_plan(demo_conf(endpoint={"data_capture": {"sampling_percent": 5}}), platform(caps), "d", "r")
    endpoint = RunParams.from_dict(json.loads(json.dumps(plan["params"]))).endpoint
    assert endpoint.data_capture.destination_s3_uri == CAPTURES + "churn-predictor/"
    assert endpoint.data_capture.sampling_percent == 5


@pytest.mark.parametrize(
    ("caps", "field"),
    [
        ({"max_instances": 0}, "max_instances"),
        ({"max_instances": True}, "max_instances"),
        ({"allowed_modes": ["realtime", "batch"]}, "allowed_modes"),
        ({"allowed_modes": []}, "allowed_modes"),
        ({"allowed_strategies": "canary"}, "allowed_strategies"),
        ({"capture_prefixes": ["captures/"]}, "capture_prefixes[0]"),
        ({"capture_prefixes": ["s3://b-1/a/../b/"]}, "capture_prefixes[0]"),
        ({"max_instance": 3}, "max_instance"),
        ("all", ""),
    ],
)
def test_the_account_caps_are_checked_when_the_platform_is_parsed(caps, field):
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(platform(caps))
    prefix = f"platform.accounts.{SCIENTIST_ACCOUNT}.endpoint"
    assert err.value.fields == [f"{prefix}.{field}" if field else prefix]


def test_caps_read_from_the_platform():
    caps = (
        PlatformConfig.from_dict(
            platform(
                {"max_instances": 8, "allowed_modes": ["realtime", "async"], "capture_prefixes": [CAPTURES]}
            )
        )
        .account(SCIENTIST_ACCOUNT)
        .endpoint
    )
    assert caps == EndpointCaps(
        max_instances=8, allowed_modes=("realtime", "async"), capture_prefixes=(CAPTURES,)
    )
    assert PlatformConfig.from_dict(platform()).account(SCIENTIST_ACCOUNT).endpoint == EndpointCaps()


def test_a_training_run_without_a_serving_image_or_algorithm_is_train_only():
    params = parse_params(demo_conf(model_docker_image=""))
    assert params.trains and not params.deploys
    assert parse_params(demo_conf()).deploys
    algorithm = demo_conf(model_docker_image="", training_docker_image="", training_algorithm_name="xgboost")
    assert parse_params(algorithm).deploys  # the algorithm's image serves
    with pytest.raises(SageliftValidationError) as err:
        parse_params(demo_conf(model_docker_image="", endpoint={"instance_count": 2}))
    assert err.value.fields == ["endpoint"]


def test_an_existing_artifact_still_needs_the_image_that_serves_it():
    conf = demo_conf(
        model_docker_image="", training_docker_image="", model_artifact_s3_path="s3://b-1/m/model.tar.gz"
    )
    with pytest.raises(SageliftValidationError) as err:
        parse_params(conf)
    assert err.value.fields == ["model_docker_image"]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"mode": "serverless"},
        {"mode": "serverless", "serverless": {"memory_size_mb": 4096, "max_concurrency": 20}},
        {"mode": "async", "async_inference": {"output_s3_uri": CAPTURES, "error_topic_arn": None}},
        {"deployment": {"type": "canary"}, "data_capture": {"enabled": True}},
        {"deployment": {"type": "linear", "linear_step_percent": 30, "alarms": ["x"]}, "instance_count": 3},
        {"smoke_test": {"body": "aGk=", "body_base64": True, "content_type": "image/png"}},
    ],
)
def test_settings_turn_back_into_the_conf_that_gives_them(raw):
    """What the Airflow DAG submitting a KFP run sends as the pipeline's ``endpoint`` parameter."""
    settings = parse_endpoint(raw, Problems())
    conf = settings.to_conf()
    problems = Problems()
    assert parse_endpoint(json.loads(json.dumps(conf)), problems) == settings
    assert not problems.items
    assert "null" not in json.dumps(conf)


def test_the_summary_of_a_train_only_run_shows_the_artifact_and_nothing_deployed():
    from sagelift.domain.summary import build_run_summary, render_run_summary

    plan = build_plan(demo_conf(model_docker_image=""), platform(), "d", "r")
    artifact = "s3://scientist-ml-data/churn/output/churn-predictor-x/output/model.tar.gz"
    training = {"Training": {"TrainingJobName": "j", "ModelArtifacts": {"S3ModelArtifacts": artifact}}}
    summary = build_run_summary(plan, images=None, training=training, model=None, endpoint=None, api=None)
    assert summary["train_only"] and summary["artifact_s3_path"] == artifact
    assert summary["invoke_url"] is None and summary["data_capture_s3_uri"] is None
    assert [r["kind"] for r in summary["resources"]] == ["training job", "model, endpoint and API"]
    assert artifact in render_run_summary(summary)


def test_the_summary_says_where_captures_and_async_results_land():
    from sagelift.domain.summary import build_run_summary, render_run_summary

    caps = {"allowed_modes": ["async"], "capture_prefixes": [CAPTURES]}
    conf = demo_conf(
        endpoint={
            "mode": "async",
            "async_inference": {"output_s3_uri": CAPTURES + "out/"},
            "data_capture": {},
        }
    )
    plan = build_plan(conf, platform(caps), "d", "r")
    summary = build_run_summary(plan, images=None, training=None, model=None, endpoint=None, api=None)
    assert not summary["train_only"] and summary["mode"] == "async"
    assert summary["data_capture_s3_uri"] == CAPTURES + "churn-predictor/"
    assert summary["async_output_s3_uri"] == CAPTURES + "out/"
    text = render_run_summary(summary)
    assert CAPTURES + "churn-predictor/" in text and CAPTURES + "out/" in text


def test_onboarding_lets_the_account_s_roles_write_captures_under_its_prefixes():
    from sagelift.domain.onboarding import render_policies

    config = platform({"capture_prefixes": [CAPTURES]})
    config["master_role_arn"] = "arn:aws:iam::222222222222:role/sagelift-master-pipeline"
    policies = render_policies(
        PlatformConfig.from_dict(config),
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )
    [write] = [
        s
        for s in policies["training-and-model-permissions"]["Statement"]
        if s["Sid"] == "WriteModelArtifacts"
    ]
    assert "arn:aws:s3:::sagelift-captures-333333333333/captures/*" in write["Resource"]


def test_every_setting_is_documented_in_the_trigger_form_and_the_readme():
    from dataclasses import fields

    from sagelift.dags.params import airflow_params
    from sagelift.domain.endpoint_settings import _SECTIONS, SETTINGS_DOC
    from tests.conftest import ROOT

    settings = {"mode", "instance_count"} | {
        f"{section}.{f.name}" for section, kind in _SECTIONS.items() for f in fields(kind)
    }
    assert {key for key, _ in SETTINGS_DOC} == settings
    form = airflow_params()["endpoint"].schema["description_md"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Serving settings") :]
    for key in sorted(settings):
        assert f"`{key}`" in form, key
        leaf = key.rsplit(".", 1)[-1]
        assert f"`{key}`" in section or f"`.{leaf}`" in section or f"`{leaf}`" in section, key
    for cap in fields(EndpointCaps):
        assert f"`{cap.name}`" in section, cap.name
