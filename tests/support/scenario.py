"""The three-account world of the end-to-end tests and the demo, built in the local AWS.

- 111111111111, the Kubeflow/Airflow account: the shared runner identity (an IAM user's keys here,
  standing in for the worker's IRSA or instance role in production);
- 222222222222, the ML support account: the master pipeline role, trusting the runner;
- 333333333333, the scientist account: the pipeline execution role (trusting the master role), the
  training, model and API Gateway invoke roles, the bucket with training data and the tag document,
  and the bucket where runs of one model take turns (``locks_s3_uri``).

``airflow_env()`` returns the environment that configures Airflow for it: the platform Variable and the
scientist account's AWS connection, exactly as an ML engineer would onboard a real account, except for
``endpoint_url``/``service_config`` pointing at the local AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.local_aws import (
    MASTER_ACCOUNT,
    REGION,
    RUNNER_ACCOUNT,
    SCIENTIST_ACCOUNT,
    LocalAws,
    trust_policy,
)

if TYPE_CHECKING:
    from tests.support.k8s_api import KubernetesApiDouble
    from tests.support.oci_registry import RegistryPair

ROOT = Path(__file__).resolve().parents[2]
K8S_CONN_ID = "sagelift_k8s"
K8S_NAMESPACE = "sagelift"

MASTER_ROLE = "sagelift-master-pipeline"
EXECUTION_ROLE = "sagelift-pipeline-execution"
SCIENTIST_ROLES = (
    EXECUTION_ROLE,
    "sagelift-training-execution",
    "sagelift-model-execution",
    "sagelift-apigateway-invoke",
)
DATA_BUCKET = "scientist-ml-data"
LOCKS_S3_URI = "s3://sagelift-state-{account_id}/locks/"
LOCKS_BUCKET = f"sagelift-state-{SCIENTIST_ACCOUNT}"
# The triggering user Airflow records for a dag.test() run: the scientist account's deployer here.
DAG_TEST_USER = "dag_test"
TAGS_KEY = "platform/standard-tags.json"
STANDARD_TAGS = {"CostCenter": "cc-4711", "Owner": "science-at-scale", "DataClassification": "internal"}


# Images the demo conf names, already in the scientist account's ECR (so step 4 resolves, not copies).
IMAGES_IN_ECR = (("churn-train", "1.4"), ("churn-serving", "1.4"))


def _manifest(seed: str) -> str:
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": 2}
            ],
        }
    )


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


@dataclass
class Scenario:
    aws: LocalAws
    runner_key: tuple[str, str] = ("", "")
    platform_overrides: dict[str, Any] = field(default_factory=dict)
    connections_env: dict[str, str] = field(default_factory=dict)

    def use_kubernetes(self, api: KubernetesApiDouble, conn_id: str = K8S_CONN_ID) -> Scenario:
        """Step 1 against the Kubernetes API double: the platform's kubernetes section and its connection."""
        self.platform_overrides["kubernetes"] = {
            "enabled": True,
            "namespace": K8S_NAMESPACE,
            "kubernetes_conn_id": conn_id,
        }
        self.connections_env.update(api.airflow_connection_env(conn_id))
        return self

    def use_registries(self, registries: RegistryPair) -> Scenario:
        """Step 4 against real registries: the account's ECR registry is reached at the pair's ECR side,
        whose certificate the platform trusts through the test CA's file, and the loopback registries
        are allowed as image sources (the platform refuses them by default)."""
        self.platform_overrides["ecr"] = registries.platform_ecr_settings()
        return self

    def build(self, *, tag_document: Any = STANDARD_TAGS) -> Scenario:
        self.runner_key = self.aws.create_access_key(RUNNER_ACCOUNT)
        runner_arn = f"arn:aws:iam::{RUNNER_ACCOUNT}:user/sagelift-runner"
        iam_master = self.aws.client("iam", MASTER_ACCOUNT)
        iam_master.create_role(RoleName=MASTER_ROLE, AssumeRolePolicyDocument=trust_policy(runner_arn))
        iam = self.aws.client("iam", SCIENTIST_ACCOUNT)
        for name in SCIENTIST_ROLES:
            principal = (
                role_arn(MASTER_ACCOUNT, MASTER_ROLE)
                if name == EXECUTION_ROLE
                else f"arn:aws:iam::{SCIENTIST_ACCOUNT}:root"
            )
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(principal))
        s3 = self.aws.client("s3", SCIENTIST_ACCOUNT)
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.create_bucket(Bucket=LOCKS_BUCKET)  # where runs of one model take turns (platform.locks_s3_uri)
        s3.put_object(Bucket=DATA_BUCKET, Key="churn/train/part-0.csv", Body=b"1,0.5,0.25\n0,0.1,0.9\n")
        s3.put_object(Bucket=DATA_BUCKET, Key="churn/validation/part-0.csv", Body=b"1,0.4,0.3\n")
        s3.put_object(Bucket=DATA_BUCKET, Key="models/churn/model.tar.gz", Body=b"not really a tarball")
        ecr = self.aws.client("ecr", SCIENTIST_ACCOUNT)
        for repository, tag in IMAGES_IN_ECR:
            ecr.create_repository(repositoryName=repository)
            ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=_manifest(repository))
        if tag_document is not None:
            body = tag_document if isinstance(tag_document, bytes) else json.dumps(tag_document).encode()
            s3.put_object(Bucket=DATA_BUCKET, Key=TAGS_KEY, Body=body)
        return self

    def platform(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "region": REGION,
            "master_role_arn": role_arn(MASTER_ACCOUNT, MASTER_ROLE),
            "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": [DAG_TEST_USER]}}},
            "tags_s3_uri": f"s3://{DATA_BUCKET}/{TAGS_KEY}",
            "sagemaker": {"check_interval_seconds": 1},
            "locks_s3_uri": LOCKS_S3_URI,
            "locks": {"check_interval_seconds": 1},
        }
        config.update(self.platform_overrides)
        return config

    def connection(self, account: str = SCIENTIST_ACCOUNT) -> dict[str, Any]:
        """The scientist account's AWS connection, as `make onboard` renders it, pointed at the local AWS."""
        return {
            "conn_type": "aws",
            "login": self.runner_key[0],
            "password": self.runner_key[1],
            "extra": {
                "region_name": REGION,
                "endpoint_url": self.aws.url,
                "service_config": {"sts": {"endpoint_url": self.aws.url}},
                "role_chain": [{"role_arn": role_arn(MASTER_ACCOUNT, MASTER_ROLE)}],
                "role_arn": role_arn(account, EXECUTION_ROLE),
                "session_duration_seconds": 3600,
            },
        }

    def airflow_env(self) -> dict[str, str]:
        return {
            "AIRFLOW_VAR_SAGELIFT_PLATFORM": json.dumps(self.platform()),
            f"AIRFLOW_CONN_SAGELIFT_AWS_{SCIENTIST_ACCOUNT}": json.dumps(self.connection()),
            **self.connections_env,
        }


def ecr_registry_password(account: str = SCIENTIST_ACCOUNT) -> str:
    """What the local ECR API's GetAuthorizationToken hands out for ``account`` (user ``AWS``)."""
    return f"{account}-auth-token"


@contextlib.contextmanager
def onboarded_cluster() -> Iterator[KubernetesApiDouble]:
    """The Kubernetes API double as onboarding leaves a cluster: namespaces default and sagelift,
    sagelift/assets/k8s/rbac.yaml applied, and RBAC enforced for the pipeline's service account."""
    from tests.support.k8s_api import KubernetesApiDouble

    with KubernetesApiDouble(namespaces=("default", K8S_NAMESPACE), enforce_rbac=True) as k8s:
        k8s.apply_manifest(ROOT / "plugins/sagelift/assets/k8s/rbac.yaml")
        yield k8s


def demo_conf(**overrides: Any) -> dict[str, Any]:
    """The bring-your-own-image conf of include/examples/demo.json, with overrides."""
    conf: dict[str, Any] = {
        "model_name": "churn-predictor",
        "account_id": SCIENTIST_ACCOUNT,
        "training_docker_image": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-train:1.4",
        "model_docker_image": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving:1.4",
        "training_hyperparameters": {"max_depth": 5, "eta": "0.2"},
        "training_instance_count": 2,
        "training_instance_type": "ml.m5.large",
        "endpoint_instance_type": "ml.m5.large",
        "environment": {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},
        "training_channels": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri": f"s3://{DATA_BUCKET}/churn/train/",
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
            {
                "ChannelName": "validation",
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri": f"s3://{DATA_BUCKET}/churn/validation/",
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
        ],
        "training_s3_output_path": f"s3://{DATA_BUCKET}/churn/output/",
    }
    conf.update(overrides)
    return conf
