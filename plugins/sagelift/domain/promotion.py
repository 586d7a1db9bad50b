"""Staged promotion across accounts (issue 17 item 9): a run's ``promote_from`` and a retrain's ``stages``.

A retrain registration may name stages, for example a staging account and then a production account::

    "stages": [{"name": "staging", "account_id": "333333333333"},
               {"name": "production", "account_id": "444444444444"}]

The retrain trains, registers and deploys into the first stage (an ordinary sagemaker_deploy run of the
registered conf, whose ``account_id`` must be the first stage's). Each next stage is a sagemaker_deploy
run with ``promote_from`` instead of training::

    "promote_from": {"account_id": "333333333333", "version": 3}

naming the previous stage's account and the model package version its run registered in the model's
group there. That run trains nothing: it reads the version through the source account's own role
chain, copies its images into its own account's ECR by digest (the digest stays the same), registers
the same digests and artifact as a version of its own group, waits for its own approval where the
account requires it, and deploys through its own role chain.

The run's user must be a deployer in both accounts: validate checks it (``check_promotion``) and the
step that reads the source checks it again. ``promote_from`` is Airflow-only: the KFP engine has no
pipeline parameter for it (a promotion waits for approval, which only the Airflow DAG has).

This module is pure: the parse and validate rules, the conf of each stage (``stage_conf``) and what a
model package version tells about its images and artifact (``parse_source_version``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagelift.domain.bounded_json import whole_number
from sagelift.domain.errors import Problems, SageliftValidationError, kind, show

FIELD = "promote_from"
STAGES_FIELD = "stages"
MAX_STAGES = 4
MAX_VERSION = 10**9
ACCOUNT_RE = re.compile(r"^\d{12}\Z")
STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}\Z")
PROMOTE_KEYS = frozenset({"account_id", "version"})
# What a promoted run's conf keeps from the registered conf: what serves the model in the next account.
# Where the model comes from (training, images, artifact) is the promoted version's; the quality gate
# and tuning were the first stage's business.
STAGE_CONF_KEYS = (
    "model_name",
    "environment",
    "endpoint_instance_type",
    "endpoint",
    "tags_s3_path",
    "pvc_name",
    "pvc_size",
    "pvc_storage_class",
)
# A model package ARN: arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>
PACKAGE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[A-Za-z0-9-]{1,63})/(?P<version>\d{1,10})\Z"
)


@dataclass(frozen=True)
class PromoteFrom:
    """The version a run promotes: ``version`` of the model's package group in ``account_id``."""

    account_id: str = ""
    version: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.account_id)

    def to_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "version": self.version} if self.enabled else {}

    def to_conf(self) -> dict[str, Any]:
        return self.to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PromoteFrom:
        problems = Problems()
        promote = parse_promote_from(dict(data or {}), problems)
        problems.raise_if_any()
        return promote

    def package_arn(self, region: str, group: str) -> str:
        return f"arn:aws:sagemaker:{region}:{self.account_id}:model-package/{group}/{self.version}"


def parse_promote_from(raw: Any, problems: Problems, *, account_id: str | None = None) -> PromoteFrom:
    """The conf's ``promote_from`` (a JSON object, already read); ``account_id``: the run's own account."""
    if raw in (None, "", {}):
        return PromoteFrom()
    if not isinstance(raw, Mapping):
        problems.add(
            FIELD, f'must be an object like {{"account_id": "<12 digits>", "version": 3}}, got {kind(raw)}'
        )
        return PromoteFrom()
    for key in sorted(set(raw) - PROMOTE_KEYS, key=str):
        problems.add(f"{FIELD}.{show(key, 30)}", "unknown key; allowed: account_id, version")
    source = raw.get("account_id")
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source).zfill(12) if 0 <= source < 10**12 else str(source)
    if not isinstance(source, str) or not ACCOUNT_RE.match(source.strip()):
        problems.add(
            f"{FIELD}.account_id",
            f"required: the twelve-digit account to promote from, got {show(source, 24)}",
        )
        source = None
    else:
        source = source.strip()
        if account_id is not None and source == account_id:
            problems.add(
                f"{FIELD}.account_id",
                f"must be another account than account_id ({account_id}): a promotion moves a version between accounts",
            )
    version = whole_number(raw.get("version"), signed=False)
    if version is None or not 1 <= version <= MAX_VERSION:
        problems.add(
            f"{FIELD}.version",
            f"required: the model package version number in the source account's group, got {show(raw.get('version'), 24)}",
        )
        version = None
    if source is None or version is None:
        return PromoteFrom()
    return PromoteFrom(account_id=source, version=int(version))


def check_promotion(promote: PromoteFrom, platform: Any, user: str | None, problems: Problems) -> None:
    """validate's rules between ``promote_from`` and the platform: the source account is onboarded and
    the run's user is one of its deployers (the refusal reads the same for both, as for account_id)."""
    if not promote.enabled or user is None:
        return
    try:
        platform.check_deployer(user, promote.account_id)
    except SageliftValidationError as err:
        for _field, rule in err.problems:
            problems.add(f"{FIELD}.account_id", rule)


# --- stages of a retrain registration -------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    name: str
    account_id: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "account_id": self.account_id}


def parse_stages(raw: Any, problems: Problems, *, conf_account_id: Any = None) -> tuple[Stage, ...]:
    """A registration's ``stages``: 2 to MAX_STAGES distinct accounts, the first the conf's own."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_STAGES:
        problems.add(
            STAGES_FIELD,
            f'must be a list of 2 to {MAX_STAGES} stages like {{"name": "staging", "account_id": "<12 digits>"}}',
        )
        return ()
    stages: list[Stage] = []
    for i, item in enumerate(raw):
        field = f"{STAGES_FIELD}[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "account_id"}:
            problems.add(field, "must be an object with exactly name and account_id")
            continue
        name, account = item.get("name"), item.get("account_id")
        if not isinstance(name, str) or not STAGE_NAME_RE.match(name):
            problems.add(
                f"{field}.name", f"must be 1-31 lower-case letters, digits or '-', got {show(name, 24)}"
            )
            continue
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            problems.add(
                f"{field}.account_id", f"must be exactly twelve digits (as a string), got {show(account, 24)}"
            )
            continue
        stages.append(Stage(name, account))
    if len(stages) != len(raw):
        return ()
    for what, values in (("name", [s.name for s in stages]), ("account_id", [s.account_id for s in stages])):
        if len(set(values)) != len(values):
            problems.add(STAGES_FIELD, f"each stage needs its own {what}; got {', '.join(values)}")
            return ()
    if conf_account_id is not None and str(conf_account_id) != stages[0].account_id:
        problems.add(
            STAGES_FIELD,
            f"the first stage's account_id must be the conf's account_id ({show(conf_account_id, 16)}): "
            "the retrain trains there",
        )
        return ()
    return tuple(stages)


def stage_conf(conf: Mapping[str, Any], stage: Stage, promote: PromoteFrom) -> dict[str, Any]:
    """The conf of a promoted stage's run: the registered conf's serving settings, into the stage's account,
    promoting ``promote`` (the previous stage's version)."""
    kept = {key: conf[key] for key in STAGE_CONF_KEYS if key in conf}
    return {**kept, "account_id": stage.account_id, FIELD: promote.to_conf()}


def derive_stage_run_suffix(stage: Stage) -> str:
    """What a promoted stage's run id adds after the retrain's run id prefix (deterministic per stage)."""
    return f"{stage.name}__"


# --- the source version ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceVersion:
    """What a promoted run takes from the source version: its ARN, serving image (by digest), artifact."""

    package_arn: str
    account_id: str
    version: int
    image: str
    model_data_url: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_package_arn": self.package_arn,
            "account_id": self.account_id,
            "version": self.version,
            "image": self.image,
            "model_data_url": self.model_data_url,
            "status": self.status,
        }


def parse_source_version(description: Mapping[str, Any], promote: PromoteFrom) -> SourceVersion:
    """Read DescribeModelPackage's answer: exactly one container, its image pinned by digest, an artifact,
    and not Rejected. Refusals name promote_from.version."""
    field = f"{FIELD}.version"
    arn = str(description.get("ModelPackageArn") or "")
    status = str(description.get("ModelApprovalStatus") or "")
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or []
    where = f"version {promote.version} in account {promote.account_id}"
    if status == "Rejected":
        raise SageliftValidationError.single(
            field, f"{where} is Rejected; only a version that passed may be promoted"
        )
    if len(containers) != 1 or not isinstance(containers[0], Mapping):
        raise SageliftValidationError.single(
            field, f"{where} has {len(containers)} containers; sagelift promotes one"
        )
    image = str(containers[0].get("Image") or "")
    url = str(containers[0].get("ModelDataUrl") or "")
    if "@sha256:" not in image:
        raise SageliftValidationError.single(
            field, f"{where}: its image {show(image, 80)} is not pinned by digest"
        )
    if not url.startswith("s3://"):
        raise SageliftValidationError.single(field, f"{where} names no S3 artifact (ModelDataUrl)")
    return SourceVersion(arn, promote.account_id, promote.version, image, url, status)


def promoted_version(images: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The source version a promoted run's copy_images recorded (on its model_docker_image entry), or None:
    create_model deploys its artifact and register_model names its ARN in the new version's metadata."""
    entry = (images or {}).get("model_docker_image")
    found = entry.get(FIELD) if isinstance(entry, Mapping) else None
    return found if isinstance(found, Mapping) else None
