"""Network and encryption controls an ML platform sets per scientist account (``accounts.<id>.network``).

The platform, never the run's conf, decides where SageMaker's containers run (VPC subnets and security
groups), which KMS keys encrypt the training volume, the training output and the endpoint's volume, and
whether containers are network-isolated (on by default, as the KFP v1 components had it) and encrypt the
traffic between training instances. ``parse_network_settings`` validates them when the platform
Variable is read; ``training_security``, ``model_security`` and ``endpoint_config_security`` return the
request fields they add to CreateTrainingJob, CreateModel and CreateEndpointConfig (domain.sagemaker);
``sagemaker_role_statements`` and ``execution_role_statements`` give the IAM templates (domain.onboarding)
exactly the EC2 and KMS permissions these settings need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sagelift.domain.errors import Problems, kind, show

# botocore's VpcConfig: 1-16 subnets and 1-5 security groups, each id at most 32 characters.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?\Z", re.ASCII)
SECURITY_GROUP_RE = re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?\Z", re.ASCII)
KEY_ID_RE = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})\Z", re.ASCII
)
ALIAS_RE = re.compile(r"^alias/[A-Za-z0-9/_-]{1,250}\Z", re.ASCII)
KMS_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>[A-Za-z0-9/_-]{1,250})\Z",
    re.ASCII,
)
KMS_RULE = (
    "a KMS key of the account in the platform's region: a key id, a key ARN, alias/<name> or an alias ARN"
)
KEY_FIELDS = ("volume_kms_key", "output_kms_key", "endpoint_kms_key")
# Instance types with local NVMe storage: SageMaker refuses a VolumeKmsKeyId for them (their local
# volumes are encrypted by the instance's hardware), so the training request leaves it out.
LOCAL_STORAGE_RE = re.compile(
    r"^ml\.(g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|[cmr]\d+[a-z]*d[a-z]*)\."
)


@dataclass(frozen=True)
class NetworkSettings:
    """``accounts.<id>.network``: VPC placement, KMS keys and isolation for the account's SageMaker jobs."""

    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    volume_kms_key: str | None = None
    output_kms_key: str | None = None
    endpoint_kms_key: str | None = None
    network_isolation: bool = True
    inter_container_traffic_encryption: bool = False

    @property
    def vpc_config(self) -> dict[str, list[str]] | None:
        if not self.subnets:
            return None
        return {"SecurityGroupIds": list(self.security_group_ids), "Subnets": list(self.subnets)}

    @property
    def kms_keys(self) -> tuple[str, ...]:
        return tuple(sorted({k for k in (getattr(self, f) for f in KEY_FIELDS) if k}))


def _ids(
    raw: Any, name: str, pattern: re.Pattern[str], most: int, example: str, problems: Problems
) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(name, f"must be a list, got {kind(raw)}")
        return ()
    if len(raw) > most:
        problems.add(name, f"at most {most} (SageMaker's VpcConfig limit), got {len(raw)}")
        return ()
    for i, value in enumerate(raw):
        if not isinstance(value, str) or not pattern.match(value):
            problems.add(f"{name}[{i}]", f"an id such as {example}, got {show(value)}")
            return ()
    if len(set(raw)) != len(raw):
        problems.add(name, "lists an id twice")
        return ()
    return tuple(raw)


def kms_key_problem(value: Any, account_id: str, region: str | None) -> str | None:
    """Why ``value`` is not a KMS key (or alias) SageMaker can use in ``account_id``/``region``, or None."""
    if not isinstance(value, str):
        return f"{KMS_RULE}, got {kind(value)}"
    if KEY_ID_RE.match(value) or ALIAS_RE.match(value):
        return None
    arn = KMS_ARN_RE.match(value)
    if arn is None:
        return f"{KMS_RULE}, got {show(value)}"
    if arn["account"] != account_id:
        return f"a key of account {account_id} (SageMaker encrypts with the scientist account's keys), got {show(value)}"
    if region is not None and arn["region"] != region:
        return f"a key in the platform's region {region}, got {show(value)}"
    return None


def parse_network_settings(raw: Any, prefix: str, account_id: str, problems: Problems) -> NetworkSettings:
    """The account's network settings; unknown keys and bad values are added to ``problems``.

    The KMS keys' region is checked by ``check_network_regions`` once the platform's region is known."""
    if raw is None:
        return NetworkSettings()
    if not isinstance(raw, Mapping):
        problems.add(prefix, f"must be an object, got {kind(raw)}")
        return NetworkSettings()
    known = {f.name for f in fields(NetworkSettings)}
    for key in sorted(set(raw) - known, key=str):
        problems.add(f"{prefix}.{key}", f"unknown setting; one of {', '.join(sorted(known))}")
    subnets = _ids(
        raw.get("subnets"), f"{prefix}.subnets", SUBNET_RE, MAX_SUBNETS, "subnet-0123456789abcdef0", problems
    )
    groups = _ids(
        raw.get("security_group_ids"),
        f"{prefix}.security_group_ids",
        SECURITY_GROUP_RE,
        MAX_SECURITY_GROUPS,
        "sg-0123456789abcdef0",
        problems,
    )
    if bool(subnets) != bool(groups) and not problems.has(prefix):
        problems.add(
            f"{prefix}.subnets" if groups else f"{prefix}.security_group_ids",
            "a VPC placement needs both subnets and security_group_ids (or neither)",
        )
    keys: dict[str, str | None] = {}
    for key in KEY_FIELDS:
        value = raw.get(key)
        problem = None if value is None else kms_key_problem(value, account_id, None)
        if problem:
            problems.add(f"{prefix}.{key}", problem)
        keys[key] = None if problem else value
    flags: dict[str, bool] = {}
    for key, default in (("network_isolation", True), ("inter_container_traffic_encryption", False)):
        value = raw.get(key, default)
        if not isinstance(value, bool):
            problems.add(f"{prefix}.{key}", f"true or false, got {kind(value)}")
            value = default
        flags[key] = value
    return NetworkSettings(
        subnets=subnets,
        security_group_ids=groups,
        volume_kms_key=keys["volume_kms_key"],
        output_kms_key=keys["output_kms_key"],
        endpoint_kms_key=keys["endpoint_kms_key"],
        network_isolation=flags["network_isolation"],
        inter_container_traffic_encryption=flags["inter_container_traffic_encryption"],
    )


def check_network_regions(networks: Mapping[str, NetworkSettings], region: str, problems: Problems) -> None:
    """Key ARNs must name the platform's region: SageMaker cannot use a key of another region."""
    for account_id, network in sorted(networks.items()):
        for key in KEY_FIELDS:
            value = getattr(network, key)
            problem = None if value is None else kms_key_problem(value, account_id, region)
            if problem:
                problems.add(f"platform.accounts.{account_id}.network.{key}", problem)


# --- request fields -------------------------------------------------------------------------------------
def training_security(network: NetworkSettings, instance_type: str) -> dict[str, Any]:
    """The fields network settings add to CreateTrainingJob (ResourceConfig and OutputDataConfig keys are
    merged into those sections by the builder)."""
    out: dict[str, Any] = {
        "EnableNetworkIsolation": network.network_isolation,
        "EnableInterContainerTrafficEncryption": network.inter_container_traffic_encryption,
    }
    if network.vpc_config:
        out["VpcConfig"] = network.vpc_config
    if network.volume_kms_key and not LOCAL_STORAGE_RE.match(instance_type):
        out["ResourceConfig"] = {"VolumeKmsKeyId": network.volume_kms_key}
    if network.output_kms_key:
        out["OutputDataConfig"] = {"KmsKeyId": network.output_kms_key}
    return out


def model_security(network: NetworkSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"EnableNetworkIsolation": network.network_isolation}
    if network.vpc_config:
        out["VpcConfig"] = network.vpc_config
    return out


def endpoint_config_security(network: NetworkSettings, mode: str) -> dict[str, Any]:
    """The endpoint's volume key; a serverless endpoint has no ML storage volume and SageMaker refuses a
    KmsKeyId for it (serverless inference's feature exclusions), so it gets none. An async endpoint's
    results are written with the output key."""
    out: dict[str, Any] = {}
    if network.endpoint_kms_key and mode != "serverless":
        out["KmsKeyId"] = network.endpoint_kms_key
    return out


# --- IAM ----------------------------------------------------------------------------------------------
def _key_arn(value: str, account_id: str, region: str) -> tuple[str, str | None]:
    """(resource ARN, alias or None): an alias grants on the account's keys under a kms:ResourceAliases
    condition, since IAM matches a key's ARN, never its alias."""
    arn = KMS_ARN_RE.match(value)
    if arn is not None:
        if arn["kind"] == "key":
            return value, None
        return f"arn:aws:kms:{arn['region']}:{arn['account']}:key/*", f"alias/{arn['name']}"
    if value.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account_id}:key/*", value
    return f"arn:aws:kms:{region}:{account_id}:key/{value}", None


def _kms_statement(
    sid: str, actions: list[str], keys: tuple[str, ...], account_id: str, region: str
) -> list[dict[str, Any]]:
    arns: set[str] = set()
    aliases: set[str] = set()
    alias_arns: set[str] = set()
    for value in keys:
        arn, alias = _key_arn(value, account_id, region)
        if alias is None:
            arns.add(arn)
        else:
            aliases.add(alias)
            alias_arns.add(arn)
    out: list[dict[str, Any]] = []
    if arns:
        out.append({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": sorted(arns)})
    if aliases:
        out.append(
            {
                "Sid": f"{sid}ByAlias",
                "Effect": "Allow",
                "Action": actions,
                "Resource": sorted(alias_arns),
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": sorted(aliases)}},
            }
        )
    return out


SAGEMAKER_KMS_ACTIONS = ["kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"]
VPC_ENI_ACTIONS = [
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
]
VPC_DESCRIBE_ACTIONS = [
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
]


def sagemaker_role_statements(network: NetworkSettings, account_id: str, region: str) -> list[dict[str, Any]]:
    """What the training and model role needs for the account's network settings, and nothing more:
    SageMaker makes the containers' network interfaces in the listed subnets and security groups, and
    uses the listed keys (through grants) for volumes, output and the endpoint."""
    statements: list[dict[str, Any]] = []
    if network.vpc_config:
        ec2 = f"arn:aws:ec2:{region}:{account_id}"
        statements += [
            {
                "Sid": "VpcNetworkInterfacesInTheListedSubnets",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterface",
                "Resource": [f"{ec2}:network-interface/*"]
                + [f"{ec2}:subnet/{s}" for s in network.subnets]
                + [f"{ec2}:security-group/{g}" for g in network.security_group_ids],
            },
            {
                "Sid": "VpcNetworkInterfaceLifecycle",
                "Effect": "Allow",
                "Action": VPC_ENI_ACTIONS,
                "Resource": f"{ec2}:network-interface/*",
            },
            # EC2's Describe actions take no resource-level permissions.
            {"Sid": "VpcDescribe", "Effect": "Allow", "Action": VPC_DESCRIBE_ACTIONS, "Resource": "*"},
        ]
    statements += _kms_statement(
        "KmsKeysOfTheAccountSettings", SAGEMAKER_KMS_ACTIONS, network.kms_keys, account_id, region
    )
    return statements


def execution_role_statements(network: NetworkSettings, account_id: str, region: str) -> list[dict[str, Any]]:
    """The pipeline execution role creates the jobs, models and endpoint configs that name the keys, and
    SageMaker creates its grants on a key as that caller: kms:CreateGrant on exactly those keys, and only
    for grants to an AWS service."""
    statements = _kms_statement(
        "KmsGrantsForSageMaker", ["kms:CreateGrant"], network.kms_keys, account_id, region
    )
    for statement in statements:
        statement.setdefault("Condition", {})["Bool"] = {"kms:GrantIsForAWSResource": "true"}
    return statements
