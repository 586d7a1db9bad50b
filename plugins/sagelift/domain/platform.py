"""Platform configuration: the values the ML platform team owns, never the person triggering a run.

One home: the Airflow Variable ``sagelift_platform`` (JSON), read at task run time by
``sagelift.config`` and parsed here. A run's conf can never override these values; the few
settings a conf may narrow (the PVC's name, size and class, the tag document) are declared as
separate, validated run parameters.

Every section validates itself on creation and raises SageliftValidationError naming the
``platform.<path>`` field and the rule, so a typo in the Variable fails loudly instead of silently
falling back to a default.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, find_json_problem, parse_json_text
from sagelift.domain.endpoint_settings import MAX_INSTANCES, MODES, STRATEGIES, EndpointCaps
from sagelift.domain.errors import Problems, SageliftValidationError, clip, kind, show, subfield
from sagelift.domain.images import host_pattern_problem
from sagelift.domain.instance_choice import hosting_instance_types
from sagelift.domain.multi_model import (
    SharedEndpoint,
    check_shared_endpoint_images,
    parse_multi_model_images,
    parse_shared_endpoints,
)
from sagelift.domain.overrides import parse_allowed_overrides
from sagelift.domain.security import NetworkSettings, check_network_regions, parse_network_settings

VARIABLE_KEY = "sagelift_platform"

ACCOUNT_ID_RE = re.compile(r"^\d{12}\Z", re.ASCII)
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d\Z", re.ASCII)
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z", re.ASCII)
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}\Z", re.ASCII)
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}\Z", re.ASCII)
CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}\Z")
S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?\Z")
DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?\Z")
STAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
# A Ground Truth workteam (README "Labeling before training"): private or vendor, in the account.
WORKTEAM_ARN_RE = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:(?P<region>[a-z0-9\-]+):(?P<account>[0-9]{12}):"
    r"workteam/(?P<kind>private-crowd|vendor-crowd)/[A-Za-z0-9\-]{1,63}"
)


# The Variable is read within these bounds before any rule looks at it (a typo must not become a
# RecursionError): 16 levels, 100,000 values, strings of at most 4,096 characters.
PLATFORM_LIMITS = JsonLimits(max_depth=16, max_nodes=100_000, max_string=4096)
PLATFORM_TEXT_LIMITS = JsonLimits(max_chars=1024 * 1024, max_depth=16, max_nodes=100_000, max_string=4096)


def _check(problems: Problems, ok: bool, name: str, rule: str) -> None:
    if not ok:
        problems.add(name, rule)


def _unknown_keys(problems: Problems, prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    for key in sorted(set(raw) - known, key=str):
        close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"see the {prefix} settings in the README"
        problems.add(subfield(prefix, key), f"unknown setting; {hint}")


def _section(raw: Any, prefix: str, problems: Problems) -> dict[str, Any]:
    """A settings section as a dict; anything but an object (or null, for the defaults) is refused."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(prefix, f"must be an object, got {kind(raw)}")
        return {}
    return dict(raw)


def _known(cls: Any, raw: Mapping[str, Any], prefix: str, problems: Problems) -> dict[str, Any]:
    """The settings of ``raw`` that ``cls`` declares; any other key is reported as unknown."""
    names = {f.name for f in fields(cls)}
    _unknown_keys(problems, prefix, raw, names)
    return {k: v for k, v in raw.items() if k in names}


def _as_tuple(values: dict[str, Any], key: str, prefix: str, problems: Problems) -> None:
    """Lists in the JSON become tuples on the frozen settings; anything else is refused."""
    if key not in values:
        return
    value = values[key]
    if value is None or isinstance(value, list | tuple):
        values[key] = tuple(value or ())
    else:
        problems.add(f"{prefix}.{key}", f"must be a list, got {kind(value)}")
        del values[key]


def _is_int(value: Any, low: int | None = None, high: int | None = None) -> bool:
    """A whole number (not a boolean) within the optional bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _is_name(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and bool(pattern.match(value))


def is_s3_uri(value: Any) -> bool:
    """An ``s3://bucket/key`` URI of at most 1024 characters (SageMaker's and S3's limit)."""
    return isinstance(value, str) and len(value) <= 1024 and bool(S3_URI_RE.match(value))


LOCKS_URI_RULE = (
    "an S3 URI such as s3://sagelift-state-{account_id}/locks/ ({account_id}, {region} filled in)"
)


def fill_locks_uri(template: str, account_id: str, region: str) -> str:
    """A locks URI with its placeholders filled in for one account."""
    return template.replace("{account_id}", account_id).replace("{region}", region)


def is_locks_uri(value: Any) -> bool:
    """An S3 URI, once ``{account_id}`` and ``{region}`` are filled in; no other placeholder."""
    filled = fill_locks_uri(value, "0" * 12, "us-east-1") if isinstance(value, str) else ""
    return is_s3_uri(filled) and not set("{}") & set(filled)


def s3_key_segments_problem(uri: str) -> str | None:
    """Why ``uri``'s key could be read as another key (an empty, '.' or '..' segment), else None."""
    segments = uri.removeprefix("s3://").split("/")[1:]  # a prefix's last segment is the empty one
    if any(s in ("", ".", "..") for s in segments[:-1]) or any(s in (".", "..") for s in segments[-1:]):
        return "has an empty, '.' or '..' path segment"
    return None


TAG_DOCUMENT_PREFIXES_RULE = (
    "a list of at most 50 S3 URIs, each one object (s3://bucket/tags.json) or a prefix ending in '/' "
    "(s3://bucket/tags/), without empty, '.' or '..' segments"
)


def _is_tag_document_prefixes(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= 50
        and all(is_s3_uri(v) and s3_key_segments_problem(v) is None for v in value)
    )


# --- who may deploy where ---------------------------------------------------------------------------
# Access is by Airflow user name, the one fact Airflow 3 gives a running task about who started its run
# (dag_run.triggering_user_name, the name the auth manager reports: SimpleAuthManager's or FAB's
# username). Roles are not used: a task has no database access and cannot ask the auth manager, so a
# role check would be unverifiable. Names compare exactly (case-sensitive). Each account lists its
# ``deployers``: users by name and ``groups`` defined once at the platform's top level. Nobody is listed
# by default: an account without deployers can be deployed into and torn down by no one. A deployer may
# deploy into and tear down in the account; nothing else about the platform is theirs to change.
USER_NAME_MAX = 256
USER_NAME_RULE = "an Airflow user name: 1-256 characters, no control characters or surrounding spaces"
GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z", re.ASCII)
GROUP_NAME_RULE = "a group name: 1-64 letters, digits and _.@-, starting with a letter or digit"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DEPLOY = "deploy into"
TEAR_DOWN = "tear down in"
# A run nobody triggered (a schedule, an asset event, another DAG) acts for no one, unless it is a
# registered retrain, which acts for its owner (sagelift.domain.retrain): such a run is refused.
NO_USER_FIELD = "triggering_user"
NO_USER_RULE = (
    "the run has no triggering user and is not a registered retrain: trigger it from the UI, REST API or CLI"
)


def is_user_name(value: Any) -> bool:
    """An Airflow user name as the platform may list it (and as a run's tag can carry it whole)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= USER_NAME_MAX
        and value == value.strip()
        and not _CONTROL_RE.search(value)
    )


def _name_list(raw: Any, prefix: str, ok: Any, rule: str, problems: Problems) -> tuple[str, ...]:
    """A JSON list of names, each checked; the bad ones are reported by index and left out."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        problems.add(prefix, f"must be a list, got {kind(raw)}")
        return ()
    names = []
    for i, name in enumerate(raw):
        if ok(name):
            names.append(name)
        else:
            problems.add(f"{prefix}[{i}]", f"{rule}, got {show(name)}")
    return tuple(names)


@dataclass(frozen=True)
class Deployers:
    """Who may deploy into and tear down in one account: users by name, and platform groups."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Any, prefix: str, problems: Problems) -> Deployers:
        values = _known(cls, _section(raw, prefix, problems), prefix, problems)
        return cls(
            users=_name_list(values.get("users"), f"{prefix}.users", is_user_name, USER_NAME_RULE, problems),
            groups=_name_list(
                values.get("groups"),
                f"{prefix}.groups",
                lambda v: _is_name(v, GROUP_NAME_RE),
                GROUP_NAME_RULE,
                problems,
            ),
        )


def _groups(raw: Any, problems: Problems) -> dict[str, tuple[str, ...]]:
    """``platform.groups``: group name -> the user names in it."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(
            "platform.groups", 'a JSON object of group name -> list of user names, e.g. {"team": ["alice"]}'
        )
        return {}
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in raw.items():
        field_name = subfield("platform.groups", name)
        if not _is_name(name, GROUP_NAME_RE):
            problems.add(field_name, GROUP_NAME_RULE)
            continue
        groups[name] = _name_list(members, field_name, is_user_name, USER_NAME_RULE, problems)
    return groups


def _check_deployer_groups(
    accounts: Mapping[str, AccountSettings], groups: Mapping[str, tuple[str, ...]], problems: Problems
) -> None:
    """A group an account names must be defined: a typo would otherwise silently lock a team out."""
    for account_id, account in accounts.items():
        for i, group in enumerate(account.deployers.groups):
            if group not in groups:
                problems.add(
                    f"{subfield('platform.accounts', account_id)}.deployers.groups[{i}]",
                    f"{show(group)} is not defined in platform.groups",
                )


@dataclass(frozen=True)
class AccountSettings:
    """An onboarded scientist account; role names here override the platform defaults."""

    account_id: str
    execution_role_name: str | None = None
    execution_external_id: str | None = None
    training_role_name: str | None = None
    model_role_name: str | None = None
    api_invoke_role_name: str | None = None
    # who besides the account itself may call its models' APIs (README "Callers from other accounts")
    api_callers: ApiCallers = field(default_factory=lambda: ApiCallers())
    deployers: Deployers = field(default_factory=Deployers)
    # where this account's model locks live, instead of the platform's locks_s3_uri
    locks_s3_uri: str | None = None
    # recommend_instance may run SageMaker Inference Recommender jobs here (README "Instance recommendation")
    inference_recommender: bool = False
    # the hosting types a run may deploy (or be recommended) here; empty: every type SageMaker hosts
    endpoint_instance_types: tuple[str, ...] = ()
    # what a run's ``endpoint`` settings may use in this account (README "Serving settings")
    endpoint: EndpointCaps = field(default_factory=EndpointCaps)
    # VPC, KMS keys and isolation of the account's SageMaker jobs (README "Network and encryption")
    network: NetworkSettings = field(default_factory=NetworkSettings)
    # where a run's batch transform may read and write (README "Batch scoring"); empty: not bounded
    batch_prefixes: tuple[str, ...] = ()
    # The account's Ground Truth workteam, and where a run's labeling manifest may lie (README "Labeling
    # before training"): the manifest's objects are shown to that workteam.
    labeling_workteam_arn: str | None = None
    labeling_prefixes: tuple[str, ...] = ()
    # A run pauses at approve_deploy until one of the account's deployers approves it in the Airflow UI
    # (README "Approval"); the KFP engine refuses such runs.
    requires_approval: bool = False
    # the teams' shared multi-model endpoints a run may deploy into (README "Multi-model endpoints")
    multi_model_endpoints: Mapping[str, SharedEndpoint] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, account_id: str, raw: Mapping[str, Any] | None, problems: Problems) -> AccountSettings:
        prefix = subfield("platform.accounts", account_id)
        raw = _section(raw, prefix, problems)
        _check(problems, bool(ACCOUNT_ID_RE.match(account_id)), prefix, "account ids are twelve digits")
        known = {f.name for f in fields(cls)} - {"account_id", "deployers", "endpoint", "network"}
        _unknown_keys(problems, prefix, raw, known | {"deployers", "endpoint", "network"})
        values_network = parse_network_settings(raw.get("network"), f"{prefix}.network", account_id, problems)
        values: dict[str, Any] = {k: raw.get(k) for k in known}
        values["deployers"] = Deployers.from_dict(raw.get("deployers"), f"{prefix}.deployers", problems)
        values["endpoint"] = endpoint_caps_from_dict(raw.get("endpoint"), f"{prefix}.endpoint", problems)
        for key in ("execution_role_name", "training_role_name", "model_role_name", "api_invoke_role_name"):
            if values[key] is not None and not _is_name(values[key], ROLE_NAME_RE):
                problems.add(
                    f"{prefix}.{key}", "an IAM role name: 1-64 characters of letters, digits and +=,.@_-"
                )
                values[key] = None
        ext = values["execution_external_id"]
        if ext is not None and not _is_name(ext, EXTERNAL_ID_RE):
            problems.add(
                f"{prefix}.execution_external_id", "2-1224 characters of letters, digits and +=,.@:/_-"
            )
            values["execution_external_id"] = None
        if values["locks_s3_uri"] is not None and not is_locks_uri(values["locks_s3_uri"]):
            problems.add(f"{prefix}.locks_s3_uri", LOCKS_URI_RULE)
            values["locks_s3_uri"] = None
        values["api_callers"] = ApiCallers.from_dict(values["api_callers"], f"{prefix}.api_callers", problems)
        values["inference_recommender"] = _flag(
            values["inference_recommender"], f"{prefix}.inference_recommender", problems
        )
        values["endpoint_instance_types"] = _endpoint_instance_types(
            values["endpoint_instance_types"], f"{prefix}.endpoint_instance_types", problems
        )
        if values["requires_approval"] is None:
            values["requires_approval"] = False
        elif not isinstance(values["requires_approval"], bool):
            problems.add(f"{prefix}.requires_approval", "true or false")
            values["requires_approval"] = False
        values["batch_prefixes"] = _batch_prefixes(
            values["batch_prefixes"], f"{prefix}.batch_prefixes", problems
        )
        values["labeling_prefixes"] = _batch_prefixes(
            values["labeling_prefixes"], f"{prefix}.labeling_prefixes", problems
        )
        values["labeling_workteam_arn"] = _workteam_arn(
            values["labeling_workteam_arn"], account_id, f"{prefix}.labeling_workteam_arn", problems
        )
        values["multi_model_endpoints"] = parse_shared_endpoints(
            values["multi_model_endpoints"], f"{prefix}.multi_model_endpoints", problems
        )
        return cls(account_id=account_id, network=values_network, **values)


def _workteam_arn(raw: Any, account_id: str, name: str, problems: Problems) -> str | None:
    if raw is None:
        return None
    match = WORKTEAM_ARN_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None or match["account"] != account_id:
        problems.add(
            name,
            "a private or vendor workteam of this account: "
            f"arn:aws:sagemaker:<region>:{account_id}:workteam/private-crowd/<name>",
        )
        return None
    return str(raw)


def _flag(raw: Any, name: str, problems: Problems) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        problems.add(name, "true or false")
        return False
    return raw


def _endpoint_instance_types(raw: Any, name: str, problems: Problems) -> tuple[str, ...]:
    if raw is None:
        return ()
    known = hosting_instance_types()
    if not isinstance(raw, list) or not raw or any(t not in known for t in raw):
        bad = next((t for t in raw if t not in known), None) if isinstance(raw, list) else None
        problems.add(
            name,
            "a non-empty list of SageMaker hosting instance types such as ml.m5.large"
            + (f"; {show(bad)} is not one" if bad is not None else ""),
        )
        return ()
    return tuple(dict.fromkeys(raw))


def _batch_prefixes(raw: Any, name: str, problems: Problems) -> tuple[str, ...]:
    if raw is None:
        return ()
    ok = isinstance(raw, list) and len(raw) <= CAPTURE_PREFIXES_MAX
    ok = ok and all(
        is_s3_uri(uri) and uri.endswith("/") and s3_key_segments_problem(uri) is None for uri in raw
    )
    if not ok:
        problems.add(
            name,
            f"a list of at most {CAPTURE_PREFIXES_MAX} S3 prefixes ending in '/' such as s3://bucket/scoring/",
        )
        return ()
    return tuple(raw)


CAPTURE_PREFIXES_MAX = 50


def endpoint_caps_from_dict(raw: Any, prefix: str, problems: Problems) -> EndpointCaps:
    """An account's caps on its runs' ``endpoint`` settings; unknown keys and bad values are refused."""
    values = _known(EndpointCaps, _section(raw, prefix, problems), prefix, problems)
    for key in ("allowed_modes", "capture_prefixes", "allowed_strategies"):
        _as_tuple(values, key, prefix, problems)
    if "max_instances" in values and not _is_int(values["max_instances"], 1, MAX_INSTANCES):
        problems.add(f"{prefix}.max_instances", f"a whole number from 1 to {MAX_INSTANCES}")
        del values["max_instances"]
    for key, choices in (("allowed_modes", MODES), ("allowed_strategies", STRATEGIES)):
        if key in values and (not values[key] or not set(values[key]) <= set(choices)):
            problems.add(f"{prefix}.{key}", f"a non-empty list of: {', '.join(choices)}")
            del values[key]
    prefixes = values.get("capture_prefixes", ())
    if len(prefixes) > CAPTURE_PREFIXES_MAX:
        problems.add(f"{prefix}.capture_prefixes", f"at most {CAPTURE_PREFIXES_MAX} S3 prefixes")
        values["capture_prefixes"] = ()
    for i, uri in enumerate(values.get("capture_prefixes", ())):
        if not is_s3_uri(uri) or len(uri) > 512 or s3_key_segments_problem(uri) is not None:
            problems.add(
                f"{prefix}.capture_prefixes[{i}]",
                "an S3 prefix such as s3://bucket/captures/ (at most 512 characters, no empty, '.' or '..' "
                "segments)",
            )
            values["capture_prefixes"] = ()
    return EndpointCaps(**values)


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
    # What a run's conf may ask of the claim: a size up to max_pvc_size, and a storage class from
    # allowed_storage_classes (besides pvc_storage_class, the platform's own choice).
    max_pvc_size: str = "10Gi"
    allowed_storage_classes: tuple[str, ...] = ()
    # The ensure_pvc container's requests/limits, in the pod spec's own shape.
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> KubernetesSettings:
        p = "platform.kubernetes"
        values = _known(cls, _section(raw, p, problems), p, problems)
        _as_tuple(values, "allowed_storage_classes", p, problems)
        settings = cls(**values)
        settings._check_pod(problems)
        settings._check_claim(problems)
        return settings

    def _check_pod(self, problems: Problems) -> None:
        """Where and how the ensure_pvc pod runs."""
        p = "platform.kubernetes"
        for name in ("enabled", "deferrable"):
            _check(problems, isinstance(getattr(self, name), bool), f"{p}.{name}", "true or false")
        _check(problems, self.in_cluster in (None, True, False), f"{p}.in_cluster", "true, false or null")
        _check(
            problems,
            self.kubernetes_conn_id is None or _is_name(self.kubernetes_conn_id, CONN_ID_RE),
            f"{p}.kubernetes_conn_id",
            "an Airflow connection id, or null for the in-cluster or default configuration",
        )
        _check(
            problems,
            _is_dns1123(self.namespace, 63),
            f"{p}.namespace",
            "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        )
        _check(
            problems,
            _is_dns1123_subdomain(self.service_account_name),
            f"{p}.service_account_name",
            "a Kubernetes service account name: lowercase letters, digits, '-' and '.', at most 253",
        )
        _check(
            problems,
            isinstance(self.image, str) and bool(POD_IMAGE_RE.match(self.image)),
            f"{p}.image",
            "an image reference such as python:3.12-slim (at most 255 characters, no spaces)",
        )
        _check(
            problems,
            _is_int(self.startup_timeout_seconds, 1),
            f"{p}.startup_timeout_seconds",
            "a positive whole number of seconds",
        )
        _check(
            problems,
            _is_resources(self.resources),
            f"{p}.resources",
            "requests/limits of cpu, memory, ephemeral-storage as Kubernetes quantities, "
            'e.g. {"requests": {"cpu": "50m"}}',
        )

    def _check_claim(self, problems: Problems) -> None:
        """The claim the pod ensures, and what a run's conf may ask of it."""
        p = "platform.kubernetes"
        _check(
            problems,
            _is_dns1123(self.pvc_name, 253),
            f"{p}.pvc_name",
            "a DNS-1123 name: lowercase letters, digits and '-', at most 253 characters",
        )
        _check(problems, is_quantity(self.max_pvc_size), f"{p}.max_pvc_size", QUANTITY_RULE)
        if not is_quantity(self.pvc_size):
            problems.add(f"{p}.pvc_size", QUANTITY_RULE)
        elif is_quantity(self.max_pvc_size) and quantity_bytes(self.pvc_size) > quantity_bytes(
            self.max_pvc_size
        ):
            problems.add(f"{p}.pvc_size", f"at most max_pvc_size ({self.max_pvc_size})")
        _check(
            problems,
            self.pvc_storage_class is None or _is_dns1123_subdomain(self.pvc_storage_class),
            f"{p}.pvc_storage_class",
            "a StorageClass name (DNS-1123), or null for the cluster default",
        )
        for i, name in enumerate(self.allowed_storage_classes):
            _check(
                problems,
                _is_dns1123_subdomain(name),
                f"{p}.allowed_storage_classes[{i}]",
                "a StorageClass name (DNS-1123)",
            )
        _check(
            problems,
            self.pvc_access_mode in ACCESS_MODES,
            f"{p}.pvc_access_mode",
            f"one of {', '.join(ACCESS_MODES)}",
        )
        _check(
            problems,
            _is_int(self.wait_for_bound_seconds, 0, 24 * 3600),
            f"{p}.wait_for_bound_seconds",
            "a whole number of seconds up to 86400, 0 to not wait for Bound",
        )

    def claim_override_problems(
        self, size: str | None, storage_class: str | None, problems: Problems
    ) -> None:
        """The bounds a run's pvc_size and pvc_storage_class must keep (the platform's own are allowed)."""
        limit = self.max_pvc_size
        if is_quantity(size) and is_quantity(limit) and quantity_bytes(str(size)) > quantity_bytes(limit):
            problems.add("pvc_size", f"at most {limit} (platform.kubernetes.max_pvc_size)")
        allowed = {
            *self.allowed_storage_classes,
            *([self.pvc_storage_class] if self.pvc_storage_class else []),
        }
        if storage_class is not None and storage_class not in allowed:
            listed = ", ".join(sorted(allowed)[:8]) if allowed else "none (leave it empty)"
            problems.add(
                "pvc_storage_class",
                f"{show(storage_class)} is not allowed; platform.kubernetes.allowed_storage_classes: {listed}",
            )


ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
POD_IMAGE_RE = re.compile(r"^[^\s]{1,255}\Z")


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
    # Registries images may be copied from, besides the onboarded accounts' ECR, AWS's own ECR registries
    # (built-in algorithms, Deep Learning Containers) and public.ecr.aws: "host[:port]" or "*.domain[:port]"
    # ("docker.io", "ghcr.io", "*.registry.example.com", "127.0.0.1:*"). IP addresses and internal names
    # (localhost, *.svc, *.internal, single labels) are refused unless an entry names them; link-local and
    # metadata addresses always are.
    allowed_source_registries: tuple[str, ...] = ()
    # Hosts a source registry's "Bearer realm=" may send the copy to for a token, besides the registry's
    # own host and auth.docker.io for Docker Hub. Checked before skopeo runs.
    allowed_token_realms: tuple[str, ...] = ()
    # Accept token realms over plain http:// (tokens then travel unencrypted); off by default.
    allow_http_token_realms: bool = False
    # How long one registry operation (a copy, an inspect) may run before the task fails naming the
    # registry: base + per_gb * the image's size, at most max (minutes; fractions allowed).
    copy_timeout_base_minutes: float = 10
    copy_timeout_minutes_per_gb: float = 3
    copy_timeout_max_minutes: float = 120

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> EcrSettings:
        values = _known(cls, _section(raw, "platform.ecr", problems), "platform.ecr", problems)
        for key in ("platforms", "allowed_source_registries", "allowed_token_realms"):
            _as_tuple(values, key, "platform.ecr", problems)
        settings = cls(**values)
        for key in ("allowed_source_registries", "allowed_token_realms"):
            entries = getattr(settings, key)
            if not isinstance(entries, tuple):
                problems.add(f"platform.ecr.{key}", 'a list of "host[:port]" or "*.domain[:port]"')
                continue
            for entry in entries:
                problem = host_pattern_problem(entry)
                if problem is not None:
                    problems.add(f"platform.ecr.{key}", problem)
        _check(
            problems,
            isinstance(settings.allow_http_token_realms, bool),
            "platform.ecr.allow_http_token_realms",
            "true or false",
        )
        for key in ("copy_timeout_base_minutes", "copy_timeout_minutes_per_gb", "copy_timeout_max_minutes"):
            value = getattr(settings, key)
            _check(
                problems,
                isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 24 * 60,
                f"platform.ecr.{key}",
                "a number of minutes above 0 and at most 1440",
            )
        _check(
            problems,
            not isinstance(settings.copy_timeout_max_minutes, int | float)
            or not isinstance(settings.copy_timeout_base_minutes, int | float)
            or settings.copy_timeout_max_minutes >= settings.copy_timeout_base_minutes,
            "platform.ecr.copy_timeout_max_minutes",
            "at least copy_timeout_base_minutes",
        )
        _check(
            problems,
            settings.tag_mutability in ("MUTABLE", "IMMUTABLE"),
            "platform.ecr.tag_mutability",
            "MUTABLE or IMMUTABLE",
        )
        _check(
            problems,
            _is_name(settings.repository_prefix, REPOSITORY_PREFIX_RE),
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


PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?\Z")
REPOSITORY_PREFIX_RE = re.compile(r"^([a-z0-9]+([._-][a-z0-9]+)*/){0,16}\Z")
REGISTRY_ENDPOINT_RE = re.compile(
    r"^([A-Za-z0-9-]+|\{account_id\}|\{region\})"
    r"(\.([A-Za-z0-9-]+|\{account_id\}|\{region\}))*(:[0-9]{1,5})?\Z"
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
    # Content types API Gateway passes as bytes (README "Binary payloads"); any other body is text.
    binary_media_types: tuple[str, ...] = ("image/*", "application/x-image")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> ApiSettings:
        """Every rule of ``platform.api``, those between settings included: a run fails in validate, not
        at expose_api after hours of training."""
        values = _known(cls, _section(raw, "platform.api", problems), "platform.api", problems)
        _as_tuple(values, "allowed_vpc_endpoint_ids", "platform.api", problems)
        _as_tuple(values, "binary_media_types", "platform.api", problems)
        settings = cls(**values)
        validate_api_settings(settings, problems)
        return settings


VPC_ENDPOINT_ID_RE = re.compile(r"^vpce-[0-9a-f]{8,17}\Z")
ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}\Z")
# CloudWatch Logs log group (without the trailing ':*') or a Firehose stream named amazon-apigateway-*.
ACCESS_LOG_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(logs:[a-z0-9-]+:\d{12}:log-group:[\w./#-]{1,512}"
    r"|firehose:[a-z0-9-]+:\d{12}:deliverystream/amazon-apigateway-[\w.-]{1,45})\Z",
    re.ASCII,
)
_INT32_MAX = 2**31 - 1


def validate_api_settings(settings: ApiSettings, problems: Problems) -> None:
    """The rules of ``platform.api``: each setting, then the rules between settings."""
    _check_api_values(settings, problems)
    _check_api_limits(settings, problems)
    _check_api_access(settings, problems)


def _check_api_values(settings: ApiSettings, problems: Problems) -> None:
    p = "platform.api"
    _check(
        problems,
        _is_name(settings.stage_name, STAGE_RE),
        f"{p}.stage_name",
        "1-128 characters of letters, digits, '-' and '_'",
    )
    _check(
        problems, settings.authorization in ("AWS_IAM", "API_KEY"), f"{p}.authorization", "AWS_IAM or API_KEY"
    )
    _check(
        problems,
        _is_int(settings.integration_timeout_ms, 50, 29000),
        f"{p}.integration_timeout_ms",
        "between 50 and 29000 milliseconds",
    )
    _check(
        problems, settings.quota_period in ("DAY", "WEEK", "MONTH"), f"{p}.quota_period", "DAY, WEEK or MONTH"
    )
    _check(
        problems,
        settings.endpoint_type in ("REGIONAL", "PRIVATE", "EDGE"),
        f"{p}.endpoint_type",
        "REGIONAL, PRIVATE or EDGE",
    )
    dest = settings.access_log_destination_arn
    if dest is not None and not _is_name(dest, ACCESS_LOG_ARN_RE):
        problems.add(
            f"{p}.access_log_destination_arn",
            "a CloudWatch Logs log group ARN (without ':*') or a Firehose stream named amazon-apigateway-*",
        )


def _check_api_limits(settings: ApiSettings, problems: Problems) -> None:
    p = "platform.api"
    rate, burst, quota = settings.throttle_rate_limit, settings.throttle_burst_limit, settings.quota_limit
    rate_ok = isinstance(rate, int | float) and not isinstance(rate, bool) and 0 < rate <= 1_000_000
    _check(
        problems,
        rate_ok,
        f"{p}.throttle_rate_limit",
        "a positive number of requests per second, at most 1000000",
    )
    _check(
        problems,
        _is_int(burst, 1, _INT32_MAX),
        f"{p}.throttle_burst_limit",
        "a whole number of requests, at least 1",
    )
    if quota is None:
        return
    if not _is_int(quota, 1, _INT32_MAX):
        problems.add(f"{p}.quota_limit", "a whole number of requests per period, at least 1, or null")
    elif settings.authorization != "API_KEY":
        problems.add(
            f"{p}.quota_limit",
            "quotas are enforced per API key: set authorization to API_KEY or leave quota_limit null",
        )


def _check_api_access(settings: ApiSettings, problems: Problems) -> None:
    p = "platform.api"
    for i, vpce in enumerate(settings.allowed_vpc_endpoint_ids):
        if not _is_name(vpce, VPC_ENDPOINT_ID_RE):
            problems.add(
                f"{p}.allowed_vpc_endpoint_ids[{i}]", "a VPC endpoint id such as vpce-0123456789abcdef0"
            )
    org = settings.allowed_org_id
    if org is not None:
        if not _is_name(org, ORG_ID_RE):
            problems.add(f"{p}.allowed_org_id", "an AWS Organizations id such as o-a1b2c3d4e5")
        elif settings.authorization != "AWS_IAM":
            problems.add(
                f"{p}.allowed_org_id",
                "needs authorization AWS_IAM: API-key callers carry no AWS identity to check the org of",
            )
    if settings.endpoint_type == "PRIVATE" and not settings.allowed_vpc_endpoint_ids:
        problems.add(
            f"{p}.allowed_vpc_endpoint_ids",
            "a PRIVATE API is reachable only through VPC endpoints: list at least one",
        )
    _check_binary_media_types(settings.binary_media_types, problems)


# A media type as API Gateway matches it against Content-Type and Accept: type/subtype, either part '*'.
MEDIA_TYPE_RE = re.compile(
    r"^(\*|[A-Za-z0-9][\w!#$&^.+-]{0,126})/(\*|[A-Za-z0-9][\w!#$&^.+-]{0,126})\Z", re.ASCII
)
BINARY_MEDIA_TYPES_MAX = 50


def _check_binary_media_types(types: Any, problems: Problems) -> None:
    p = "platform.api.binary_media_types"
    if len(types) > BINARY_MEDIA_TYPES_MAX:
        problems.add(p, f"at most {BINARY_MEDIA_TYPES_MAX} media types")
        return
    for i, media_type in enumerate(types):
        if not _is_name(media_type, MEDIA_TYPE_RE) or (media_type.startswith("*/") and media_type != "*/*"):
            problems.add(
                f"{p}[{i}]", f"a media type such as image/* or application/x-image, got {show(media_type)}"
            )
    named = [t for t in types if isinstance(t, str)]
    if len(set(named)) != len(named):
        problems.add(p, "lists a media type twice")


CALLER_ACCOUNTS_MAX = 100


@dataclass(frozen=True)
class ApiCallers:
    """Who may call the account's model APIs besides the account itself (``accounts.<id>.api_callers``):
    other AWS accounts and/or every account of one AWS Organization. The API's resource policy admits
    exactly these (sagelift.domain.apigateway.build_resource_policy); each caller's own IAM policy must
    also allow execute-api:Invoke. Empty: only the account itself."""

    accounts: tuple[str, ...] = ()
    org_id: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.accounts or self.org_id)

    @classmethod
    def from_dict(cls, raw: Any, prefix: str, problems: Problems) -> ApiCallers:
        values = _known(cls, _section(raw, prefix, problems), prefix, problems)
        accounts = _name_list(
            values.get("accounts"),
            f"{prefix}.accounts",
            lambda v: _is_name(v, ACCOUNT_ID_RE),
            "a twelve-digit AWS account id",
            problems,
        )
        if len(accounts) > CALLER_ACCOUNTS_MAX:
            problems.add(f"{prefix}.accounts", f"at most {CALLER_ACCOUNTS_MAX} accounts; use org_id for more")
            accounts = ()
        if len(set(accounts)) != len(accounts):
            problems.add(f"{prefix}.accounts", "lists an account twice")
        org_id = values.get("org_id")
        if org_id is not None and not _is_name(org_id, ORG_ID_RE):
            problems.add(f"{prefix}.org_id", "an AWS Organizations id such as o-a1b2c3d4e5")
            org_id = None
        return cls(accounts=tuple(sorted(set(accounts))), org_id=org_id)


def check_api_callers(accounts: Mapping[str, AccountSettings], api: ApiSettings, problems: Problems) -> None:
    """Callers from other accounts are AWS identities: they need AWS_IAM authorization (an API-key caller
    carries no account to check)."""
    if api.authorization == "AWS_IAM":
        return
    for account_id, account in accounts.items():
        if account.api_callers.any:
            problems.add(
                f"{subfield('platform.accounts', account_id)}.api_callers",
                "callers from other accounts need platform.api.authorization AWS_IAM",
            )


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
    # Per call, the request fields a run's request_overrides may set (README "Request overrides").
    allowed_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> SageMakerSettings:
        p = "platform.sagemaker"
        values = _known(cls, _section(raw, p, problems), p, problems)
        values["allowed_overrides"] = parse_allowed_overrides(
            values.get("allowed_overrides"), f"{p}.allowed_overrides", problems
        )
        settings = cls(**values)
        for name, (low, high) in SAGEMAKER_BOUNDS.items():
            _check(
                problems,
                _is_int(getattr(settings, name), low, high),
                f"{p}.{name}",
                f"a whole number from {low} to {high}",
            )
        for name in ("deferrable", "stream_training_logs"):
            _check(problems, isinstance(getattr(settings, name), bool), f"{p}.{name}", "true or false")
        return settings


# What SageMaker accepts (VolumeSizeInGB, MaxRuntimeInSeconds: 28 days) and what makes sense to wait for.
SAGEMAKER_BOUNDS = {
    "training_volume_size_gb": (1, 16384),
    "training_max_runtime_seconds": (1, 28 * 24 * 3600),
    "endpoint_initial_instance_count": (1, 1000),
    "check_interval_seconds": (1, 3600),
    "training_wait_budget_seconds": (1, 30 * 24 * 3600),
    "endpoint_wait_budget_seconds": (1, 7 * 24 * 3600),
    "keep_endpoint_configs": (1, 100),
}


@dataclass(frozen=True)
class LockSettings:
    """How runs of one model take turns (the lock object lives at ``locks_s3_uri``; sagelift.steps.lock).

    A run waits at most ``wait_budget_seconds`` (0: fail at once) for the run holding its model's lock,
    looking every ``check_interval_seconds``. A lock its run never released (every release path gone)
    lapses ``lease_seconds`` after it was taken; null derives the lease from the run's own budgets
    (copying, training if it trains, the endpoint) plus an hour, so a live run never outlasts it.
    """

    wait_budget_seconds: int = 6 * 3600
    check_interval_seconds: int = 30
    lease_seconds: int | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, problems: Problems) -> LockSettings:
        p = "platform.locks"
        settings = cls(**_known(cls, _section(raw, p, problems), p, problems))
        _check(
            problems,
            _is_int(settings.wait_budget_seconds, 0, 7 * 24 * 3600),
            f"{p}.wait_budget_seconds",
            "a whole number of seconds from 0 (do not wait) to 604800",
        )
        _check(
            problems,
            _is_int(settings.check_interval_seconds, 1, 3600),
            f"{p}.check_interval_seconds",
            "a whole number from 1 to 3600",
        )
        _check(
            problems,
            settings.lease_seconds is None or _is_int(settings.lease_seconds, 1, 30 * 24 * 3600),
            f"{p}.lease_seconds",
            "a whole number of seconds from 1 to 2592000, or null to derive it from the run's budgets",
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
    # Where a run's tags_s3_path may point besides tags_s3_uri: S3 objects, or prefixes ending in '/'.
    allowed_tag_document_prefixes: tuple[str, ...] = ()
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    ecr: EcrSettings = field(default_factory=EcrSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    sagemaker: SageMakerSettings = field(default_factory=SageMakerSettings)
    # Where runs of one model take turns: an S3 bucket/prefix in each scientist account (README
    # "Runs of one model take turns"); null runs them unserialized. Per-account override allowed.
    locks_s3_uri: str | None = None
    locks: LockSettings = field(default_factory=LockSettings)
    # Named sets of Airflow users that accounts' deployers refer to (see "who may deploy where" above).
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # How long approve_deploy waits for an answer in an account that requires approval; then: Reject.
    approval_timeout_seconds: int = 24 * 3600
    # Images (registry/repository) whose containers serve multi-model endpoints, besides the built-in
    # algorithms that do (README "Multi-model endpoints").
    multi_model_images: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PlatformConfig:
        raw = _platform_document(raw)
        problems = Problems()
        _unknown_keys(problems, "platform", raw, {f.name for f in fields(cls)})
        simple = _top_level_settings(raw, problems)
        accounts = _accounts(raw.get("accounts"), problems)
        groups = _groups(raw.get("groups"), problems)
        _check_deployer_groups(accounts, groups, problems)
        kubernetes = KubernetesSettings.from_dict(raw.get("kubernetes"), problems)
        ecr = EcrSettings.from_dict(raw.get("ecr"), problems)
        api = ApiSettings.from_dict(raw.get("api"), problems)
        check_api_callers(accounts, api, problems)
        if simple["region"]:
            check_network_regions({a: s.network for a, s in accounts.items()}, simple["region"], problems)
        sagemaker = SageMakerSettings.from_dict(raw.get("sagemaker"), problems)
        locks = LockSettings.from_dict(raw.get("locks"), problems)
        simple["multi_model_images"] = parse_multi_model_images(
            raw.get("multi_model_images"), "platform.multi_model_images", problems
        )
        check_shared_endpoint_images(
            {a: s.multi_model_endpoints for a, s in accounts.items()}, simple["multi_model_images"], problems
        )
        problems.raise_if_any()
        return cls(
            accounts=accounts,
            groups=groups,
            kubernetes=kubernetes,
            ecr=ecr,
            api=api,
            sagemaker=sagemaker,
            locks=locks,
            **simple,
        )

    # --- derived facts for one account -------------------------------------------------------------
    def account(self, account_id: str) -> AccountSettings:
        """The onboarded account's settings; refuses any account the platform has not onboarded.

        The refusal names only the account asked for: who else is onboarded is not the caller's business.
        """
        try:
            return self.accounts[account_id]
        except KeyError:
            raise SageliftValidationError.single(
                "account_id",
                f"account {clip(str(account_id), 16)} is not onboarded to sagelift; an ML engineer adds it "
                "to platform.accounts (see the README)",
            ) from None

    def may_deploy(self, user: str, account_id: str) -> bool:
        """Whether ``user`` may deploy into and tear down in ``account_id``: an onboarded account listing
        the user, or a group the user is in, among its deployers."""
        account = self.accounts.get(account_id)
        if account is None or not user:
            return False
        deployers = account.deployers
        return user in deployers.users or any(user in self.groups.get(g, ()) for g in deployers.groups)

    def approvers(self, account_id: str) -> tuple[str, ...]:
        """Who may approve a run into the account (approve_deploy): its deployers, groups expanded."""
        account = self.accounts.get(account_id)
        if account is None:
            return ()
        names = [*account.deployers.users]
        for group in account.deployers.groups:
            names += self.groups.get(group, ())
        return tuple(dict.fromkeys(names))

    def check_deployer(self, user: str, account_id: str, action: str = DEPLOY) -> None:
        """Refuse ``user`` unless it may ``action`` (DEPLOY, TEAR_DOWN) the account.

        The refusal names the user and the account asked for, and nothing else: it reads the same for an
        account that is not onboarded and one that does not list the user, so it cannot be used to learn
        which accounts are onboarded or who may deploy there.
        """
        if not self.may_deploy(user, account_id):
            raise SageliftValidationError.single(
                "account_id",
                f"user {show(user)} may not {action} account {clip(str(account_id), 16)}: not one of its "
                "deployers (platform.accounts.<account>.deployers)",
            )

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

    def locks_uri(self, account_id: str) -> str | None:
        """Where the account's model locks live (placeholders filled in); None: runs are not serialized."""
        template = self.account(account_id).locks_s3_uri or self.locks_s3_uri
        return fill_locks_uri(template, account_id, self.region) if template else None


def parse_platform_variable(text: str | None) -> dict[str, Any] | None:
    """The Variable's JSON text parsed within bounds (None when the Variable is not set); a text that is
    not a JSON object is refused naming the Variable, never with a raw JSON or recursion error."""
    if text is None:
        return None
    value, problem = parse_json_text(text, PLATFORM_TEXT_LIMITS)
    if problem is not None:
        raise SageliftValidationError.single("platform", f"the Variable {VARIABLE_KEY!r} {problem}")
    if not isinstance(value, dict):
        raise SageliftValidationError.single("platform", f"must be a JSON object, got {kind(value)}")
    return value


def _platform_document(raw: Any) -> Mapping[str, Any]:
    """The Variable's value, refused whole when it is missing, not an object, or out of bounds."""
    if raw is None:
        raise SageliftValidationError.single(
            "platform",
            f"the Airflow Variable {VARIABLE_KEY!r} is not set; see README 'Platform configuration'",
        )
    if not isinstance(raw, Mapping):
        raise SageliftValidationError.single("platform", f"must be a JSON object, got {kind(raw)}")
    found = find_json_problem(dict(raw), PLATFORM_LIMITS, "platform")
    if found is not None:
        raise SageliftValidationError.single(*found)
    return raw


_ROLE_NAME_RULE = "an IAM role name: 1-64 characters of letters, digits and +=,.@_-"
# The top-level settings besides the sections: the rule each must keep, as (check, rule).
# approve_deploy's wait for an answer: at least a minute, at most a week (the model's lock is held).
APPROVAL_TIMEOUT_MIN = 60
APPROVAL_TIMEOUT_MAX = 7 * 24 * 3600
_TOP_LEVEL_RULES: dict[str, tuple[Any, str]] = {
    "master_role_arn": (
        lambda v: v is None or _is_name(v, ROLE_ARN_RE),
        "an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>",
    ),
    "master_external_id": (
        lambda v: v is None or _is_name(v, EXTERNAL_ID_RE),
        "2-1224 characters of letters, digits and +=,.@:/_-",
    ),
    "execution_role_name": (lambda v: _is_name(v, ROLE_NAME_RE), _ROLE_NAME_RULE),
    "training_role_name": (lambda v: _is_name(v, ROLE_NAME_RE), _ROLE_NAME_RULE),
    "model_role_name": (lambda v: _is_name(v, ROLE_NAME_RE), _ROLE_NAME_RULE),
    "api_invoke_role_name": (lambda v: _is_name(v, ROLE_NAME_RE), _ROLE_NAME_RULE),
    "session_duration_seconds": (
        lambda v: _is_int(v, 900, 3600),
        "between 900 and 3600 (AWS caps role-chained sessions at one hour)",
    ),
    "account_conn_id_prefix": (
        lambda v: isinstance(v, str) and len(v) <= 100 and bool(CONN_ID_RE.match(v + "0")),
        "at most 100 letters, digits, '_', '.' and '-'",
    ),
    "tags_s3_uri": (lambda v: v is None or is_s3_uri(v), "an S3 URI such as s3://bucket/path/tags.json"),
    "locks_s3_uri": (lambda v: v is None or is_locks_uri(v), LOCKS_URI_RULE),
    "allowed_tag_document_prefixes": (_is_tag_document_prefixes, TAG_DOCUMENT_PREFIXES_RULE),
    "approval_timeout_seconds": (
        lambda v: _is_int(v, APPROVAL_TIMEOUT_MIN, APPROVAL_TIMEOUT_MAX),
        f"a whole number of seconds from {APPROVAL_TIMEOUT_MIN} to {APPROVAL_TIMEOUT_MAX} (7 days)",
    ),
}


def _top_level_settings(raw: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """The region and the other top-level settings present in ``raw``, each checked against its rule."""
    region = raw.get("region")
    _check(problems, _is_name(region, REGION_RE), "platform.region", "an AWS region such as us-east-1")
    settings: dict[str, Any] = {"region": str(region) if isinstance(region, str) else ""}
    for key, (ok, rule) in _TOP_LEVEL_RULES.items():
        if key in raw:
            _check(problems, ok(raw[key]), f"platform.{key}", rule)
            settings[key] = tuple(raw[key]) if isinstance(raw[key], list) else raw[key]
    return settings


def _accounts(raw: Any, problems: Problems) -> dict[str, AccountSettings]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add("platform.accounts", "a JSON object keyed by twelve-digit account id")
        return {}
    return {str(a): AccountSettings.from_dict(str(a), settings, problems) for a, settings in raw.items()}


def _is_dns1123(value: Any, max_len: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_len and bool(DNS1123_RE.match(value))


def is_dns1123_name(value: Any) -> bool:
    """A DNS-1123 subdomain-style object name as Kubernetes uses for claims (no dots here)."""
    return _is_dns1123(value, 253)


def _is_dns1123_subdomain(value: Any) -> bool:
    """A DNS-1123 subdomain (labels joined by '.'), as Kubernetes names service accounts and classes."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 253
        and all(_is_dns1123(label, 63) for label in value.split("."))
    )


def _is_resources(value: Any) -> bool:
    if not isinstance(value, Mapping) or not set(value) <= {"requests", "limits"}:
        return False
    for amounts in value.values():
        if not isinstance(amounts, Mapping) or not set(amounts) <= {"cpu", "memory", "ephemeral-storage"}:
            return False
        for name, amount in amounts.items():
            cpu_ok = name == "cpu" and isinstance(amount, str) and bool(MILLICPU_RE.match(amount))
            if not (cpu_ok and int(amount[:-1]) > 0) and not is_quantity(amount):
                return False
    return True


QUANTITY_RULE = "a Kubernetes quantity such as 50Mi or 10Gi"
MILLICPU_RE = re.compile(r"^[0-9]{1,9}m\Z")
_QUANTITY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def is_quantity(value: Any) -> bool:
    """A positive Kubernetes resource quantity in the common suffix forms (50Mi, 10Gi, 1G), at most 32
    characters (a longer number is no size anyone means)."""
    if not isinstance(value, str) or len(value) > 32:
        return False
    match = QUANTITY_RE.match(value)
    if match is None:
        return False
    return Decimal(match.group(1)) > 0 and match.group(3) != "m"


def quantity_bytes(value: str) -> Decimal:
    """The amount a quantity accepted by ``is_quantity`` stands for (bytes for sizes)."""
    match = QUANTITY_RE.match(value)
    if match is None:
        raise SageliftValidationError.single("quantity", f"{show(value)} is not a Kubernetes quantity")
    return Decimal(match.group(1)) * _QUANTITY_FACTORS[match.group(3) or ""]
