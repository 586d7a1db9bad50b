"""Instance recommendation (issue 20 item 2): the price table, the fit rules, the pick, the conf's rules,
"auto", and CreateInferenceRecommendationsJob's body against botocore's model."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.instance_choice import (
    GIB,
    LISTED_FITS,
    fit_problem,
    hosting_instance_types,
    instance_spec,
    memory_needed_gib,
    price_table,
    processor_for,
    read_price_table,
    recommend_from_table,
)
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.recommendation import (
    RecommendationSettings,
    build_recommendations_job_request,
    parse_recommendation,
    pick_from_job,
    resolve_instance_type,
)
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

PAYLOAD = f"s3://{DATA_BUCKET}/churn/payload.tar.gz"
PACKAGE = f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:model-package/churn-predictor/1"


def _platform(**account: Any) -> dict[str, Any]:
    return {
        "region": "us-east-1",
        "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}, **account}},
    }


def _plan(platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    raw = build_plan(
        demo_conf(**conf), platform or _platform(), "sagemaker_deploy", "rec-1", triggered_by="admin"
    )
    return Plan.from_xcom(raw)


def _refusal(platform: dict[str, Any] | None = None, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        _plan(platform, **conf)
    return str(err.value)


# --- the price table ---------------------------------------------------------------------------------


def test_the_table_is_dated_and_prices_every_hosting_type_in_every_region() -> None:
    table = price_table()
    as_of = datetime.date.fromisoformat(table.as_of)
    assert datetime.date(2025, 1, 1) <= as_of <= datetime.date.today()
    assert table.source
    assert {"us-east-1", "eu-west-1"} <= set(table.regions)
    for region, prices in table.regions.items():
        missing = [t for t in hosting_instance_types() if t not in prices]
        assert missing == [], region
        assert all(price > 0 for price in prices.values()), region


def test_a_table_without_a_date_is_refused() -> None:
    with pytest.raises(ValueError, match="as_of"):
        read_price_table({"as_of": "last week", "regions": {}})


# --- the fit rules -------------------------------------------------------------------------------------


def test_every_hosting_type_has_a_spec() -> None:
    for instance_type in hosting_instance_types():
        spec = instance_spec(instance_type)
        assert spec.vcpus >= 1 and spec.memory_gib >= 2, instance_type
    assert instance_spec("ml.m5.large").memory_gib == 8
    assert instance_spec("ml.c5.xlarge").memory_gib == 8
    assert instance_spec("ml.r5.large").memory_gib == 16
    assert instance_spec("ml.g4dn.xlarge").accelerator == "gpu"
    assert instance_spec("ml.inf2.xlarge").accelerator == "neuron"
    assert instance_spec("ml.c7g.large").arch == "arm64"
    assert instance_spec("ml.g5.xlarge").arch == "x86_64"


@pytest.mark.parametrize(
    ("instance_type", "need", "processor", "allowed", "problem"),
    [
        ("ml.m5.large", 2.0, "cpu", (), None),
        ("ml.m5.large", 9.0, "cpu", (), "8 GiB of memory, the model needs 9 GiB"),
        ("ml.g4dn.xlarge", 2.0, "cpu", (), "a GPU type; the model's image serves on CPU"),
        ("ml.g4dn.xlarge", 2.0, "gpu", (), None),
        ("ml.m5.large", 2.0, "gpu", (), "no GPU; the model's image serves on GPU"),
        ("ml.m6g.large", 2.0, "any", (), "Graviton (arm64): the model's image is x86_64"),
        ("ml.inf2.xlarge", 2.0, "any", (), "needs a model compiled for its accelerator (neuron)"),
        ("ml.c5.large", 2.0, "cpu", ("ml.m5.large",), "not in the account's endpoint_instance_types"),
    ],
)
def test_fit_rules(
    instance_type: str, need: float, processor: str, allowed: tuple, problem: str | None
) -> None:
    assert fit_problem(instance_spec(instance_type), need, processor, allowed) == problem


def test_the_memory_a_model_needs_grows_with_its_artifact() -> None:
    assert memory_needed_gib(None) == 1.0
    assert memory_needed_gib(2 * GIB) == 9.0


def test_the_processor_comes_from_the_conf_then_the_algorithm_then_cpu() -> None:
    assert processor_for("seq2seq", None) == "gpu"
    assert processor_for("xgboost", None) == "any"
    assert processor_for(None, None) == "cpu"
    assert processor_for("seq2seq", "any") == "any"


# --- the pick -----------------------------------------------------------------------------------------


def test_the_pick_is_the_cheapest_type_that_fits() -> None:
    small = recommend_from_table("us-east-1", 10 * 1024**2, "cpu")
    assert small.pick == small.fits[0].instance_type
    assert len(small.fits) == LISTED_FITS and small.fit_count > LISTED_FITS
    prices = [f.usd_per_hour for f in small.fits]
    assert prices == sorted(prices)
    assert small.not_fitting["a GPU type"] > 0 and small.not_fitting["Graviton (arm64)"] > 0
    # a 30 GiB artifact needs 121 GiB: only big types fit, and the pick has the memory
    big = recommend_from_table("us-east-1", 30 * GIB, "cpu")
    assert big.pick is not None and instance_spec(big.pick).memory_gib >= 121
    assert big.not_fitting["not enough memory"] > 0
    assert big.pick_usd_per_hour is not None and big.pick_usd_per_hour > small.pick_usd_per_hour  # type: ignore[operator]
    # the account's list bounds the answer; prices differ by region
    bounded = recommend_from_table("eu-west-1", 10 * 1024**2, "cpu", allowed=("ml.m5.xlarge", "ml.c5.xlarge"))
    assert bounded.pick == "ml.c5.xlarge" and bounded.fit_count == 2
    assert bounded.pick_usd_per_hour == price_table().price("eu-west-1", "ml.c5.xlarge")
    assert "eu-west-1" in bounded.why


def test_when_nothing_fits_there_is_no_pick_and_the_answer_says_why() -> None:
    answer = recommend_from_table("us-east-1", 10 * 1024**2, "gpu", allowed=("ml.m5.large",))
    assert answer.pick is None and answer.fit_count == 0
    assert "no hosting type fits" in answer.why


def _description(*recs: tuple[str, float, int]) -> dict[str, Any]:
    return {
        "JobName": "churn-predictor-abc",
        "JobType": "Default",
        "Status": "COMPLETED",
        "InferenceRecommendations": [
            {
                "Metrics": {
                    "CostPerHour": cost,
                    "CostPerInference": cost / 3600,
                    "MaxInvocations": 900,
                    "ModelLatency": latency,
                },
                "EndpointConfiguration": {
                    "EndpointName": "e",
                    "VariantName": "v",
                    "InstanceType": instance_type,
                    "InitialInstanceCount": 1,
                },
                "ModelConfiguration": {},
            }
            for instance_type, cost, latency in recs
        ],
    }


def test_the_jobs_pick_is_its_cheapest_recommendation_that_fits() -> None:
    table = recommend_from_table("us-east-1", 10 * 1024**2, "cpu")
    answer = pick_from_job(
        table, _description(("ml.g4dn.xlarge", 0.7, 5), ("ml.c5.xlarge", 0.2, 12), ("ml.m5.xlarge", 0.23, 10))
    )
    assert answer.pick == "ml.c5.xlarge" and answer.pick_usd_per_hour == 0.2
    assert "churn-predictor-abc" in answer.why
    judged = {r["instance_type"]: r for r in answer.job["recommendations"]}
    assert judged["ml.g4dn.xlarge"]["fits"] is False and "GPU" in judged["ml.g4dn.xlarge"]["why_not"]
    # none fits: the table's pick stands, saying so
    fallback = pick_from_job(table, _description(("ml.g4dn.xlarge", 0.7, 5)))
    assert fallback.pick == table.pick and "table's pick stands" in fallback.why


# --- the conf ------------------------------------------------------------------------------------------


def test_empty_is_table_only_and_settings_round_trip_through_the_plan() -> None:
    assert parse_recommendation({}, Problems()) == RecommendationSettings()
    settings = {
        "job": "advanced",
        "sample_payload_s3_uri": PAYLOAD,
        "instance_types": ["ml.m5.large", "ml.c5.xlarge"],
        "max_latency_ms": 100,
        "users": 2,
    }
    plan = _plan(_platform(inference_recommender=True), instance_recommendation=settings)
    parsed = plan.params.instance_recommendation
    assert parsed.enabled and parsed.instance_types == ("ml.m5.large", "ml.c5.xlarge")
    assert RecommendationSettings.from_dict(parsed.to_dict()) == parsed
    assert parse_recommendation(parsed.to_conf(), Problems()) == parsed
    assert None not in parsed.to_conf().values()


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"job": "fast"}, "instance_recommendation.job", "must be one of none, default, advanced"),
        ({"job": "default"}, "instance_recommendation.sample_payload_s3_uri", "required with job default"),
        (
            {"job": "advanced", "sample_payload_s3_uri": PAYLOAD},
            "instance_recommendation.instance_types",
            "required with job advanced",
        ),
        (
            {"instance_types": ["ml.m5.larg"]},
            "instance_recommendation.instance_types[0]",
            "did you mean ml.m5.large",
        ),
        ({"users": 3}, "instance_recommendation.users", "applies to job advanced only"),
        ({"processor": "tpu"}, "instance_recommendation.processor", "must be one of cpu, gpu, any"),
        ({"jb": "default"}, "instance_recommendation.jb", "did you mean 'job'"),
    ],
)
def test_each_rule_names_its_field(settings: dict[str, Any], field: str, rule: str) -> None:
    message = _refusal(_platform(inference_recommender=True), instance_recommendation=settings)
    assert field in message and rule in message
    assert len(message.splitlines()[0]) < 200


def test_a_job_needs_the_accounts_permission() -> None:
    message = _refusal(instance_recommendation={"job": "default", "sample_payload_s3_uri": PAYLOAD})
    assert "instance_recommendation.job" in message
    assert f"accounts.{SCIENTIST_ACCOUNT}.inference_recommender" in message


def test_auto_is_accepted_and_refused_where_there_is_no_endpoint_of_the_runs_own() -> None:
    plan = _plan(endpoint_instance_type="auto")
    assert plan.params.endpoint_instance_type == "auto"
    assert plan.skip_reason("recommend_instance") is None
    batch = {"input_s3_uri": f"s3://{DATA_BUCKET}/trials/"}
    message = _refusal(endpoint_instance_type="auto", batch=batch)
    assert "endpoint_instance_type" in message and '"auto" sizes an endpoint' in message
    assert "recommend_instance skipped" in str(_plan(batch=batch).skip_reason("recommend_instance"))


def test_the_accounts_allowed_types_bound_the_conf() -> None:
    platform = _platform(endpoint_instance_types=["ml.c5.large", "ml.m5.large"])
    assert (
        _plan(platform, endpoint_instance_type="ml.c5.large").params.endpoint_instance_type == "ml.c5.large"
    )
    message = _refusal(platform, endpoint_instance_type="ml.m5.xlarge")
    assert f"ml.m5.xlarge is not in accounts.{SCIENTIST_ACCOUNT}.endpoint_instance_types" in message
    bad = _refusal(_platform(endpoint_instance_types=["ml.m5.huge"]))
    assert f"platform.accounts.{SCIENTIST_ACCOUNT}.endpoint_instance_types" in bad


def test_deploy_resolves_auto_to_the_pick() -> None:
    raw = build_plan(
        demo_conf(endpoint_instance_type="auto"),
        _platform(),
        "sagemaker_deploy",
        "rec-1",
        triggered_by="admin",
    )
    resolved = resolve_instance_type(raw, {"pick": "ml.c5.large", "why": "cheapest"})
    assert Plan.from_xcom(resolved).params.endpoint_instance_type == "ml.c5.large"
    with pytest.raises(SageliftValidationError, match="endpoint_instance_type"):
        resolve_instance_type(raw, {"pick": None, "why": "no hosting type fits"})
    fixed = build_plan(demo_conf(), _platform(), "sagemaker_deploy", "rec-1", triggered_by="admin")
    assert resolve_instance_type(fixed, {"pick": "ml.c5.large"}) == fixed


# --- the job's request ---------------------------------------------------------------------------------


def test_the_default_jobs_request_is_valid_for_botocore() -> None:
    settings = RecommendationSettings(job="default", sample_payload_s3_uri=PAYLOAD)
    tags = [{"Key": "sagelift:model", "Value": "churn-predictor"}]
    request = build_recommendations_job_request(
        settings,
        job_name="churn-predictor-abc",
        role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model",
        model_package_arn=PACKAGE,
        instance_types=["ml.c5.large", "ml.m5.large"],
        framework_hint="XGBOOST",
        tags=tags,
    )
    assert validate_request("sagemaker", "CreateInferenceRecommendationsJob", request) == []
    assert request["JobType"] == "Default"
    config = request["InputConfig"]
    assert config["ModelPackageVersionArn"] == PACKAGE
    assert config["ContainerConfig"]["SupportedInstanceTypes"] == ["ml.c5.large", "ml.m5.large"]
    assert config["ContainerConfig"]["PayloadConfig"] == {
        "SamplePayloadUrl": PAYLOAD,
        "SupportedContentTypes": ["text/csv"],
    }
    assert "EndpointConfigurations" not in config and request["Tags"] == tags


def test_the_advanced_jobs_request_is_valid_for_botocore() -> None:
    settings = RecommendationSettings(
        job="advanced",
        sample_payload_s3_uri=PAYLOAD,
        instance_types=("ml.m5.large", "ml.c5.xlarge"),
        users=2,
        duration_seconds=300,
        max_latency_ms=100,
        max_invocations=600,
    )
    request = build_recommendations_job_request(
        settings,
        job_name="churn-predictor-abc",
        role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model",
        model_package_arn=PACKAGE,
        instance_types=settings.instance_types,
        framework_hint=None,
        tags=[],
        volume_kms_key="alias/sagelift",
    )
    assert validate_request("sagemaker", "CreateInferenceRecommendationsJob", request) == []
    config = request["InputConfig"]
    assert config["EndpointConfigurations"] == [
        {"InstanceType": "ml.m5.large"},
        {"InstanceType": "ml.c5.xlarge"},
    ]
    assert config["TrafficPattern"]["Phases"] == [
        {"InitialNumberOfUsers": 2, "SpawnRate": 1, "DurationInSeconds": 300}
    ]
    assert request["StoppingConditions"] == {
        "MaxInvocations": 600,
        "ModelLatencyThresholds": [{"Percentile": "P95", "ValueInMilliseconds": 100}],
    }
    assert config["VolumeKmsKeyId"] == "alias/sagelift"


def test_the_summary_shows_the_fits_with_prices_the_pick_and_why() -> None:
    from sagelift.domain.summary import build_run_summary, render_run_summary

    raw = build_plan(
        demo_conf(endpoint_instance_type="auto"),
        _platform(),
        "sagemaker_deploy",
        "rec-1",
        triggered_by="admin",
    )
    answer = recommend_from_table("us-east-1", 10 * 1024**2, "cpu").to_dict()
    answer.update(auto=True, endpoint_instance_type=answer["pick"])
    summary = build_run_summary(
        raw, images=None, training=None, model=None, endpoint=None, api=None, recommendation=answer
    )
    shown = summary["recommendation"]
    assert shown["pick"] == answer["pick"] and shown["fit_count"] == answer["fit_count"]
    assert len(shown["fits"]) == 5
    text = render_run_summary(summary)
    first = answer["fits"][0]
    assert f"{first['instance_type']} ${first['usd_per_hour']:g}/h" in text
    assert f"pick {answer['pick']} at ${answer['pick_usd_per_hour']:g}/h: the cheapest of" in text
    assert f'deployed {answer["pick"]} (endpoint_instance_type "auto")' in text
    skipped = build_run_summary(
        raw, images=None, training=None, model=None, endpoint=None, api=None, recommendation={"skipped": True}
    )
    assert skipped["recommendation"] is None and "Instance recommendation" not in render_run_summary(skipped)


def test_every_setting_is_documented_in_the_trigger_form_and_the_readme_whose_example_is_valid() -> None:
    import json

    from sagelift.dags.params import airflow_params
    from sagelift.domain.recommendation import _KEYS
    from tests.conftest import ROOT

    form = airflow_params()["instance_recommendation"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Instance recommendation") :]
    section = section[: section.index("\n### ")]
    for key in _KEYS:
        assert key in form.description, key
        assert f"`{key}`" in section, key
    example = json.loads(
        section[section.index("```json") + 7 : section.index("```\n", section.index("```json"))]
    )
    plan = _plan(_platform(inference_recommender=True), **example)
    assert plan.params.endpoint_instance_type == "auto" and plan.params.instance_recommendation.enabled
    assert "auto" in airflow_params()["endpoint_instance_type"].description
