"""Teardown of one model: its parameters, the confirmation rule, which resources are the model's, the report.

sagemaker_teardown deletes what sagemaker_deploy created for a model_name in the scientist account:
the API Gateway API (with usage plan and key), the endpoint, the per-run endpoint configs and models,
the CloudWatch alarms sagelift created to guard the model's updates (never alarms a conf named),
the endpoint variant's scalable target and scaling policy (Application Auto Scaling),
and optionally the images sagelift copied into ECR for the model (those carrying its copy record that no
other model recorded or still uses) and the pipeline's volume claim. A resource is the model's only if its name has the shape sagemaker_deploy gives it (``<model_name>`` or
``<model_name>-<8 hex run key>``) and it carries the ``sagelift:model-name`` tag with the model's name,
so a look-alike made by someone else survives.

The ``confirm`` parameter must repeat the model name; the check runs before any remote call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.ownership import OWNER_TAG_KEY
from sagelift.domain.params import ACCOUNT_ID_RE, MODEL_NAME_MAX, SAGEMAKER_NAME_RE
from sagelift.domain.plan import Plan
from sagelift.domain.platform import PlatformConfig

MODEL_TAG = OWNER_TAG_KEY


@dataclass(frozen=True)
class TeardownParamSpec:
    name: str
    default: Any
    schema: dict[str, Any]
    title: str
    description: str


TEARDOWN_PARAMETERS: tuple[TeardownParamSpec, ...] = (
    TeardownParamSpec(
        "model_name",
        "",
        {"type": "string"},
        "Model name",
        "The model_name whose deployment to delete, as given to sagemaker_deploy.",
    ),
    TeardownParamSpec(
        "account_id",
        "",
        {"type": ["string", "integer"]},
        "Scientist AWS account",
        "Twelve-digit id of the account the model was deployed to.",
    ),
    TeardownParamSpec(
        "confirm",
        "",
        {"type": "string"},
        "Confirm",
        "Type the model name again to confirm. Deletion cannot be undone.",
    ),
    TeardownParamSpec(
        "delete_images",
        False,
        {"type": "boolean"},
        "Delete copied images",
        "Also delete the images sagelift copied into your account's ECR for this model's runs "
        "and the repositories sagelift created for it once they are empty "
        "(never images you pushed yourself, nor a repository that holds other images).",
    ),
    TeardownParamSpec(
        "delete_pvc",
        False,
        {"type": "boolean"},
        "Delete the pipeline volume claim",
        "Also delete the pipeline's PersistentVolumeClaim, if it was created for this model.",
    ),
)


@dataclass(frozen=True)
class TeardownRequest:
    model_name: str
    account_id: str
    delete_images: bool = False
    delete_pvc: bool = False


def parse_teardown_conf(raw: Mapping[str, Any]) -> TeardownRequest:
    problems = Problems()
    known = {spec.name for spec in TEARDOWN_PARAMETERS}
    for key in sorted(set(raw) - known):
        problems.add(key, f"unknown parameter; known parameters: {', '.join(sorted(known))}")
    model_name = raw.get("model_name")
    if not isinstance(model_name, str) or not model_name.strip():
        problems.add("model_name", "required: the model whose deployment to delete")
        model_name = ""
    else:
        model_name = model_name.strip()
        if len(model_name) > MODEL_NAME_MAX or not SAGEMAKER_NAME_RE.match(model_name):
            problems.add("model_name", f"is not a name sagemaker_deploy accepts: {model_name!r}")
    account = raw.get("account_id")
    account_id = "" if account is None or isinstance(account, bool) else str(account).strip()
    if not ACCOUNT_ID_RE.match(account_id):
        problems.add("account_id", f"must be exactly twelve digits, got {account!r}")
    confirm = raw.get("confirm")
    if model_name and confirm != model_name:
        problems.add("confirm", f"must equal the model name {model_name!r} to confirm the deletion")
    flags = {}
    for name in ("delete_images", "delete_pvc"):
        value = raw.get(name, False)
        if not isinstance(value, bool):
            problems.add(name, f"must be true or false, got {value!r}")
            value = False
        flags[name] = value
    problems.raise_if_any()
    return TeardownRequest(model_name=model_name, account_id=account_id, **flags)


@dataclass(frozen=True)
class TeardownPlan:
    """A teardown run's plan: the request, the platform snapshot taken by its validate, the run's ids."""

    request: TeardownRequest
    platform: PlatformConfig
    platform_raw: Mapping[str, Any]
    dag_id: str
    run_id: str

    @property
    def account_id(self) -> str:
        return self.request.account_id

    @property
    def model_name(self) -> str:
        return self.request.model_name

    @property
    def region(self) -> str:
        return self.platform.region

    def to_xcom(self) -> dict[str, Any]:
        return {
            "teardown": asdict(self.request),
            "platform": dict(self.platform_raw),
            "dag_id": self.dag_id,
            "run_id": self.run_id,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | None) -> TeardownPlan:
        if not data or "teardown" not in data:
            raise SageliftValidationError.single(
                "plan", "no teardown plan: the validate task must succeed before this step"
            )
        return cls(
            request=TeardownRequest(**data["teardown"]),
            platform=PlatformConfig.from_dict(data["platform"]),
            platform_raw=dict(data["platform"]),
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
        )


def build_teardown_plan(
    request: TeardownRequest, platform_raw: Mapping[str, Any] | None, dag_id: str, run_id: str
) -> TeardownPlan:
    """Check the platform and that the account is onboarded; the teardown's plan."""
    platform = PlatformConfig.from_dict(platform_raw)
    platform.account(request.account_id)
    return TeardownPlan(request, platform, dict(platform_raw or {}), dag_id, run_id)


def read_any_plan(data: Mapping[str, Any] | None) -> Plan | TeardownPlan:
    """The plan of a deploy or of a teardown run, for the steps both DAGs share."""
    if data and "teardown" in data:
        return TeardownPlan.from_xcom(data)
    return Plan.from_xcom(data)


@dataclass
class TeardownReport:
    """What a teardown deleted, by kind; empty lists mean there was nothing of that kind left."""

    model_name: str
    account_id: str
    api: list[str] = field(default_factory=list)
    endpoint: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    # model monitoring: the endpoint's schedule, its data-quality job definitions and drift alarms
    monitoring: list[str] = field(default_factory=list)
    # Application Auto Scaling resource ids (their scaling policies go with them)
    scalable_targets: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    pvc: list[str] = field(default_factory=list)
    # ECR repositories left empty that sagelift had created for the model
    repositories: list[str] = field(default_factory=list)
    # copied images left in place: recorded for another model too, or still used by a SageMaker model
    images_kept: list[str] = field(default_factory=list)

    @property
    def nothing_deleted(self) -> bool:
        return not any(
            (
                self.api,
                self.endpoint,
                self.endpoint_configs,
                self.models,
                self.alarms,
                self.monitoring,
                self.scalable_targets,
                self.images,
                self.pvc,
                self.repositories,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        if self.nothing_deleted:
            lines = [f"Nothing to delete for model {self.model_name} in account {self.account_id}."]
        else:
            lines = [f"Deleted for model {self.model_name} in account {self.account_id}:"]
        for label, items in (
            ("API Gateway APIs", self.api),
            ("endpoint", self.endpoint),
            ("endpoint configs", self.endpoint_configs),
            ("models", self.models),
            ("CloudWatch alarms", self.alarms),
            ("model monitoring", self.monitoring),
            ("scalable targets (with their scaling policies)", self.scalable_targets),
            ("ECR images", self.images),
            ("ECR repositories (left empty)", self.repositories),
            ("volume claims", self.pvc),
        ):
            if items:
                lines.append(f"  {label}: {', '.join(items)}")
        if self.images_kept:
            lines.append(f"Kept ECR images (used or recorded elsewhere): {', '.join(self.images_kept)}")
        return "\n".join(lines)
