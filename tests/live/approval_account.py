"""A second scientist account for the live tier, onboarded with ``requires_approval`` (issue 17 item 8).

The live tier's one Airflow reads its platform configuration from the environment, fixed at start; the
scientist account 333333333333 deploys without approval for the other live modules, so the approval
tests deploy into this account instead: its roles (the execution role trusting the master role), a
data bucket with an existing artifact, the locks bucket and the serving image in its ECR, and its AWS
connection. Its deployers are the live tier's ``scientists`` group, so ``admin`` may approve in the UI.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.local_aws import MASTER_ACCOUNT, REGION, LocalAws, trust_policy
from tests.support.scenario import (
    EXECUTION_ROLE,
    MASTER_ROLE,
    SCIENTIST_ROLES,
    Scenario,
    _manifest,
    role_arn,
)

APPROVAL_ACCOUNT = "555555555555"
APPROVAL_BUCKET = f"approval-ml-data-{APPROVAL_ACCOUNT}"
ARTIFACT = f"s3://{APPROVAL_BUCKET}/models/churn/model.tar.gz"
SERVING_IMAGE = f"{APPROVAL_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving:1.4"
# Long enough for the browser test to answer, short enough that a forgotten run does not hold the lock.
APPROVAL_TIMEOUT_SECONDS = 900


def account_settings(group: str) -> dict[str, Any]:
    """The account's entry in platform.accounts."""
    return {APPROVAL_ACCOUNT: {"deployers": {"groups": [group]}, "requires_approval": True}}


def onboard(aws: LocalAws, scenario: Scenario) -> dict[str, str]:
    """Create the account's resources in the local AWS; returns its connection's environment."""
    iam = aws.client("iam", APPROVAL_ACCOUNT)
    for name in SCIENTIST_ROLES:
        principal = (
            role_arn(MASTER_ACCOUNT, MASTER_ROLE)
            if name == EXECUTION_ROLE
            else f"arn:aws:iam::{APPROVAL_ACCOUNT}:root"
        )
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(principal))
    s3 = aws.client("s3", APPROVAL_ACCOUNT)
    for bucket in (APPROVAL_BUCKET, f"sagelift-state-{APPROVAL_ACCOUNT}"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=APPROVAL_BUCKET, Key="models/churn/model.tar.gz", Body=b"not really a tarball")
    ecr = aws.client("ecr", APPROVAL_ACCOUNT)
    ecr.create_repository(repositoryName="churn-serving")
    ecr.put_image(repositoryName="churn-serving", imageTag="1.4", imageManifest=_manifest("churn-serving"))
    return {
        f"AIRFLOW_CONN_SAGELIFT_AWS_{APPROVAL_ACCOUNT}": json.dumps(scenario.connection(APPROVAL_ACCOUNT))
    }


def conf(model_name: str) -> dict[str, Any]:
    """Deploys an existing artifact (no training): the shortest run that registers and deploys."""
    return {
        "model_name": model_name,
        "account_id": APPROVAL_ACCOUNT,
        "model_docker_image": SERVING_IMAGE,
        "model_artifact_s3_path": ARTIFACT,
    }
