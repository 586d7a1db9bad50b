"""Onboarding renders least-privilege IAM policies (checked with parliament) and a matching connection."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.onboarding import POLICIES, render_connection, render_policies
from sagelift.domain.platform import PlatformConfig
from tests.conftest import ROOT

PLATFORM = PlatformConfig.from_dict(
    {
        "region": "us-east-1",
        "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
        "master_external_id": "sagelift-master-4711",
        "tags_s3_uri": "s3://platform-config/tags/standard-tags.json",
        "accounts": {
            "333333333333": {"execution_external_id": "scientist-333-xyz"},
            "444444444444": {"execution_role_name": "custom-execution"},
        },
    }
)
RUNNER = "arn:aws:iam::111111111111:role/airflow-workers"


@pytest.fixture(scope="module")
def policies():
    return render_policies(
        PLATFORM,
        "333333333333",
        runner_principal_arn=RUNNER,
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )


def test_every_template_renders_to_json(policies):
    assert set(policies) == {name for name, _, _ in POLICIES}


def test_trust_chain_runner_master_execution(policies):
    master = policies["master-trust"]["Statement"][0]
    assert master["Principal"] == {"AWS": RUNNER}
    assert master["Condition"] == {"StringEquals": {"sts:ExternalId": "sagelift-master-4711"}}
    execution = policies["execution-trust"]["Statement"][0]
    assert execution["Principal"] == {"AWS": PLATFORM.master_role_arn}
    assert execution["Condition"] == {"StringEquals": {"sts:ExternalId": "scientist-333-xyz"}}
    assert policies["master-permissions"]["Statement"][0]["Resource"] == [
        "arn:aws:iam::333333333333:role/sagelift-pipeline-execution",
        "arn:aws:iam::444444444444:role/custom-execution",
    ]


def test_pass_role_is_limited_to_sagemaker_and_api_gateway(policies):
    pass_roles = [s for s in policies["execution-permissions"]["Statement"] if s["Action"] == "iam:PassRole"]
    assert {s["Condition"]["StringEquals"]["iam:PassedToService"] for s in pass_roles} == {
        "sagemaker.amazonaws.com",
        "apigateway.amazonaws.com",
    }
    resources = [
        r for s in pass_roles for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert all(r.startswith("arn:aws:iam::333333333333:role/") for r in resources)


def test_policies_pass_the_parliament_linter(policies):
    from parliament import analyze_policy_string

    findings = {}
    for name, document in policies.items():
        if name.endswith("-trust"):
            # parliament lints identity policies; a trust policy applies to its own role, so lint it as
            # a statement on that role (its principals and conditions are asserted above).
            document = {
                **document,
                "Statement": [
                    {**s, "Resource": "arn:aws:iam::333333333333:role/x"} for s in document["Statement"]
                ],
            }
            document["Statement"] = [
                {k: v for k, v in s.items() if k != "Principal"} for s in document["Statement"]
            ]
        policy = analyze_policy_string(json.dumps(document))
        serious = [
            f"{f.issue}: {f.detail}"
            for f in policy.findings
            if f.severity in ("HIGH", "MEDIUM", "CRITICAL")
            or f.issue in ("UNKNOWN_ACTION", "UNKNOWN_PREFIX", "MALFORMED")
        ]
        if serious:
            findings[name] = serious
    assert findings == {}


def test_linter_catches_a_broken_policy():
    from parliament import analyze_policy_string

    policy = analyze_policy_string(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:HeadObject", "Resource": "*"}],
            }
        )
    )
    assert any(f.issue == "UNKNOWN_ACTION" for f in policy.findings)


def test_connection_performs_the_platform_chain_without_credentials():
    connection = render_connection(PLATFORM, "333333333333")
    extra = connection["extra"]
    assert extra["role_chain"] == [
        {"role_arn": PLATFORM.master_role_arn, "external_id": "sagelift-master-4711"}
    ]
    assert extra["role_arn"] == "arn:aws:iam::333333333333:role/sagelift-pipeline-execution"
    assert extra["assume_role_kwargs"] == {"ExternalId": "scientist-333-xyz"}
    assert "login" not in connection and "password" not in connection


def test_unknown_accounts_cannot_be_onboarded_by_accident():
    with pytest.raises(SageliftValidationError, match="not onboarded"):
        render_connection(PLATFORM, "555555555555")


def test_onboard_command_writes_policies_and_prints_the_connection(tmp_path):
    platform_file = tmp_path / "platform.json"
    platform_file.write_text(
        json.dumps(
            {
                "region": "us-east-1",
                "master_role_arn": PLATFORM.master_role_arn,
                "accounts": {"333333333333": {}},
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/onboard.py"),
            "--platform",
            str(platform_file),
            "--account",
            "333333333333",
            "--runner",
            RUNNER,
            "--data",
            "s3://bkt/data/",
            "--output",
            "s3://bkt/out/",
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "airflow connections add sagelift_aws_333333333333 --conn-json" in result.stdout
    assert len(list((tmp_path / "out" / "333333333333").glob("*.json"))) == len(POLICIES)
