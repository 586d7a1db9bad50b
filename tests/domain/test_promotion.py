"""Staged promotion's rules: promote_from, a registration's stages, each stage's conf, the source version."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.kfp import build_run_parameters
from sagelift.domain.params import default_conf, parse_params
from sagelift.domain.plan import build_plan
from sagelift.domain.promotion import (
    PromoteFrom,
    Stage,
    parse_source_version,
    parse_stages,
    stage_conf,
)
from tests.support.scenario import demo_conf

STAGING, PRODUCTION = "333333333333", "444444444444"
PLATFORM = {
    "region": "us-east-1",
    "accounts": {
        STAGING: {"deployers": {"users": ["priya", "marco"]}},
        PRODUCTION: {"deployers": {"users": ["priya"]}},
    },
}
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"{STAGING}.dkr.ecr.us-east-1.amazonaws.com/sagelift/churn-serving@{DIGEST}"
STAGES = [{"name": "staging", "account_id": STAGING}, {"name": "production", "account_id": PRODUCTION}]


def promoted_conf(**overrides):
    conf = default_conf()
    conf.update(
        model_name="churn-predictor",
        account_id=PRODUCTION,
        promote_from={"account_id": STAGING, "version": 3},
    )
    conf.update(overrides)
    return conf


def test_a_promoted_run_trains_nothing_and_deploys_the_version():
    params = parse_params(promoted_conf())
    assert params.promote_from == PromoteFrom(STAGING, 3)
    assert not params.trains and params.deploys
    # the form and the REST API may send it as JSON text, and the version as a string
    assert (
        parse_params(promoted_conf(promote_from=f'{{"account_id": "{STAGING}", "version": "3"}}')) == params
    )


@pytest.mark.parametrize(
    ("promote_from", "field", "rule"),
    [
        ({"account_id": PRODUCTION, "version": 3}, "promote_from.account_id", "must be another account"),
        ({"account_id": "3333", "version": 3}, "promote_from.account_id", "twelve-digit"),
        ({"account_id": STAGING}, "promote_from.version", "required: the model package version"),
        (
            {"account_id": STAGING, "version": 0},
            "promote_from.version",
            "required: the model package version",
        ),
        ({"account_id": STAGING, "version": 3, "arn": "x"}, "promote_from.'arn'", "unknown key"),
        ("[1]", "promote_from", "must be a JSON object"),
    ],
)
def test_promote_from_refusals_name_the_field(promote_from, field, rule):
    with pytest.raises(SageliftValidationError) as raised:
        parse_params(promoted_conf(promote_from=promote_from))
    assert field in raised.value.fields
    message = str(raised.value)
    assert rule in message
    assert all(len(line) < 200 for line in message.splitlines())


def test_a_promoted_run_refuses_its_own_training_or_image():
    with pytest.raises(SageliftValidationError) as raised:
        parse_params(promoted_conf(training_docker_image=demo_conf()["training_docker_image"]))
    assert raised.value.fields == ["training_docker_image"]
    assert "must be empty with promote_from" in str(raised.value)


def test_a_promotion_cannot_be_planned_yet():
    with pytest.raises(SageliftValidationError) as raised:
        parse_params(promoted_conf(plan_only=True))
    assert raised.value.fields == ["plan_only"]
    assert "not available with promote_from yet" in str(raised.value)


def test_validate_refuses_a_user_who_is_not_a_deployer_in_the_source_account():
    build_plan(promoted_conf(), PLATFORM, "sagemaker_deploy", "r1", triggered_by="priya")
    swapped = promoted_conf(account_id=STAGING, promote_from={"account_id": PRODUCTION, "version": 3})
    with pytest.raises(SageliftValidationError) as raised:
        build_plan(swapped, PLATFORM, "sagemaker_deploy", "r1", triggered_by="marco")
    assert raised.value.fields == ["promote_from.account_id"]
    assert f"user 'marco' may not deploy into account {PRODUCTION}" in str(raised.value)


def test_the_kfp_engine_refuses_promote_from_saying_why():
    plain = parse_params({**default_conf(), **demo_conf()})
    assert "promote_from" not in build_run_parameters(plain.to_dict())
    with pytest.raises(SageliftValidationError) as raised:
        build_run_parameters(parse_params(promoted_conf()).to_dict())
    assert raised.value.fields == ["promote_from"]
    assert "promotion waits for approval, which only the Airflow DAG has" in str(raised.value)


def test_stages_are_distinct_accounts_starting_with_the_conf_account():
    problems = Problems()
    stages = parse_stages(STAGES, problems, conf_account_id=STAGING)
    assert not problems and stages == (Stage("staging", STAGING), Stage("production", PRODUCTION))
    for raw, conf_account, needle in [
        (STAGES[:1], STAGING, "2 to 4 stages"),
        ([STAGES[0], {**STAGES[1], "account_id": STAGING}], STAGING, "its own account_id"),
        ([STAGES[0], {**STAGES[1], "name": "staging"}], STAGING, "its own name"),
        (STAGES, PRODUCTION, "the first stage's account_id must be the conf's"),
        ([STAGES[0], {"name": "Prod!", "account_id": PRODUCTION}], STAGING, "lower-case"),
        (STAGES * 3, STAGING, "2 to 4 stages"),
    ]:
        problems = Problems()
        assert parse_stages(raw, problems, conf_account_id=conf_account) == ()
        assert needle in str(problems.items), (raw, problems.items)


def test_a_stage_conf_keeps_the_serving_settings_and_promotes_the_previous_version():
    registered = {**demo_conf(), "quality_gate": ["validation:auc >= 0.8"], "endpoint": {"instance_count": 2}}
    conf = stage_conf(registered, Stage("production", PRODUCTION), PromoteFrom(STAGING, 7))
    assert conf == {
        "model_name": "churn-predictor",
        "environment": registered["environment"],
        "endpoint_instance_type": "ml.m5.large",
        "endpoint": {"instance_count": 2},
        "account_id": PRODUCTION,
        "promote_from": {"account_id": STAGING, "version": 7},
    }
    params = parse_params({**default_conf(), **conf})
    assert params.promote_from.version == 7


def test_the_source_version_must_be_one_digest_pinned_container_with_an_artifact():
    promote = PromoteFrom(STAGING, 3)
    arn = promote.package_arn("us-east-1", "churn-predictor")
    good = {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/m.tar.gz"}]},
    }
    version = parse_source_version(good, promote)
    assert (version.image, version.model_data_url, version.package_arn) == (IMAGE, "s3://b/m.tar.gz", arn)
    for change, needle in [
        ({"ModelApprovalStatus": "Rejected"}, "is Rejected"),
        ({"InferenceSpecification": {"Containers": []}}, "has 0 containers"),
        (
            {"InferenceSpecification": {"Containers": [{"Image": "x:1", "ModelDataUrl": "s3://b/m"}]}},
            "not pinned by digest",
        ),
    ]:
        with pytest.raises(SageliftValidationError) as raised:
            parse_source_version({**good, **change}, promote)
        assert raised.value.fields == ["promote_from.version"] and needle in str(raised.value)
