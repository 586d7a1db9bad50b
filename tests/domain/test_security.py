"""Network and encryption (issue 17 item 4): the platform's per-account settings, checked when the platform
is read, shape every SageMaker request (golden bodies checked against botocore's model), and the IAM
templates grant exactly the EC2 and KMS permissions they need."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.onboarding import render_policies
from sagelift.domain.params import parse_params
from sagelift.domain.plan import derive_names
from sagelift.domain.platform import PlatformConfig, SageMakerSettings
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_model_request,
    build_training_job_request,
)
from tests.support.botocore_validation import validate_request
from tests.support.scenario import demo_conf

GOLDEN = Path(__file__).parent / "golden" / "sagemaker_network.json"
ACCOUNT = "333333333333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NETWORK = {
    "subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "security_group_ids": ["sg-0123456789abcdef0"],
    "volume_kms_key": KEY,
    "output_kms_key": "alias/sagelift-output",
    "endpoint_kms_key": KEY,
    "inter_container_traffic_encryption": True,
}


def _platform(network: object = None, region: str = "us-east-1") -> PlatformConfig:
    account: dict = {} if network is None else {"network": network}
    return PlatformConfig.from_dict(
        {
            "region": region,
            "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
            "accounts": {ACCOUNT: account},
        }
    )


def _refusals(network: object, region: str = "us-east-1") -> list[tuple[str, str]]:
    with pytest.raises(SageliftValidationError) as err:
        _platform(network, region)
    return err.value.problems


def _bodies(conf: dict, network_raw: dict) -> dict[str, dict]:
    params = parse_params(conf)
    names = derive_names(params.model_name, "sagemaker_deploy", "manual__2026-11-29T10:00:00+00:00")
    network = _platform(network_raw).account(ACCOUNT).network
    settings = SageMakerSettings()
    bodies = {
        "CreateModel": build_model_request(
            params,
            names,
            region="us-east-1",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/m",
            model_data_url="s3://b/m.tar.gz",
            tags=[],
            network=network,
        ),
        "CreateEndpointConfig": build_endpoint_config_request(
            params, names, tags=[], settings=settings, network=network
        ),
    }
    if params.trains:
        bodies["CreateTrainingJob"] = build_training_job_request(
            params,
            names,
            region="us-east-1",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/t",
            tags=[],
            settings=settings,
            network=network,
        )
    return bodies


def test_network_isolation_is_on_by_default():
    network = _platform().account(ACCOUNT).network
    bodies = _bodies(demo_conf(), {})
    assert network.network_isolation is True
    assert bodies["CreateTrainingJob"]["EnableNetworkIsolation"] is True
    assert bodies["CreateTrainingJob"]["EnableInterContainerTrafficEncryption"] is False
    assert bodies["CreateModel"]["EnableNetworkIsolation"] is True
    assert "VpcConfig" not in bodies["CreateTrainingJob"] and "KmsKeyId" not in bodies["CreateEndpointConfig"]


def test_network_settings_reach_every_request_golden_and_botocore_valid():
    bodies = _bodies(demo_conf(), NETWORK)
    for operation, body in bodies.items():
        assert validate_request("sagemaker", operation, body) == [], operation
    training = bodies["CreateTrainingJob"]
    vpc = {"SecurityGroupIds": NETWORK["security_group_ids"], "Subnets": NETWORK["subnets"]}
    assert training["VpcConfig"] == vpc and bodies["CreateModel"]["VpcConfig"] == vpc
    assert training["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert training["OutputDataConfig"] == {
        "S3OutputPath": demo_conf()["training_s3_output_path"],
        "KmsKeyId": "alias/sagelift-output",
    }
    assert training["EnableInterContainerTrafficEncryption"] is True
    assert bodies["CreateEndpointConfig"]["KmsKeyId"] == KEY
    if os.environ.get("SAGELIFT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(bodies, indent=2, sort_keys=True) + "\n")
    assert bodies == json.loads(GOLDEN.read_text())


def test_serverless_gets_no_volume_key_and_async_results_use_the_output_key():
    serverless = _bodies(demo_conf(endpoint={"mode": "serverless"}), NETWORK)["CreateEndpointConfig"]
    assert "KmsKeyId" not in serverless
    assert validate_request("sagemaker", "CreateEndpointConfig", serverless) == []
    asynchronous = _bodies(
        demo_conf(endpoint={"mode": "async", "async_inference": {"output_s3_uri": "s3://captures-1/a/"}}),
        NETWORK,
    )["CreateEndpointConfig"]
    assert asynchronous["KmsKeyId"] == KEY
    assert asynchronous["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == "alias/sagelift-output"


def test_instances_with_local_storage_get_no_volume_key():
    # SageMaker refuses a VolumeKmsKeyId for them; their local volumes are encrypted by the hardware.
    training = _bodies(demo_conf(training_instance_type="ml.g4dn.xlarge"), NETWORK)["CreateTrainingJob"]
    assert "VolumeKmsKeyId" not in training["ResourceConfig"]
    assert training["OutputDataConfig"]["KmsKeyId"] == "alias/sagelift-output"


@pytest.mark.parametrize(
    ("network", "field", "words"),
    [
        ({"subnets": ["subnet-1"], "security_group_ids": ["sg-0123456789abcdef0"]}, "subnets[0]", "subnet-"),
        (
            {"subnets": ["subnet-0123456789abcdef0"]},
            "security_group_ids",
            "both subnets and security_group_ids",
        ),
        (
            {
                "subnets": ["subnet-0123456789abcdef0"],
                "security_group_ids": [f"sg-0123456789abcde{i:02d}" for i in range(6)],
            },
            "security_group_ids",
            "at most 5",
        ),
        ({"volume_kms_key": "arn:aws:kms:us-east-1:444444444444:key/abc"}, "volume_kms_key", "account"),
        ({"endpoint_kms_key": "arn:aws:kms:eu-west-1:333333333333:alias/k"}, "endpoint_kms_key", "region"),
        ({"output_kms_key": "my key"}, "output_kms_key", "KMS key"),
        ({"network_isolation": "yes"}, "network_isolation", "true or false"),
        ({"subnet": []}, "subnet", "unknown setting"),
        ("on", "", "must be an object"),
    ],
)
def test_bad_network_settings_are_refused_naming_the_field(network, field, words):
    name = f"platform.accounts.{ACCOUNT}.network" + (f".{field}" if field else "")
    assert [rule for f, rule in _refusals(network) if f == name and words in rule], _refusals(network)


def _statements(policy: dict) -> list[dict]:
    return policy["Statement"]


def _actions(policies: dict) -> set[str]:
    return {
        action
        for policy in policies.values()
        for s in _statements(policy)
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }


def _policies(network: dict | None) -> dict:
    return render_policies(
        _platform(network),
        ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )


def test_iam_grants_exactly_what_the_network_settings_need():
    without = _actions(_policies(None))
    assert not {a for a in without if a.startswith(("ec2:", "kms:"))}
    policies = _policies(NETWORK)
    role = {s["Sid"]: s for s in _statements(policies["training-and-model-permissions"])}
    assert role["VpcNetworkInterfacesInTheListedSubnets"]["Resource"] == [
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:network-interface/*",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-0123456789abcdef0",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-0fedcba9876543210",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123456789abcdef0",
    ]
    # the key by its ARN; the alias through kms:ResourceAliases (IAM matches keys, never aliases)
    assert role["KmsKeysOfTheAccountSettings"]["Resource"] == [KEY]
    by_alias = role["KmsKeysOfTheAccountSettingsByAlias"]
    assert by_alias["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/sagelift-output"]}
    }
    assert set(by_alias["Action"]) == {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"}
    execution = [s for s in _statements(policies["execution-permissions"]) if s["Sid"].startswith("Kms")]
    assert {s["Action"][0] for s in execution} == {"kms:CreateGrant"}
    assert all(s["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"} for s in execution)
    # nothing else changed: the new actions are EC2's ENI and describe actions and the three KMS ones
    added = _actions(policies) - without
    assert added == {
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }


def test_network_policies_pass_the_parliament_linter():
    from parliament import analyze_policy_string

    policies = _policies(NETWORK)
    findings = {}
    for name in ("training-and-model-permissions", "execution-permissions"):
        policy = analyze_policy_string(json.dumps(policies[name]))
        serious = [
            f"{f.issue}: {f.detail}"
            for f in policy.findings
            if f.severity in ("HIGH", "MEDIUM", "CRITICAL")
            or f.issue in ("UNKNOWN_ACTION", "UNKNOWN_PREFIX", "MALFORMED")
        ]
        if serious:
            findings[name] = serious
    assert findings == {}


def test_the_readme_section_names_every_network_setting():
    from dataclasses import fields

    from sagelift.domain.security import NetworkSettings
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Network and encryption")
    section = readme[start : readme.index("\n## ", start)]
    for setting in fields(NetworkSettings):
        assert f"`{setting.name}`" in section, setting.name
