"""Multi-model endpoints (issue 20 item 1): the platform's shared endpoints, the conf's rules at validate,
and the shared model's requests, validated against botocore's service model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.multi_model import (
    MultiModelSettings,
    artifact_uri,
    build_shared_endpoint_config_request,
    build_shared_endpoint_request,
    build_shared_model_request,
    derive_target_model,
    multi_model_algorithms,
    parse_multi_model,
)
from sagelift.domain.onboarding import render_policies
from sagelift.domain.params import builtin_algorithms
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.summary import build_run_summary, render_run_summary
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, REGION, demo_conf

SERVING = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving"
PREFIX = f"s3://{DATA_BUCKET}/mme/fraud/"


def _platform(**endpoint: Any) -> dict[str, Any]:
    fraud = {"prefix": PREFIX, "image": SERVING + ":1.4", "instance_type": "ml.m5.xlarge", **endpoint}
    return {
        "region": REGION,
        "multi_model_images": [SERVING],
        "accounts": {
            SCIENTIST_ACCOUNT: {
                "deployers": {"users": ["admin"]},
                "multi_model_endpoints": {
                    "fraud": fraud,
                    "tabular": {"prefix": f"s3://{DATA_BUCKET}/mme/tabular/", "algorithm": "xgboost"},
                },
            }
        },
    }


def _plan(platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    raw = build_plan(
        demo_conf(**conf), platform or _platform(), "sagemaker_deploy", "mme-1", triggered_by="admin"
    )
    return Plan.from_xcom(raw)


def _refusal(platform: dict[str, Any] | None = None, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        _plan(platform, **conf)
    return str(err.value)


def test_off_by_default_and_the_setting_round_trips_through_the_plan_and_the_kfp_struct() -> None:
    problems = Problems()
    assert parse_multi_model(None, problems) == MultiModelSettings() and not problems
    assert MultiModelSettings().to_conf() == {}
    plan = _plan(multi_model={"endpoint": "fraud"})
    assert plan.params.multi_model.enabled and plan.params.multi_model.to_conf() == {"endpoint": "fraud"}
    assert _plan(multi_model='{"endpoint": "fraud"}').params.multi_model == plan.params.multi_model


@pytest.mark.parametrize(
    ("conf", "field", "rule"),
    [
        (
            {"multi_model": {"endpoint": "payments"}},
            "multi_model.endpoint",
            "is not a shared multi-model endpoint",
        ),
        ({"multi_model": {}}, None, None),
        ({"multi_model": {"team": "fraud"}}, "multi_model.team", ""),
        ({"multi_model": {"endpoint": "Fraud!"}}, "multi_model.endpoint", "a team name"),
        (
            {"multi_model": {"endpoint": "fraud"}, "endpoint": {"instance_count": 2}},
            "endpoint",
            "are the platform's",
        ),
        (
            {"multi_model": {"endpoint": "fraud"}, "endpoint_instance_type": "ml.c5.large"},
            "endpoint_instance_type",
            "runs on ml.m5.xlarge",
        ),
        (
            {"multi_model": {"endpoint": "fraud"}, "plan_only": True},
            "plan_only",
            "not available with multi_model",
        ),
        (
            {"multi_model": {"endpoint": "fraud"}, "batch": {"input_s3_uri": f"s3://{DATA_BUCKET}/in/"}},
            "multi_model",
            "batch scores offline",
        ),
        (
            {"multi_model": {"endpoint": "fraud"}, "model_docker_image": "docker.io/team/other:1"},
            "model_docker_image",
            "team fraud's multi-model endpoint serves another image",
        ),
        (
            {
                "multi_model": {"endpoint": "tabular"},
                "model_docker_image": None,
                "training_docker_image": None,
                "training_algorithm_name": "object-detection",
            },
            "training_algorithm_name",
            "does not serve multi-model endpoints",
        ),
    ],
)
def test_validate_refuses_what_a_shared_endpoint_cannot_serve(
    conf: dict[str, Any], field: str, rule: str
) -> None:
    if field is None:  # an empty object is off
        assert not _plan(**conf).params.multi_model.enabled
        return
    message = _refusal(**conf)
    first = message.splitlines()[0]
    assert len(first) < 200
    assert f"{field}: " in message and rule in message


def test_a_built_in_algorithm_endpoint_serves_runs_of_that_algorithm() -> None:
    plan = _plan(
        multi_model={"endpoint": "tabular"},
        model_docker_image=None,
        training_docker_image=None,
        training_algorithm_name="xgboost",
    )
    assert plan.params.multi_model.endpoint == "tabular"


def test_the_platform_refuses_an_endpoint_whose_image_cannot_serve_multi_model() -> None:
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict({**_platform(), "multi_model_images": []})
    assert "multi_model_endpoints.fraud.image" in str(err.value)
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(_platform(image=None, algorithm="seq2seq"))
    assert "does not serve multi-model endpoints" in str(err.value)
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(_platform(prefix="s3://x"))
    assert "multi_model_endpoints.fraud.prefix" in str(err.value)


def test_a_prefix_leaves_room_in_s3s_1024_byte_keys_for_every_models_artifact() -> None:
    longest = f"s3://{DATA_BUCKET}/" + "p" * 953 + "/"
    plan = _plan(_platform(prefix=longest), multi_model={"endpoint": "fraud"}, model_name="m" * 54)
    endpoint = plan.platform.account(SCIENTIST_ACCOUNT).multi_model_endpoints["fraud"]
    target = derive_target_model(plan.model_name, plan.names.run_key)
    assert len(artifact_uri(endpoint, target).removeprefix(f"s3://{DATA_BUCKET}/").encode()) == 1024
    for prefix in (f"s3://{DATA_BUCKET}/" + "p" * 954 + "/", f"s3://{DATA_BUCKET}/" + "é" * 500 + "/"):
        with pytest.raises(SageliftValidationError) as err:
            PlatformConfig.from_dict(_platform(prefix=prefix))
        first = str(err.value).splitlines()[0]
        assert first.startswith(f"platform.accounts.{SCIENTIST_ACCOUNT}.multi_model_endpoints.fraud.prefix")
        assert "at most 954 bytes" in first and len(first) < 200


def test_the_algorithm_table_covers_every_built_in_algorithm() -> None:
    table = multi_model_algorithms()
    assert set(table) == set(builtin_algorithms())
    assert {a for a, ok in table.items() if ok} == {"xgboost", "knn", "linear-learner", "randomcutforest"}


def test_the_shared_requests_are_valid_for_botocore_and_carry_no_owner_tag() -> None:
    platform = PlatformConfig.from_dict(_platform())
    account = platform.account(SCIENTIST_ACCOUNT)
    for team in ("fraud", "tabular"):
        endpoint = account.multi_model_endpoints[team]
        model = build_shared_model_request(
            endpoint,
            region=REGION,
            role_arn=platform.model_role_arn(SCIENTIST_ACCOUNT),
            network=account.network,
        )
        assert model["PrimaryContainer"]["Mode"] == "MultiModel"
        assert model["PrimaryContainer"]["ModelDataUrl"] == endpoint.prefix
        config = build_shared_endpoint_config_request(endpoint, account.network)
        assert validate_request("sagemaker", "CreateModel", model) == []
        assert validate_request("sagemaker", "CreateEndpointConfig", config) == []
        assert validate_request("sagemaker", "CreateEndpoint", build_shared_endpoint_request(endpoint)) == []
        assert [t["Key"] for t in model["Tags"]] == ["sagelift:multi-model-endpoint"]
    assert derive_target_model("churn-predictor", "abc123") == "churn-predictor/abc123.tar.gz"


def test_the_summary_shows_the_shared_endpoint_the_models_key_and_the_route() -> None:
    plan = _plan(multi_model={"endpoint": "fraud"})
    placement = {
        "team": "fraud",
        "endpoint_name": "sagelift-mme-fraud",
        "target_model": "churn-predictor/abc.tar.gz",
        "artifact_s3_uri": PREFIX + "churn-predictor/abc.tar.gz",
        "source_s3_uri": f"s3://{DATA_BUCKET}/out/model.tar.gz",
    }
    endpoint = {
        "Endpoint": {"EndpointName": "sagelift-mme-fraud", "EndpointStatus": "InService"},
        "MultiModel": placement,
    }
    api = {
        "invoke_url": "https://x.execute-api.us-east-1.amazonaws.com/prod/models/churn-predictor/invocations"
    }
    summary = build_run_summary(
        plan.to_xcom(),
        images=None,
        training=None,
        model={"Model": {"ModelName": "sagelift-mme-fraud"}, "MultiModel": placement},
        endpoint=endpoint,
        api=api,
    )
    assert summary["multi_model"]["endpoint"] == "sagelift-mme-fraud"
    [model] = [r for r in summary["resources"] if r["kind"] == "model"]
    assert model == {
        "kind": "model",
        "name": "sagelift-mme-fraud",
        "action": "shared: this model's artifact added",
    }
    [shared] = [r for r in summary["resources"] if r["kind"] == "shared multi-model endpoint"]
    assert shared["action"] == "serving this model as TargetModel churn-predictor/abc.tar.gz"
    assert not [r for r in summary["resources"] if r["kind"] == "endpoint config"]
    text = render_run_summary(summary)
    assert (
        "team fraud's sagelift-mme-fraud serves this model as TargetModel churn-predictor/abc.tar.gz" in text
    )
    assert (
        "POST https://x.execute-api.us-east-1.amazonaws.com/prod/models/churn-predictor/invocations" in text
    )


def test_onboarding_grants_the_execution_role_the_prefixes_and_the_model_role_reads_them() -> None:
    from parliament import analyze_policy_string

    platform = PlatformConfig.from_dict(
        {**_platform(), "master_role_arn": "arn:aws:iam::111111111111:role/m"}
    )
    policies = render_policies(
        platform,
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
        data_uris=[f"s3://{DATA_BUCKET}/churn/"],
        output_uris=[f"s3://{DATA_BUCKET}/churn/output/"],
    )
    execution = {s.get("Sid"): s for s in policies["execution-permissions"]["Statement"]}
    place = execution["PlaceAndRemoveModelsOnTheTeamsSharedMultiModelEndpoints"]
    assert place["Action"] == ["s3:PutObject", "s3:DeleteObject"]
    assert place["Resource"] == [
        f"arn:aws:s3:::{DATA_BUCKET}/mme/fraud/*",
        f"arn:aws:s3:::{DATA_BUCKET}/mme/tabular/*",
    ]
    assert execution["ListTheModelsOfTheSharedMultiModelEndpoints"]["Resource"] == [
        f"arn:aws:s3:::{DATA_BUCKET}"
    ]
    model_role = {s.get("Sid"): s for s in policies["training-and-model-permissions"]["Statement"]}
    assert f"arn:aws:s3:::{DATA_BUCKET}/mme/fraud/*" in model_role["ReadDataAndArtifacts"]["Resource"]
    for name in ("execution-permissions", "training-and-model-permissions"):
        findings = analyze_policy_string(json.dumps(policies[name])).findings
        assert [f.issue for f in findings if f.severity in ("HIGH", "MEDIUM", "CRITICAL")] == []


def test_the_readme_examples_validate_together() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Multi-model endpoints") :]
    section = section[: section.index("\n### ")]
    blocks = [part.split("```", 1)[0] for part in section.split("```json")[1:]]
    conf, platform = (json.loads(block) for block in blocks)
    platform["region"] = REGION
    platform["accounts"][SCIENTIST_ACCOUNT]["deployers"] = {"users": ["admin"]}
    plan = _plan(platform, **conf)
    assert plan.params.multi_model.endpoint == "fraud-team"
    assert "multi_model_algorithms.json" in section and "sagelift-mme-<team>" in section


def test_a_built_in_algorithm_endpoint_needs_the_algorithms_image_in_the_region() -> None:
    platform = _platform()
    platform["region"] = "ap-southeast-7"  # a region the algorithm table has no registry for
    message = _refusal(
        platform,
        multi_model={"endpoint": "tabular"},
        model_docker_image=None,
        training_docker_image=None,
        training_algorithm_name="xgboost",
    )
    assert (
        "multi_model.endpoint: team tabular's endpoint serves xgboost, which has no image in ap-southeast-7"
        in message
    )
