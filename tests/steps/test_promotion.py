"""The promotion step's own refusals: the user checked again when acting, the source version read back."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.params import default_conf
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import PlatformConfig
from sagelift.steps.promotion import promote_images, promoted_artifact, read_source_version
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT

STAGING, PRODUCTION = SCIENTIST_ACCOUNT, "444444444444"
DIGEST = "sha256:" + "cd" * 32
IMAGE = f"{STAGING}.dkr.ecr.{REGION}.amazonaws.com/sagelift/churn-serving@{DIGEST}"


def _platform(staging_deployers: list[str]) -> dict:
    return {
        "region": REGION,
        "accounts": {
            STAGING: {"deployers": {"users": staging_deployers}},
            PRODUCTION: {"deployers": {"users": ["priya"]}},
        },
    }


def _plan(version: int = 1) -> Plan:
    conf = {
        **default_conf(),
        "model_name": "churn-predictor",
        "account_id": PRODUCTION,
        "promote_from": {"account_id": STAGING, "version": version},
    }
    return Plan.from_xcom(
        build_plan(conf, _platform(["priya"]), "sagemaker_deploy", "r1", triggered_by="priya")
    )


def _unreachable(service: str, region: str | None = None):
    raise AssertionError(f"no AWS call may be made, got a {service} client")


def test_a_user_removed_from_the_source_deployers_since_validate_is_refused_before_any_call():
    now = PlatformConfig.from_dict(_platform(["marco"]))
    with pytest.raises(SageliftValidationError) as refused:
        promote_images(_plan(), _unreachable, _unreachable, [], platform=now)
    assert refused.value.fields == ["promote_from.account_id"]
    assert f"user 'priya' may not deploy into account {STAGING}" in str(refused.value)


def test_the_source_version_is_read_from_the_source_accounts_registry(local_aws):
    sm = local_aws.client("sagemaker", STAGING)
    sm.create_model_package_group(ModelPackageGroupName="churn-predictor")
    sm.create_model_package(
        ModelPackageGroupName="churn-predictor",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://scientist-ml-data/churn/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )

    version = read_source_version(sm, _plan(1))
    assert (version.image, version.model_data_url, version.version) == (
        IMAGE,
        "s3://scientist-ml-data/churn/model.tar.gz",
        1,
    )
    entry = {"model_docker_image": {"image": "x", "promote_from": version.to_dict()}}
    assert promoted_artifact(entry) == "s3://scientist-ml-data/churn/model.tar.gz"
    assert promoted_artifact({"model_docker_image": {"image": "x"}}) is None

    with pytest.raises(SageliftValidationError) as unknown:
        read_source_version(sm, _plan(7))
    assert unknown.value.fields == ["promote_from.version"]
    assert f"no version 7 of model package group churn-predictor in account {STAGING}" in str(unknown.value)
    # the production account has no such group: the version exists only where staging registered it
    with pytest.raises(SageliftValidationError):
        read_source_version(local_aws.client("sagemaker", PRODUCTION), _plan(1))


def test_the_approval_of_a_promoted_run_shows_the_promoted_image(local_aws):
    from sagelift.steps.approval import approval_changes

    platform = _platform(["priya"])
    platform["accounts"][PRODUCTION]["requires_approval"] = True
    conf = {
        **default_conf(),
        "model_name": "churn-predictor",
        "account_id": PRODUCTION,
        "promote_from": {"account_id": STAGING, "version": 1},
    }
    plan = Plan.from_xcom(build_plan(conf, platform, "sagemaker_deploy", "r1", triggered_by="priya"))
    promoted_image = f"{PRODUCTION}.dkr.ecr.{REGION}.amazonaws.com/sagelift/churn-serving@{DIGEST}"
    registered = {
        "model_package_arn": f"arn:aws:sagemaker:{REGION}:{PRODUCTION}:model-package/churn-predictor/1",
        "version": 1,
        "status": "PendingManualApproval",
        "image": promoted_image,
        "model_data_url": "s3://scientist-ml-data/churn/model.tar.gz",
        "promoted_from": f"arn:aws:sagemaker:{REGION}:{STAGING}:model-package/churn-predictor/1",
    }

    changes = approval_changes(
        plan, lambda service, region=None: local_aws.client(service, PRODUCTION), [], registered
    )

    assert promoted_image in repr(changes)
