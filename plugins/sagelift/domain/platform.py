"""Platform configuration: the values the ML platform team owns, never the person triggering a run.

One home: the Airflow Variable ``sagelift_platform`` (JSON), read at task run time by
``sagelift.hooks.platform`` and parsed here. A run's conf can never override these values; the few
settings a conf may narrow (the PVC's name, size and class, the tag document) are declared as
separate, validated run parameters.

Every section validates itself on creation and raises SageliftValidationError naming the
``platform.<path>`` field and the rule, so a typo in the Variable fails loudly instead of silently
falling back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sagelift.domain.errors import Problems, SageliftValidationError

VARIABLE_KEY = "sagelift_platform"

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
STAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _check(problems: Problems, ok: bool, name: str, rule: str) -> None:
    if not ok:
        problems.add(name, rule)


def _unknown_keys(problems: Problems, prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    for key in sorted(set(raw) - known):
        problems.add(f"{prefix}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class AccountSettings:
    """An onboarded scientist account; role names here override the platform defaults."""

    account_id: str
    execution_role_name: str | None = None
    execution_external_id: str | None = None
    training_role_name: str | None = None
    model_role_name: str | None = None
    api_invoke_role_name: str | None = None

    @classmethod
    def from_dict(cls, account_id: str, raw: Mapping[str, Any] | None, problems: Problems) -> AccountSettings:
        raw = dict(raw or {})
        prefix = f"platform.accounts.{account_id}"
        _check(problems, bool(ACCOUNT_ID_RE.match(account_id)), prefix, "account ids are twelve digits")
        known = {f.name for f in fields(cls)} - {"account_id"}
        _unknown_keys(problems, prefix, raw, known)
        for key in ("execution_role_name", "training_role_name", "model_role_name", "api_invoke_role_name"):
            value = raw.get(key)
            if value is not None:
                _check(
                    problems,
                    isinstance(value, str) and bool(ROLE_NAME_RE.match(value)),
                    f"{prefix}.{key}",
                    "an IAM role name: 1-64 characters of letters, digits and +=,.@_-",
                )
        ext = raw.get("execution_external_id")
        if ext is not None:
            _check(
                problems,
                isinstance(ext, str) and bool(EXTERNAL_ID_RE.match(ext)),
                f"{prefix}.execution_external_id",
                "2-1224 characters of letters, digits and +=,.@:/_-",
            )
        return cls(account_id=account_id, **{k: raw.get(k) for k in known})


@dataclass(frozen=True)
class KubernetesSettings:
    """Where step 1 runs its pod and which claim it ensures."""

    enabled: bool = False
    namespace: str = "sagelift"
    in_cluster: bool | None = None
    kubernetes_conn_id: str | None = None
    service_account_name: str = "sagelift-pipeline"
    image: str = "python:3.12-slim"
    pvc_name: str = "sagelift-pipeline"
    pvc_size: str = "50Mi"
    pvc_storage_class: str | None = None
    pvc_access_mode: str = "ReadWriteOnce"
    wait_for_bound_seconds: int = 0
    deferrable: bool = False
    startup_timeout_seconds: int = 300
    # The ensure_pvc container's requests/limits, in the pod spec's own shape.
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> KubernetesSettings:
        raw = dict(raw or {})
        _unknown_keys(problems, "platform.kubernetes", raw, {f.name for f in fields(cls)})
        settings = cls(**{k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}})
        p = "platform.kubernetes"
        _check(problems, isinstance(settings.enabled, bool), f"{p}.enabled", "true or false")
        _check(
            problems,
            _is_dns1123(settings.namespace, 63),
            f"{p}.namespace",
            "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        )
        _check(
            problems,
            _is_dns1123(settings.pvc_name, 253),
            f"{p}.pvc_name",
            "a DNS-1123 name: lowercase letters, digits and '-', at most 253 characters",
        )
        _check(
            problems,
            is_quantity(settings.pvc_size),
            f"{p}.pvc_size",
            "a Kubernetes quantity such as 50Mi or 10Gi",
        )
        _check(
            problems,
            settings.pvc_storage_class is None or _is_dns1123(settings.pvc_storage_class, 253),
            f"{p}.pvc_storage_class",
            "a DNS-1123 name or null for the cluster default",
        )
        _check(
            problems,
            settings.pvc_access_mode in ACCESS_MODES,
            f"{p}.pvc_access_mode",
            f"one of {', '.join(ACCESS_MODES)}",
        )
        _check(
            problems,
            isinstance(settings.wait_for_bound_seconds, int) and settings.wait_for_bound_seconds >= 0,
            f"{p}.wait_for_bound_seconds",
            "a whole number of seconds, 0 to not wait for Bound",
        )
        timeout = settings.startup_timeout_seconds
        _check(
            problems,
            isinstance(timeout, int) and not isinstance(timeout, bool) and timeout >= 1,
            f"{p}.startup_timeout_seconds",
            "a positive whole number of seconds",
        )
        _check(
            problems,
            _is_resources(settings.resources),
            f"{p}.resources",
            'an object like {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}'
            ": keys requests/limits, resources cpu/memory/ephemeral-storage, values Kubernetes quantities",
        )
        return settings


ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


@dataclass(frozen=True)
class EcrSettings:
    """How step 4 names and creates the scientist account's repositories."""

    repository_prefix: str = "sagelift/"
    tag_mutability: str = "IMMUTABLE"
    scan_on_push: bool = True
    source_registry_conn_id: str | None = None
    platforms: tuple[str, ...] = ()
    # host[:port] to reach the account's ECR registry at instead of <account>.dkr.ecr.<region>.amazonaws.com
    # (a proxy or a local stand-in); "{account_id}" and "{region}" are filled in. Image URIs handed to
    # SageMaker keep ECR's own host.
    registry_endpoint: str | None = None
    # a PEM file of extra CAs trusted (besides the system's) for every registry step 4 talks to
    registry_ca_file: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> EcrSettings:
        raw = dict(raw or {})
        _unknown_keys(problems, "platform.ecr", raw, {f.name for f in fields(cls)})
        values = {k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}}
        if "platforms" in values:
            values["platforms"] = tuple(values["platforms"] or ())
        settings = cls(**values)
        _check(
            problems,
            settings.tag_mutability in ("MUTABLE", "IMMUTABLE"),
            "platform.ecr.tag_mutability",
            "MUTABLE or IMMUTABLE",
        )
        _check(
            problems,
            bool(re.match(r"^([a-z0-9]+([._-][a-z0-9]+)*/)*$", settings.repository_prefix)),
            "platform.ecr.repository_prefix",
            "lowercase path segments each ending in '/', e.g. 'sagelift/' (or empty)",
        )
        _check(
            problems, isinstance(settings.scan_on_push, bool), "platform.ecr.scan_on_push", "true or false"
        )
        _check(
            problems,
            settings.source_registry_conn_id is None
            or (
                isinstance(settings.source_registry_conn_id, str)
                and bool(CONN_ID_RE.match(settings.source_registry_conn_id))
            ),
            "platform.ecr.source_registry_conn_id",
            "an Airflow connection id or null for anonymous pulls",
        )
        _check(
            problems,
            all(isinstance(p, str) and bool(PLATFORM_RE.match(p)) for p in settings.platforms),
            "platform.ecr.platforms",
            "a list of os/arch[/variant] such as linux/amd64 (empty: all)",
        )
        _check(
            problems,
            settings.registry_endpoint is None
            or (
                isinstance(settings.registry_endpoint, str)
                and bool(REGISTRY_ENDPOINT_RE.match(settings.registry_endpoint))
            ),
            "platform.ecr.registry_endpoint",
            "host[:port], optionally with {account_id} and {region}; null for ECR's own host",
        )
        _check(
            problems,
            settings.registry_ca_file is None
            or (isinstance(settings.registry_ca_file, str) and settings.registry_ca_file.startswith("/")),
            "platform.ecr.registry_ca_file",
            "an absolute path to a PEM file, or null",
        )
        return settings


PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
REGISTRY_ENDPOINT_RE = re.compile(
    r"^([A-Za-z0-9-]+|\{account_id\}|\{region\})"
    r"(\.([A-Za-z0-9-]+|\{account_id\}|\{region\}))*(:[0-9]{1,5})?$"
)


@dataclass(frozen=True)
class ApiSettings:
    """How step 8 exposes the endpoint through API Gateway."""

    stage_name: str = "prod"
    authorization: str = "AWS_IAM"
    integration_timeout_ms: int = 29000
    throttle_rate_limit: float = 100.0
    throttle_burst_limit: int = 200
    quota_limit: int | None = None
    quota_period: str = "DAY"
    access_log_destination_arn: str | None = None
    allowed_vpc_endpoint_ids: tuple[str, ...] = ()
    allowed_org_id: str | None = None
    endpoint_type: str = "REGIONAL"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> ApiSettings:
        raw = dict(raw or {})
        _unknown_keys(problems, "platform.api", raw, {f.name for f in fields(cls)})
        values = {k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}}
        if "allowed_vpc_endpoint_ids" in values:
            values["allowed_vpc_endpoint_ids"] = tuple(values["allowed_vpc_endpoint_ids"] or ())
        settings = cls(**values)
        p = "platform.api"
        _check(
            problems,
            bool(STAGE_RE.match(str(settings.stage_name))),
            f"{p}.stage_name",
            "1-128 characters of letters, digits, '-' and '_'",
        )
        _check(
            problems,
            settings.authorization in ("AWS_IAM", "API_KEY"),
            f"{p}.authorization",
            "AWS_IAM or API_KEY",
        )
        _check(
            problems,
            isinstance(settings.integration_timeout_ms, int)
            and 50 <= settings.integration_timeout_ms <= 29000,
            f"{p}.integration_timeout_ms",
            "between 50 and 29000 milliseconds",
        )
        _check(
            problems,
            settings.quota_period in ("DAY", "WEEK", "MONTH"),
            f"{p}.quota_period",
            "DAY, WEEK or MONTH",
        )
        _check(
            problems,
            settings.endpoint_type in ("REGIONAL", "PRIVATE", "EDGE"),
            f"{p}.endpoint_type",
            "REGIONAL, PRIVATE or EDGE",
        )
        return settings


@dataclass(frozen=True)
class SageMakerSettings:
    """Defaults for the SageMaker steps that a platform, not a scientist, decides."""

    training_volume_size_gb: int = 30
    training_max_runtime_seconds: int = 86400
    endpoint_initial_instance_count: int = 1
    deferrable: bool = True
    # Training log lines (CloudWatch Logs) copied into train_model's task log while it waits.
    stream_training_logs: bool = True
    check_interval_seconds: int = 30
    training_wait_budget_seconds: int = 48 * 3600
    endpoint_wait_budget_seconds: int = 3 * 3600
    keep_endpoint_configs: int = 2

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> SageMakerSettings:
        raw = dict(raw or {})
        _unknown_keys(problems, "platform.sagemaker", raw, {f.name for f in fields(cls)})
        settings = cls(**{k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}})
        p = "platform.sagemaker"
        for name in (
            "training_volume_size_gb",
            "training_max_runtime_seconds",
            "endpoint_initial_instance_count",
            "check_interval_seconds",
            "training_wait_budget_seconds",
            "endpoint_wait_budget_seconds",
        ):
            value = getattr(settings, name)
            _check(
                problems,
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"{p}.{name}",
                "a positive whole number",
            )
        _check(
            problems,
            isinstance(settings.stream_training_logs, bool),
            f"{p}.stream_training_logs",
            "true or false",
        )
        _check(
            problems,
            isinstance(settings.keep_endpoint_configs, int) and settings.keep_endpoint_configs >= 1,
            f"{p}.keep_endpoint_configs",
            "at least 1 (the config in service)",
        )
        return settings


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform configuration; build it with ``PlatformConfig.from_dict``."""

    region: str
    master_role_arn: str | None = None
    master_external_id: str | None = None
    execution_role_name: str = "sagelift-pipeline-execution"
    training_role_name: str = "sagelift-training-execution"
    model_role_name: str = "sagelift-model-execution"
    api_invoke_role_name: str = "sagelift-apigateway-invoke"
    session_duration_seconds: int = 3600
    account_conn_id_prefix: str = "sagelift_aws_"
    accounts: Mapping[str, AccountSettings] = field(default_factory=dict)
    tags_s3_uri: str | None = None
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    ecr: EcrSettings = field(default_factory=EcrSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    sagemaker: SageMakerSettings = field(default_factory=SageMakerSettings)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PlatformConfig:
        if raw is None:
            raise SageliftValidationError.single(
                "platform",
                f"the Airflow Variable {VARIABLE_KEY!r} is not set; see README 'Platform configuration'",
            )
        if not isinstance(raw, Mapping):
            raise SageliftValidationError.single("platform", "must be a JSON object")
        problems = Problems()
        _unknown_keys(problems, "platform", raw, {f.name for f in fields(cls)})
        region = raw.get("region")
        _check(
            problems,
            isinstance(region, str) and bool(REGION_RE.match(region)),
            "platform.region",
            "an AWS region such as us-east-1",
        )
        master = raw.get("master_role_arn")
        _check(
            problems,
            master is None or (isinstance(master, str) and bool(ROLE_ARN_RE.match(master))),
            "platform.master_role_arn",
            "an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>",
        )
        ext = raw.get("master_external_id")
        _check(
            problems,
            ext is None or (isinstance(ext, str) and bool(EXTERNAL_ID_RE.match(ext))),
            "platform.master_external_id",
            "2-1224 characters of letters, digits and +=,.@:/_-",
        )
        for key in ("execution_role_name", "training_role_name", "model_role_name", "api_invoke_role_name"):
            value = raw.get(key, getattr(cls, key, None))
            _check(
                problems,
                isinstance(value, str) and bool(ROLE_NAME_RE.match(value)),
                f"platform.{key}",
                "an IAM role name: 1-64 characters of letters, digits and +=,.@_-",
            )
        duration = raw.get("session_duration_seconds", 3600)
        _check(
            problems,
            isinstance(duration, int) and 900 <= duration <= 3600,
            "platform.session_duration_seconds",
            "between 900 and 3600 (AWS caps role-chained sessions at one hour)",
        )
        prefix = raw.get("account_conn_id_prefix", "sagelift_aws_")
        _check(
            problems,
            isinstance(prefix, str) and bool(CONN_ID_RE.match(prefix + "0")),
            "platform.account_conn_id_prefix",
            "letters, digits, '_', '.' and '-'",
        )
        tags_uri = raw.get("tags_s3_uri")
        _check(
            problems,
            tags_uri is None or (isinstance(tags_uri, str) and bool(S3_URI_RE.match(tags_uri))),
            "platform.tags_s3_uri",
            "an S3 URI such as s3://bucket/path/tags.json",
        )
        raw_accounts = raw.get("accounts") or {}
        accounts: dict[str, AccountSettings] = {}
        if not isinstance(raw_accounts, Mapping):
            problems.add("platform.accounts", "a JSON object keyed by twelve-digit account id")
        else:
            for account_id, settings in raw_accounts.items():
                accounts[str(account_id)] = AccountSettings.from_dict(str(account_id), settings, problems)
        kubernetes = KubernetesSettings.from_dict(raw.get("kubernetes"), problems)
        ecr = EcrSettings.from_dict(raw.get("ecr"), problems)
        api = ApiSettings.from_dict(raw.get("api"), problems)
        sagemaker = SageMakerSettings.from_dict(raw.get("sagemaker"), problems)
        problems.raise_if_any()
        simple = {
            k: raw[k]
            for k in (
                "master_role_arn",
                "master_external_id",
                "execution_role_name",
                "training_role_name",
                "model_role_name",
                "api_invoke_role_name",
                "session_duration_seconds",
                "account_conn_id_prefix",
                "tags_s3_uri",
            )
            if k in raw
        }
        return cls(
            region=str(region),
            accounts=accounts,
            kubernetes=kubernetes,
            ecr=ecr,
            api=api,
            sagemaker=sagemaker,
            **simple,
        )

    # --- derived facts for one account -------------------------------------------------------------
    def account(self, account_id: str) -> AccountSettings:
        """The onboarded account's settings; refuses any account the platform has not onboarded."""
        try:
            return self.accounts[account_id]
        except KeyError:
            onboarded = ", ".join(sorted(self.accounts)) or "none yet"
            raise SageliftValidationError.single(
                "account_id",
                f"account {account_id} is not onboarded to sagelift (onboarded: {onboarded}); "
                "an ML engineer adds it to the platform configuration, see README 'Onboarding a scientist account'",
            ) from None

    def aws_conn_id(self, account_id: str) -> str:
        return f"{self.account_conn_id_prefix}{account_id}"

    def _role_arn(self, account_id: str, name: str) -> str:
        return f"arn:aws:iam::{account_id}:role/{name}"

    def execution_role_arn(self, account_id: str) -> str:
        acct = self.account(account_id)
        return self._role_arn(account_id, acct.execution_role_name or self.execution_role_name)

    def training_role_arn(self, account_id: str) -> str:
        acct = self.account(account_id)
        return self._role_arn(account_id, acct.training_role_name or self.training_role_name)

    def model_role_arn(self, account_id: str) -> str:
        acct = self.account(account_id)
        return self._role_arn(account_id, acct.model_role_name or self.model_role_name)

    def api_invoke_role_arn(self, account_id: str) -> str:
        acct = self.account(account_id)
        return self._role_arn(account_id, acct.api_invoke_role_name or self.api_invoke_role_name)


def _is_dns1123(value: Any, max_len: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_len and bool(DNS1123_RE.match(value))


def is_dns1123_name(value: Any) -> bool:
    """A DNS-1123 subdomain-style object name as Kubernetes uses for claims (no dots here)."""
    return _is_dns1123(value, 253)


def _is_resources(value: Any) -> bool:
    if not isinstance(value, Mapping) or not set(value) <= {"requests", "limits"}:
        return False
    for amounts in value.values():
        if not isinstance(amounts, Mapping) or not set(amounts) <= {"cpu", "memory", "ephemeral-storage"}:
            return False
        for name, amount in amounts.items():
            cpu_ok = (
                name == "cpu"
                and isinstance(amount, str)
                and bool(re.match(r"^[0-9]+m$", amount))
                and int(amount[:-1]) > 0
            )
            if not (cpu_ok or is_quantity(amount)):
                return False
    return True


def is_quantity(value: Any) -> bool:
    """A positive Kubernetes resource quantity in the common suffix forms (50Mi, 10Gi, 1G)."""
    if not isinstance(value, str):
        return False
    match = QUANTITY_RE.match(value)
    if match is None:
        return False
    return float(match.group(1)) > 0 and match.group(3) != "m"
