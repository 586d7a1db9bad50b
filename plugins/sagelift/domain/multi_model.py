"""Multi-model endpoints (issue 20 item 1): a run deploys its model into its team's shared endpoint.

The platform enables, per account, one shared endpoint per team (``accounts.<id>.multi_model_endpoints``):
an S3 prefix whose objects the endpoint serves, the instances, and the one serving image (an image URI
or a built-in algorithm). A run asks for it with ``multi_model: {"endpoint": "<team>"}``; then:

- create_model copies the run's artifact to ``<prefix><model_name>/<run key>.tar.gz`` (the run's key is
  deterministic, so a retry writes the same object and a re-deploy a new one) and ensures the shared
  SageMaker model ``sagelift-mme-<team>`` (one container, Mode MultiModel, ModelDataUrl = the prefix);
- deploy_endpoint ensures the endpoint config and the endpoint ``sagelift-mme-<team>``: created when
  absent, adopted as they are otherwise (two runs at once converge on one endpoint);
- expose_api routes ``POST /models/<model_name>/invocations`` of the model's own API (its auth and
  throttling unchanged) to the shared endpoint with ``X-Amzn-SageMaker-Target-Model`` set to the
  model's current key: a re-deploy moves the route to the new key.

Which images serve multi-model endpoints: the built-in algorithms per multi_model_algorithms.json (from
SageMaker's developer guide; the file cites it) and the images the platform lists in
``multi_model_images`` (registry/repository, any tag or digest). validate refuses the rest, and every
endpoint setting a shared endpoint cannot take (its instances and serving settings are the platform's).

Nothing here imports sagelift.domain.platform or params (both import this module).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, SageliftValidationError, kind, show, subfield
from sagelift.domain.images import parse_image_reference
from sagelift.domain.security import NetworkSettings, endpoint_config_security, model_security

FIELD = "multi_model"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)
_KEYS = ("endpoint",)
TEAM_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\Z", re.ASCII)
TEAM_RULE = "a team name: 1-32 lowercase letters, digits and '-'"
ENDPOINT_PREFIX = "sagelift-mme-"  # the shared model, endpoint config and endpoint are named <prefix><team>
SHARED_TAG_KEY = "sagelift:multi-model-endpoint"  # on the shared resources, instead of a model's owner tag
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
VARIANT_NAME = "AllTraffic"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"  # the form's endpoint_instance_type: "not chosen"
MAX_INSTANCES = 100
MAX_ENDPOINTS = 50
MAX_IMAGES = 100
_S3_PREFIX_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^/]+/)*\Z")
# S3 keys are at most 1024 bytes of UTF-8, and each model's artifact key adds "<model_name>/<run key>.tar.gz"
# to the prefix's (a model name of at most 54 characters, a run key of 8)
PREFIX_KEY_MAX_BYTES = 1024 - len("/".join(("m" * 54, "k" * 8 + ".tar.gz")))
_ENDPOINT_KEYS = ("prefix", "instance_type", "instance_count", "image", "algorithm")

SETTINGS_DOC = (
    'Optional, as a JSON object: {"endpoint": "<team>"} deploys the model into the team\'s shared '
    "multi-model endpoint (the platform enables it per account) instead of an endpoint of its own; the "
    "API then serves POST /models/<model_name>/invocations. README: Multi-model endpoints."
)


@cache
def multi_model_algorithms() -> dict[str, bool]:
    """Built-in algorithm -> whether its inference container serves multi-model endpoints."""
    data = json.loads(resources.files("sagelift.domain").joinpath("multi_model_algorithms.json").read_text())
    return {str(k): bool(v) for k, v in data["algorithms"].items()}


@cache
def _endpoint_instance_types() -> tuple[str, ...]:
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_types.json").read_text())
    return tuple(data["endpoint"])


def image_name(image: str) -> str | None:
    """``registry/repository`` of an image reference (tag and digest dropped), or None if it is none."""
    try:
        return parse_image_reference(image, FIELD).name
    except SageliftValidationError:
        return None


# --- the platform's side --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedEndpoint:
    """One team's shared multi-model endpoint in one account, as the platform enables it."""

    team: str
    prefix: str  # s3://bucket/.../ : the endpoint's ModelDataUrl; each model's artifacts lie under it
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    image: str | None = None  # the serving image, or
    algorithm: str | None = None  # a built-in algorithm whose image serves

    @property
    def name(self) -> str:
        """The shared SageMaker model's, endpoint config's and endpoint's name."""
        return ENDPOINT_PREFIX + self.team

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "team"}


def parse_shared_endpoints(raw: Any, prefix: str, problems: Problems) -> dict[str, SharedEndpoint]:
    """An account's ``multi_model_endpoints``: {"<team>": {"prefix", "instance_type", "instance_count",
    "image" | "algorithm"}}."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_ENDPOINTS:
        problems.add(prefix, f"an object of at most {MAX_ENDPOINTS} teams' endpoints, got {kind(raw)}")
        return {}
    endpoints: dict[str, SharedEndpoint] = {}
    for team, settings in raw.items():
        name = subfield(prefix, team)
        if not isinstance(team, str) or not TEAM_RE.match(team):
            problems.add(name, TEAM_RULE)
            continue
        if not isinstance(settings, Mapping):
            problems.add(name, f"must be an object, got {kind(settings)}")
            continue
        endpoint = _shared_endpoint(team, settings, name, problems)
        if endpoint is not None:
            endpoints[team] = endpoint
    return endpoints


def _shared_endpoint(
    team: str, raw: Mapping[str, Any], name: str, problems: Problems
) -> SharedEndpoint | None:
    before = len(problems.items)
    r = ObjectReader(raw, name, _ENDPOINT_KEYS, problems)
    s3_prefix = r.text("prefix", None, 1024)
    if s3_prefix is None or not _S3_PREFIX_RE.match(s3_prefix) or "/./" in s3_prefix or "/../" in s3_prefix:
        problems.add(r.name("prefix"), "required: an S3 prefix ending in '/' such as s3://bucket/mme/team/")
    elif len(s3_prefix[5:].partition("/")[2].encode()) > PREFIX_KEY_MAX_BYTES:
        problems.add(
            r.name("prefix"),
            f"its key is at most {PREFIX_KEY_MAX_BYTES} bytes, so every model's artifact key under it "
            "fits S3's 1024",
        )
    instance_type = r.text("instance_type", DEFAULT_INSTANCE_TYPE, 64)
    if instance_type not in _endpoint_instance_types():
        problems.add(
            r.name("instance_type"), f"{show(instance_type)} is not a SageMaker endpoint instance type"
        )
    count = r.whole("instance_count", 1, 1, MAX_INSTANCES)
    image, algorithm = r.text("image", None, 1024), r.text("algorithm", None, 64)
    if (image is None) == (algorithm is None):
        problems.add(name, "give exactly one of image (a serving image URI) and algorithm (a built-in one)")
    if image is not None and image_name(image) is None:
        problems.add(r.name("image"), f"{show(image, 48)} is not an image reference")
    if algorithm is not None and not multi_model_algorithms().get(algorithm, False):
        problems.add(
            r.name("algorithm"),
            f"{show(algorithm)} does not serve multi-model endpoints (README: Multi-model endpoints)",
        )
    if len(problems.items) > before:
        return None
    return SharedEndpoint(team, str(s3_prefix), str(instance_type), count, image, algorithm)


def parse_multi_model_images(raw: Any, name: str, problems: Problems) -> tuple[str, ...]:
    """The platform's ``multi_model_images``: images (registry/repository; a tag or digest is ignored)
    whose containers implement SageMaker's multi-model contract."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_IMAGES or not all(isinstance(i, str) for i in raw):
        problems.add(name, f"a list of at most {MAX_IMAGES} image references (registry/repository)")
        return ()
    names = []
    for i, image in enumerate(raw):
        parsed = image_name(image)
        if parsed is None:
            problems.add(f"{name}[{i}]", f"{show(image, 48)} is not an image reference")
        else:
            names.append(parsed)
    return tuple(names)


def check_shared_endpoint_images(
    endpoints: Mapping[str, Mapping[str, SharedEndpoint]], images: Sequence[str], problems: Problems
) -> None:
    """Every shared endpoint's image is one the platform lists as serving multi-model endpoints."""
    for account_id, teams in endpoints.items():
        for team, endpoint in teams.items():
            if endpoint.image is not None and image_name(endpoint.image) not in images:
                problems.add(
                    f"{subfield(subfield('platform.accounts', account_id) + '.multi_model_endpoints', team)}.image",
                    f"{show(endpoint.image, 48)} is not in platform.multi_model_images (images that serve "
                    "multi-model endpoints)",
                )


# --- the conf's side ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MultiModelSettings:
    endpoint: str | None = None  # the team whose shared endpoint serves the model; None: off

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_conf(self) -> dict[str, Any]:
        """The conf's ``multi_model`` object without nulls (a KFP struct holds none); empty when off."""
        return {"endpoint": self.endpoint} if self.endpoint is not None else {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MultiModelSettings:
        data = data or {}
        endpoint = data.get("endpoint")
        return cls(endpoint=None if endpoint is None else str(endpoint))


def parse_multi_model(
    raw: Any,
    problems: Problems,
    *,
    deploys: bool = True,
    batch: bool = False,
    endpoint_settings: bool = False,
) -> MultiModelSettings:
    """The conf's ``multi_model`` object. ``deploys``: the run serves a model (not train-only); ``batch``:
    the run scores offline; ``endpoint_settings``: the conf gave ``endpoint`` settings."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return MultiModelSettings()
    r = ObjectReader(data, FIELD, _KEYS, problems)
    team = r.text("endpoint", None, 64)
    if team is None:
        problems.add(
            r.name("endpoint"), "required: the team whose shared multi-model endpoint serves the model"
        )
        return MultiModelSettings()
    if not TEAM_RE.match(team):
        problems.add(r.name("endpoint"), f"{TEAM_RULE}, got {show(team)}")
        return MultiModelSettings()
    if not deploys:
        problems.add(
            FIELD, "a train-only run deploys nothing; give model_docker_image or leave multi_model empty"
        )
    if batch:
        problems.add(FIELD, "batch scores offline, so nothing is served; leave multi_model or batch empty")
    if endpoint_settings:
        problems.add(
            "endpoint",
            "a shared multi-model endpoint's instances, autoscaling, deployment and capture are the "
            "platform's; leave endpoint empty (README: Multi-model endpoints)",
        )
    return MultiModelSettings(endpoint=team)


def check_multi_model_against_platform(
    settings: MultiModelSettings,
    *,
    account_id: str,
    endpoints: Mapping[str, SharedEndpoint],
    model_image: str | None,
    algorithm: str | None,
    instance_type: str,
    problems: Problems,
    region: str | None = None,
) -> None:
    """The team's endpoint is enabled in the account, and serves this run's model: the same image (or
    built-in algorithm), on the instances the platform set."""
    if not settings.enabled:
        return
    endpoint = endpoints.get(str(settings.endpoint))
    if endpoint is None:
        problems.add(
            f"{FIELD}.endpoint",
            f"{show(settings.endpoint)} is not a shared multi-model endpoint the platform enables in account "
            f"{account_id} (accounts.<id>.multi_model_endpoints)",
        )
        return
    if model_image is None and algorithm is not None and not multi_model_algorithms().get(algorithm, False):
        problems.add(
            "training_algorithm_name",
            f"{show(algorithm)}'s image does not serve multi-model endpoints (multi_model_algorithms.json)",
        )
    elif model_image is not None and image_name(model_image) != (
        image_name(endpoint.image) if endpoint.image else None
    ):
        problems.add(
            "model_docker_image",
            f"team {endpoint.team}'s multi-model endpoint serves another image: "
            f"{endpoint.image or endpoint.algorithm}",
        )
    elif model_image is None and algorithm != endpoint.algorithm:
        problems.add(
            "training_algorithm_name",
            f"team {endpoint.team}'s multi-model endpoint serves another image: "
            f"{endpoint.image or endpoint.algorithm}",
        )
    if endpoint.algorithm is not None and region is not None:
        from sagelift.domain.params import builtin_algorithm_image  # params imports this module

        if builtin_algorithm_image(endpoint.algorithm, region) is None:
            problems.add(
                f"{FIELD}.endpoint",
                f"team {endpoint.team}'s endpoint serves {endpoint.algorithm}, which has no image in {region}",
            )
    if instance_type not in (DEFAULT_INSTANCE_TYPE, endpoint.instance_type):
        problems.add(
            "endpoint_instance_type",
            f"team {endpoint.team}'s shared endpoint runs on {endpoint.instance_type}; {show(instance_type)} "
            "cannot apply (leave it at the default)",
        )


# --- names and requests --------------------------------------------------------------------------------------
def derive_target_model(model_name: str, run_key: str) -> str:
    """The artifact's key relative to the endpoint's prefix, and the TargetModel that invokes it."""
    return f"{model_name}/{run_key}.tar.gz"


def artifact_uri(endpoint: SharedEndpoint, target_model: str) -> str:
    return endpoint.prefix + target_model


def model_artifacts_prefix(endpoint: SharedEndpoint, model_name: str) -> str:
    """Where every version of one model lies under the endpoint's prefix (teardown removes it)."""
    return f"{endpoint.prefix}{model_name}/"


def shared_tags(endpoint: SharedEndpoint) -> list[dict[str, str]]:
    """The shared resources carry the team, never a model's owner tag: no model's teardown claims them."""
    return [{"Key": SHARED_TAG_KEY, "Value": endpoint.team}]


def serving_image(endpoint: SharedEndpoint, region: str) -> str:
    if endpoint.image is not None:
        return endpoint.image
    from sagelift.domain.params import builtin_algorithm_image  # params imports this module

    image = builtin_algorithm_image(str(endpoint.algorithm), region)
    if image is None:
        raise SageliftValidationError.single(
            "multi_model.endpoint", f"the {endpoint.algorithm} algorithm has no image in region {region}"
        )
    return image


def build_shared_model_request(
    endpoint: SharedEndpoint, *, region: str, role_arn: str, network: NetworkSettings | None = None
) -> dict[str, Any]:
    """CreateModel's body for the shared model: one container in MultiModel mode over the prefix."""
    request: dict[str, Any] = {
        "ModelName": endpoint.name,
        "PrimaryContainer": {
            "Image": serving_image(endpoint, region),
            "Mode": "MultiModel",
            "ModelDataUrl": endpoint.prefix,
        },
        "ExecutionRoleArn": role_arn,
        "Tags": shared_tags(endpoint),
    }
    if network is not None:
        request.update(model_security(network))
    return request


def build_shared_endpoint_config_request(
    endpoint: SharedEndpoint, network: NetworkSettings | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "EndpointConfigName": endpoint.name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": endpoint.name,
                "InitialInstanceCount": endpoint.instance_count,
                "InstanceType": endpoint.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": shared_tags(endpoint),
    }
    if network is not None:
        request.update(endpoint_config_security(network, "realtime"))
    return request


def build_shared_endpoint_request(endpoint: SharedEndpoint) -> dict[str, Any]:
    return {"EndpointName": endpoint.name, "EndpointConfigName": endpoint.name, "Tags": shared_tags(endpoint)}


@dataclass(frozen=True)
class MultiModelPlacement:
    """Where one run's model lives on the shared endpoint: create_model's XCom, read by the later steps."""

    team: str
    endpoint_name: str
    target_model: str  # the TargetModel header's value
    artifact_s3_uri: str
    source_s3_uri: str

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | None) -> MultiModelPlacement | None:
        """From the placement itself or a step result holding it under ``MultiModel``."""
        found = (data or {}).get("MultiModel", data)
        if not isinstance(found, Mapping) or "target_model" not in found:
            return None
        return cls(**{k: str(found[k]) for k in cls.__dataclass_fields__})
