"""Container image references for step 4: parsing, ECR naming, platform selection and digest pinning.

SageMaker pulls training and inference images from ECR in the scientist account, so step 4 decides,
per image parameter, whether the image is already there (use it, pinned to its digest) or must be
copied (into ``<prefix><source repository>``). Every decision here is a pure function of the run's
parameters, the platform settings and manifests already fetched, so it is tested without a registry.

The grammar follows the distribution reference format (``[registry/]path[:tag][@digest]``; a first
component is a registry when it holds a '.' or ':' or is ``localhost``; bare Docker Hub names gain
``library/``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import SageliftValidationError

IMAGE_PARAMS = ("training_docker_image", "model_docker_image")
DOCKER_HUB = "docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# ECR: CreateRepository's repositoryName pattern and length limits
ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ECR_HOST_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)"
    r"\.amazonaws\.com(?:\.cn)?$"
)
PLATFORM_RE = re.compile(r"^(?P<os>[a-z0-9]+)/(?P<arch>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?$")

INDEX_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; ``tag`` and ``digest`` may both be set (the digest wins)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def pinned(self, digest: str) -> str:
        """``registry/repository@sha256:...``: the form downstream steps hand to SageMaker."""
        return f"{self.name}@{digest}"

    def with_registry(self, registry: str) -> ImageReference:
        return ImageReference(registry, self.repository, self.tag, self.digest)

    @property
    def ecr_account(self) -> str | None:
        match = ECR_HOST_RE.match(self.registry)
        return match["account"] if match else None

    @property
    def ecr_region(self) -> str | None:
        match = ECR_HOST_RE.match(self.registry)
        return match["region"] if match else None


def parse_image_reference(value: Any, field: str) -> ImageReference:
    """Parse ``value`` or raise SageliftValidationError naming ``field``."""
    rule = "an image reference such as registry.example.com/team/trainer:1.0 or repo@sha256:<64 hex>"
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 1024:
        raise SageliftValidationError.single(field, rule)
    rest, digest = value, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise SageliftValidationError.single(
                field, f"{value!r}: the digest must be sha256:<64 lowercase hex>"
            )
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.match(tag):
            raise SageliftValidationError.single(
                field,
                f"{value!r}: a tag is 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            )
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, remainder
        if not _HOST_RE.match(registry):
            raise SageliftValidationError.single(
                field, f"{value!r}: {registry!r} is not a registry host[:port]"
            )
    else:
        registry, path = DOCKER_HUB, rest
        if "/" not in path:
            path = f"library/{path}"
    if not _PATH_RE.match(path) or len(path) > 255:
        raise SageliftValidationError.single(
            field,
            f"{value!r}: repository path components are lowercase letters and digits separated by . _ __ -",
        )
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)


def ecr_registry_host(account_id: str, region: str) -> str:
    """The registry host ECR image URIs use for ``account_id`` in ``region``."""
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{account_id}.dkr.ecr.{region}{suffix}"


def is_in_account_ecr(ref: ImageReference, account_id: str, region: str) -> bool:
    return ref.ecr_account == account_id and ref.ecr_region == region


def derive_ecr_repository_name(ref: ImageReference, prefix: str, field: str) -> str:
    """``<prefix><source repository>``, e.g. ``sagelift/`` + ``team/trainer``; checked against ECR's rules."""
    name = f"{prefix}{ref.repository}"
    if not ECR_REPOSITORY_RE.match(name) or not 2 <= len(name) <= 256:
        raise SageliftValidationError.single(
            field,
            f"{ref}: the ECR repository name {name!r} breaks ECR's rules (2-256 characters, lowercase "
            "path components of letters and digits separated by . _ -)",
        )
    return name


def derive_ecr_tag(ref: ImageReference) -> str:
    """The tag the copy gets in ECR: the source tag, or ``sha256-<hex>`` for an image given by digest only.

    A tag keeps the copy out of "expire untagged images" lifecycle rules.
    """
    if ref.tag:
        return ref.tag
    return str(ref.digest).replace(":", "-")


def manifest_digest(raw: bytes) -> str:
    """The content digest of a manifest exactly as the registry served it."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def is_index(media_type: str | None, manifest: Mapping[str, Any]) -> bool:
    media_type = media_type or manifest.get("mediaType")
    return media_type in INDEX_MEDIA_TYPES or (media_type is None and "manifests" in manifest)


def _platform_key(platform: Mapping[str, Any] | None) -> str:
    if not platform:
        return "unknown"
    key = f"{platform.get('os', '')}/{platform.get('architecture', '')}"
    if platform.get("variant"):
        key += f"/{platform['variant']}"
    return key


def _platform_matches(wanted: str, platform: Mapping[str, Any] | None) -> bool:
    match = PLATFORM_RE.match(wanted)
    if not match or not platform:
        return False
    if match["os"] != platform.get("os") or match["arch"] != platform.get("architecture"):
        return False
    return match["variant"] is None or match["variant"] == platform.get("variant")


@dataclass(frozen=True)
class PlatformSelection:
    """What to copy from a multi-platform index under the platform filter.

    ``whole_index``: copy the index as it is (its digest is kept). Otherwise ``entries`` are the selected
    per-platform manifests (their digests are kept) and, when more than one, ``index`` holds the bytes
    of a new index listing only them (a new digest: it is a different document).
    """

    whole_index: bool
    entries: tuple[Mapping[str, Any], ...]
    index: bytes | None

    @property
    def index_digest(self) -> str | None:
        return manifest_digest(self.index) if self.index is not None else None


def select_platforms(image: str, index: Mapping[str, Any], platforms: Sequence[str]) -> PlatformSelection:
    manifests = list(index.get("manifests") or [])
    if not platforms:
        return PlatformSelection(True, tuple(manifests), None)
    chosen = [m for m in manifests if any(_platform_matches(w, m.get("platform")) for w in platforms)]
    if not chosen:
        available = ", ".join(sorted({_platform_key(m.get("platform")) for m in manifests})) or "none"
        raise SageliftValidationError.single(
            "platform.ecr.platforms", f"{image} offers none of {', '.join(platforms)} (it has: {available})"
        )
    if len(chosen) == len(manifests):
        return PlatformSelection(True, tuple(chosen), None)
    if len(chosen) == 1:
        return PlatformSelection(False, tuple(chosen), None)
    filtered = dict(index)
    filtered["manifests"] = chosen
    raw = json.dumps(filtered, separators=(",", ":"), sort_keys=True).encode()
    return PlatformSelection(False, tuple(chosen), raw)


@dataclass(frozen=True)
class ImageStep:
    """What step 4 does with one image parameter."""

    param: str
    source: ImageReference
    copy: bool
    target_repository: str
    target_tag: str | None = None


def plan_image_steps(params: Mapping[str, Any], account_id: str, region: str, prefix: str) -> list[ImageStep]:
    """One step per image parameter that is set; images already in this account's ECR are used as they are."""
    steps: list[ImageStep] = []
    for param in IMAGE_PARAMS:
        value = params.get(param)
        if value is None:
            continue
        ref = parse_image_reference(value, param)
        if is_in_account_ecr(ref, account_id, region):
            steps.append(ImageStep(param, ref, copy=False, target_repository=ref.repository))
        else:
            steps.append(
                ImageStep(
                    param,
                    ref,
                    copy=True,
                    target_repository=derive_ecr_repository_name(ref, prefix, param),
                    target_tag=derive_ecr_tag(ref),
                )
            )
    return steps


def render_registry_endpoint(template: str | None, account_id: str, region: str) -> str:
    """Where the account's ECR registry is reached: the configured endpoint, or ECR's own host."""
    if not template:
        return ecr_registry_host(account_id, region)
    return template.replace("{account_id}", account_id).replace("{region}", region)


def pinned_image(images: Mapping[str, Any] | None, param: str) -> str | None:
    """The digest-pinned ECR reference step 4 published for ``param``, or None when the param was unset."""
    entry = (images or {}).get(param)
    return None if entry is None else str(entry["image"])
