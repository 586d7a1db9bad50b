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

import functools
import hashlib
import ipaddress
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sagelift.domain.bounded_json import JsonLimits, parse_json_text
from sagelift.domain.errors import Problems, SageliftValidationError, kind

if TYPE_CHECKING:  # platform.py validates its allow-lists with this module's host rules
    from sagelift.domain.platform import EcrSettings

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


# --- manifests and indexes as registries serve them ---------------------------------------------------
# A registry is outside sagelift's control (a conf chooses the source), so what it serves is read within
# bounds: the 4 MiB ECR takes for a manifest, 12 levels of nesting (an index entry's platform features
# are 5 deep), and only the shapes the distribution and OCI specs define. Anything else is refused once
# with a message naming the image, never retried and never a raw RecursionError or AttributeError.
MANIFEST_LIMITS = JsonLimits(max_chars=4 * 1024 * 1024, max_depth=12, max_nodes=200_000, max_string=64 * 1024)
MAX_INDEX_ENTRIES = 1000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class ManifestError(ValueError):
    """A registry served a manifest or index sagelift cannot use: final, the message names the image."""


def parse_manifest(raw: bytes, image: str) -> dict[str, Any]:
    """A manifest or index document as served, within ``MANIFEST_LIMITS``; a JSON object with a string
    ``mediaType`` (or none) and, for an index, a valid ``manifests`` list, else ManifestError."""
    document, problem = parse_json_text(raw, MANIFEST_LIMITS)
    if problem is not None:
        raise ManifestError(f"{_clip(image, 120)}: the registry served a manifest that {problem}")
    if not isinstance(document, dict):
        raise ManifestError(
            f"{_clip(image, 120)}: the registry served {kind(document)} where a manifest is a JSON object"
        )
    media_type = document.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise ManifestError(f"{_clip(image, 120)}: the manifest's mediaType is {kind(media_type)}")
    if is_index(media_type, document):
        index_entries(image, document)
    return document


def manifest_media_type(served: str | None, document: Mapping[str, Any]) -> str:
    """The media type to store a manifest under: as served or declared, else OCI's by its shape."""
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if served:
        return served
    return INDEX_MEDIA_TYPES[0] if "manifests" in document else OCI_MANIFEST


def is_index(media_type: str | None, manifest: Mapping[str, Any]) -> bool:
    media_type = media_type or manifest.get("mediaType")
    return media_type in INDEX_MEDIA_TYPES or (media_type is None and "manifests" in manifest)


def index_entries(image: str, index: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """An index's ``manifests``, each checked: an object with a sha256 ``digest`` and, when given, a
    string ``mediaType`` and a ``platform`` object of strings; ManifestError names the first bad entry."""
    shown = _clip(image, 120)
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ManifestError(f"{shown}: the index's manifests is {kind(entries)}, not a list")
    if not entries:
        raise ManifestError(f"{shown}: the index lists no manifests")
    if len(entries) > MAX_INDEX_ENTRIES:
        raise ManifestError(f"{shown}: the index lists {len(entries)} manifests; at most {MAX_INDEX_ENTRIES}")
    for i, entry in enumerate(entries):
        problem = _index_entry_problem(entry)
        if problem is not None:
            raise ManifestError(f"{shown}: the index's manifests[{i}] {problem}")
    return tuple(entries)


def _index_entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"is {kind(entry)}, not an object"
    digest = entry.get("digest")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        return "has no digest of the form sha256:<64 lowercase hex>"
    if "mediaType" in entry and not isinstance(entry["mediaType"], str):
        return f"has a mediaType that is {kind(entry['mediaType'])}"
    platform = entry.get("platform")
    if platform is None:
        return None
    if not isinstance(platform, dict):
        return f"has a platform that is {kind(platform)}, not an object"
    for key in ("os", "architecture", "variant"):
        if key in platform and not isinstance(platform[key], str):
            return f"has a platform {key} that is {kind(platform[key])}"
    return None


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
    manifests = list(index_entries(image, index))
    if not platforms:
        return PlatformSelection(True, tuple(manifests), None)
    chosen = [m for m in manifests if any(_platform_matches(w, m.get("platform")) for w in platforms)]
    if not chosen:
        available = ", ".join(sorted({_platform_key(m.get("platform")) for m in manifests})[:20]) or "none"
        raise SageliftValidationError.single(
            "platform.ecr.platforms",
            f"{_clip(image, 120)} offers none of {', '.join(platforms)} (it has: {available})",
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
    """What step 4 does with one image parameter.

    ``action``: ``copy`` into ``target_repository`` of the account's ECR; ``in_ecr``, already in that
    ECR (resolved to its digest there); ``aws_owned``, in one of AWS's own registries (built-in
    algorithms, Deep Learning Containers), which SageMaker pulls directly: used as given, never copied.
    """

    param: str
    source: ImageReference
    action: str
    target_repository: str
    target_tag: str | None = None

    @property
    def copy(self) -> bool:
        return self.action == "copy"

    @property
    def in_place(self) -> str:
        """The reference SageMaker gets for an AWS-owned image: pinned when a digest was given, else the
        tag as given (resolving it would need ECR read access in AWS's account, which the execution role
        does not have; SageMaker accepts tags for its own images)."""
        return self.source.pinned(self.source.digest) if self.source.digest else str(self.source)


def plan_image_steps(params: Mapping[str, Any], account_id: str, region: str, prefix: str) -> list[ImageStep]:
    """One step per image parameter that is set: images already in this account's ECR and AWS-owned
    images in the run's region are used as they are, every other image is copied."""
    steps: list[ImageStep] = []
    for param in IMAGE_PARAMS:
        value = params.get(param)
        if value is None:
            continue
        ref = parse_image_reference(value, param)
        if is_in_account_ecr(ref, account_id, region):
            steps.append(ImageStep(param, ref, "in_ecr", target_repository=ref.repository))
        elif ref.ecr_account is not None and is_aws_owned_ecr(ref.ecr_account, str(ref.ecr_region)):
            if ref.ecr_region != region:
                raise SageliftValidationError.single(param, _aws_region_rule(ref, region))
            steps.append(ImageStep(param, ref, "aws_owned", target_repository=ref.repository))
        else:
            steps.append(
                ImageStep(
                    param,
                    ref,
                    "copy",
                    target_repository=derive_ecr_repository_name(ref, prefix, param),
                    target_tag=derive_ecr_tag(ref),
                )
            )
    return steps


def _aws_region_rule(ref: ImageReference, region: str) -> str:
    """SageMaker pulls an image only from ECR in its own region; name the region's registry when known."""
    dlc = _DLC_ACCOUNTS.get(region)
    hint = f" (Deep Learning Containers there: {ecr_registry_host(dlc, region)})" if dlc else ""
    return (
        f"AWS's image registry {ref.registry} is in {ref.ecr_region}; SageMaker runs in {region} and pulls "
        f"only from that region's ECR: use the {region} image{hint}"
    )


# --- which copies are a model's: the record step 4 leaves on each copied digest -----------------------
# Teardown may delete a copied image only if sagelift copied it for the model being torn down and no
# other model recorded it too. The record is an extra ECR tag on the copied digest, one per (model,
# digest): ``sagelift.<model_name>.<first 32 hex of the digest>``. A tag, not a repository tag listing
# pairs: adding a tag is one PutImage, atomic, idempotent (a re-run finds ImageAlreadyExists) and
# needs no read-modify-write, so concurrent copies of the same digest for two models cannot lose each
# other's record; it survives re-runs and lives exactly as long as the image. The digest part keeps the
# tag unique in IMMUTABLE repositories when one model copies several digests into one repository.
# Model names have no '.', so the model is read back unambiguously.
COPY_RECORD_PREFIX = "sagelift."
_COPY_RECORD_RE = re.compile(r"^sagelift\.(?P<model>[A-Za-z0-9](?:-*[A-Za-z0-9])*)\.(?P<hex>[a-f0-9]{32})\Z")


def derive_copy_record_tag(model_name: str, digest: str) -> str:
    """The ECR tag that records that sagelift copied ``digest`` for ``model_name`` (at most 96 characters)."""
    return f"{COPY_RECORD_PREFIX}{model_name}.{digest.removeprefix('sha256:')[:32]}"


def parse_copy_record_tag(tag: str, digest: str) -> str | None:
    """The model a copy record tag on ``digest`` names, or None when ``tag`` is no record of that digest."""
    match = _COPY_RECORD_RE.match(tag)
    if match is None or not digest.removeprefix("sha256:").startswith(match["hex"]):
        return None
    return match["model"]


def render_registry_endpoint(template: str | None, account_id: str, region: str) -> str:
    """Where the account's ECR registry is reached: the configured endpoint, or ECR's own host."""
    if not template:
        return ecr_registry_host(account_id, region)
    return template.replace("{account_id}", account_id).replace("{region}", region)


def pinned_image(images: Mapping[str, Any] | None, param: str) -> str | None:
    """The digest-pinned ECR reference step 4 published for ``param``, or None when the param was unset."""
    entry = (images or {}).get(param)
    return None if entry is None else str(entry["image"])


# --- where images may come from (issue 14: no SSRF through copy_images) --------------------------------
# A copy makes a worker inside the platform's network open connections a run's conf chose. So image hosts
# are DNS names of public registries on an allow-list, never addresses or names that only mean something
# inside a cluster, a cloud VPC or the worker itself.

PUBLIC_ECR = "public.ecr.aws"
# Registries a Bearer realm of a well-known public registry legitimately points at (skopeo talks to
# registry-1.docker.io for docker.io). Anything else must be listed in platform.ecr.allowed_token_realms.
KNOWN_TOKEN_REALMS: Mapping[str, tuple[str, ...]] = {
    "docker.io": ("auth.docker.io",),
    "registry-1.docker.io": ("auth.docker.io",),
}
# AWS Deep Learning Containers: 763104351884 in the standard regions, an account of its own in opt-in,
# China and GovCloud regions (as published with the SageMaker Python SDK's image URIs).
_DLC_STANDARD_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
]
_DLC_ACCOUNTS = {
    **dict.fromkeys(_DLC_STANDARD_REGIONS, "763104351884"),
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
_INTERNAL_SUFFIXES = (
    ".svc",
    ".cluster.local",
    ".local",
    ".localdomain",
    ".internal",
    ".intranet",
    ".corp",
    ".home",
    ".home.arpa",
    ".arpa",
    ".lan",
    ".private",
)
# Never a registry, whatever the platform lists: cloud metadata services.
_METADATA_HOSTS = frozenset(
    {"169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "metadata.google.internal"}
)
_HOST_PATTERN_RE = re.compile(
    r"^(?P<host>(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}|\*))?$"
)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def split_host_port(hostport: str) -> tuple[str, int | None]:
    """``registry.example.com:5000`` -> (``registry.example.com``, 5000); IPv6 keeps no brackets."""
    hostport = hostport.lower()
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    return host, (int(port) if port.isdigit() else None)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_metadata_or_link_local(host: str) -> bool:
    """A link-local, multicast or cloud metadata address or name: never a registry, whatever is allowed."""
    address = _ip(host)
    if address is not None:
        mapped = getattr(address, "ipv4_mapped", None) or address
        return str(mapped) in _METADATA_HOSTS or mapped.is_link_local or mapped.is_multicast
    return host in _METADATA_HOSTS


def internal_host_reason(host: str) -> str | None:
    """Why ``host`` (no port) is not a public registry name, or None when it may be one."""
    host = host.lower()
    address = _ip(host)
    if address is not None:
        return "is an IP address; registries are named by public DNS names"
    labels = host.split(".")
    if (
        labels[-1].isdigit()
        or any(label.startswith("0x") for label in labels)
        or all(label.isdigit() for label in labels)
    ):
        return "looks like an IP address; registries are named by public DNS names"
    if host == "localhost" or host.endswith(".localhost"):
        return "is the worker itself (loopback)"
    if len(labels) == 1:
        return "is a single-label name that only resolves inside the platform's network"
    for suffix in _INTERNAL_SUFFIXES:
        if host.endswith(suffix):
            return f"is a cluster- or network-internal name (*{suffix})"
    return None


def validate_image_host(host: str, field: str) -> None:
    """Refuse IP literals, loopback, link-local, private and cluster-internal registry hosts."""
    name, _ = split_host_port(host)
    reason = internal_host_reason(name)
    if reason is not None:
        raise SageliftValidationError.single(field, f"registry host {_clip(host)!r} {reason}")


def host_pattern_problem(pattern: Any) -> str | None:
    """Why ``pattern`` cannot be an allow-list entry, or None. Entries are ``host[:port]``, where host
    may start with ``*.`` (any subdomain of a name of at least two labels) and port may be ``*``."""
    if not isinstance(pattern, str) or not _HOST_PATTERN_RE.match(pattern.lower()):
        return f"{pattern!r} is not host[:port], *.domain[:port] or [ipv6][:port] (port may be *)"
    host, _ = split_host_port(pattern)
    if is_metadata_or_link_local(host.removeprefix("*.")):
        return f"{pattern!r} is a link-local or metadata address, never a registry"
    if host.startswith("*."):
        domain = host[2:]
        if (
            domain.count(".") < 1
            or internal_host_reason(domain) is not None
            or any(domain == s[1:] for s in _INTERNAL_SUFFIXES)
        ):
            return f"{pattern!r}: a wildcard must cover a public domain of at least two labels"
    return None


def matches_host_pattern(hostport: str, pattern: str) -> bool:
    """Whether registry ``hostport`` matches allow-list entry ``pattern`` (no port there means 443)."""
    host, port = split_host_port(hostport)
    want_host, _ = split_host_port(pattern)
    want_port = pattern.rsplit(":", 1)[1] if re.search(r":(\d+|\*)$", pattern) else None
    if want_host.startswith("*."):
        host_ok = host.endswith(want_host[1:]) and len(host) > len(want_host) - 1
    else:
        host_ok = host == want_host
    if want_port == "*":
        return host_ok
    return host_ok and (port or 443) == (int(want_port) if want_port else 443)


@functools.cache
def _aws_owned_ecr() -> frozenset[tuple[str, str]]:
    table = json.loads(resources.files("sagelift.domain").joinpath("algorithms.json").read_text())
    owned = {
        (account, region)
        for registries in table["registries"].values()
        for region, account in registries.items()
    }
    return frozenset(owned | {(account, region) for region, account in _DLC_ACCOUNTS.items()})


def is_aws_owned_ecr(account: str, region: str) -> bool:
    """Whether ``<account>.dkr.ecr.<region>`` is one of AWS's own image registries (built-in algorithms,
    Deep Learning Containers), per sagelift's tables; any other ECR account belongs to someone."""
    return (account, region) in _aws_owned_ecr()


def check_source_registry(
    ref: ImageReference,
    settings: EcrSettings,
    onboarded_accounts: Collection[str],
    field: str,
) -> None:
    """Refuse an image whose registry the platform does not allow as a copy source.

    Allowed: hosts matching ``settings.allowed_source_registries`` (an entry naming an IP or internal
    host allows exactly what it names), the ECR registries of onboarded accounts, AWS's own ECR
    registries, and public.ecr.aws. Link-local and metadata addresses are refused whatever is listed.
    """
    host = ref.registry
    name, _ = split_host_port(host)
    if is_metadata_or_link_local(name):
        raise SageliftValidationError.single(
            field, f"registry host {_clip(host)!r} is a link-local or metadata address"
        )
    if any(matches_host_pattern(host, p) for p in settings.allowed_source_registries):
        return
    validate_image_host(host, field)
    account = ref.ecr_account
    if account is not None:
        if account in onboarded_accounts or is_aws_owned_ecr(account, str(ref.ecr_region)):
            return
        raise SageliftValidationError.single(
            field,
            f"ECR account {account} is neither onboarded nor one of AWS's own registries",
        )
    if name == PUBLIC_ECR:
        return
    raise SageliftValidationError.single(
        field,
        f"registry {_clip(host)} is not an allowed image source (platform.ecr.allowed_source_registries)",
    )


def check_image_sources(
    params: Mapping[str, Any],
    settings: EcrSettings,
    onboarded_accounts: Collection[str],
    problems: Problems,
) -> None:
    """``check_source_registry`` for each image parameter that is set, collecting every problem."""
    for param in IMAGE_PARAMS:
        value = params.get(param)
        if value is None:
            continue
        try:
            check_source_registry(parse_image_reference(value, param), settings, onboarded_accounts, param)
        except SageliftValidationError as err:
            problems.items.extend(err.problems)


# --- token realms: where a registry sends the client for a token --------------------------------------
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_AUTH_PARAM_RE = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*')
_AUTH_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


def parse_www_authenticate(values: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """The challenges in WWW-Authenticate header values: [(scheme lowercased, {param: value})].

    Bounded: at most 16 challenges of 32 parameters are read; anything unparsable ends the value.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        current: dict[str, str] | None = None
        while pos < len(value) and len(challenges) < 16:
            param = _AUTH_PARAM_RE.match(value, pos)
            if param is not None and current is not None:
                if len(current) < 32:
                    raw = param.group(2)
                    current[param.group(1).lower()] = (
                        re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
                    )
                pos = param.end()
            else:
                scheme = _AUTH_SCHEME_RE.match(value, pos)
                if scheme is None:
                    break
                current = {}
                challenges.append((scheme.group(1).lower(), current))
                pos = scheme.end()
            while pos < len(value) and value[pos] in ", \t":
                pos += 1
    return challenges


@dataclass(frozen=True)
class TokenRealmRules:
    """Where a source registry may send skopeo for a token (its ``Bearer realm=``)."""

    allowed: tuple[str, ...] = ()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: EcrSettings) -> TokenRealmRules:
        return cls(tuple(settings.allowed_token_realms), bool(settings.allow_http_token_realms))

    def refusal(self, realm: str, registry: str) -> str | None:
        """Why fetching a token from ``realm`` for ``registry`` is refused, or None when it is allowed.

        Allowed: https on the registry's own host and port, the known realm of a well-known public
        registry, or a host on ``allowed`` (http only when ``allow_http``). Never an address that is
        link-local or a metadata service, never a URL with credentials in it.
        """
        try:
            url = urlsplit(realm)
            port = url.port
        except ValueError:
            return f"registry {_clip(registry)} sent a token realm that is not a URL"
        scheme, host = url.scheme.lower(), (url.hostname or "").lower()
        if not host or url.username is not None or url.password is not None:
            return f"registry {_clip(registry)} sent a token realm without a host or with credentials in it"
        shown, named = _clip(f"{scheme}://{url.netloc}{url.path}"), _clip(registry)
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_http):
            return f"registry {named} sends token requests to {shown}, not https (platform.ecr.allow_http_token_realms)"
        if is_metadata_or_link_local(host):
            return f"registry {named} sends token requests to {shown}, a link-local or metadata address"
        default_port = 443 if scheme == "https" else 80
        hostport = f"[{host}]" if ":" in host else host
        hostport += f":{port or default_port}"
        registry_host, registry_port = split_host_port(registry)
        if scheme == "https" and host == registry_host and (port or 443) == (registry_port or 443):
            return None
        if host in KNOWN_TOKEN_REALMS.get(registry_host, ()) and scheme == "https" and port in (None, 443):
            return None
        if any(matches_host_pattern(hostport, p) for p in self.allowed):
            return None
        return f"registry {named} sends token requests to {shown}, not on platform.ecr.allowed_token_realms"


# --- how long a copy may take ---------------------------------------------------------------------------
def image_blob_bytes(manifest: Mapping[str, Any]) -> int:
    """The bytes a single-platform manifest's config and layers declare (0 for what is not a size)."""
    total = 0
    layers = manifest.get("layers")
    entries = [manifest.get("config"), *(layers[:1000] if isinstance(layers, list) else [])]
    for entry in entries:
        size = entry.get("size") if isinstance(entry, Mapping) else None
        if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 1 << 50:
            total += size
    return total


@dataclass(frozen=True)
class CopyLimits:
    """How long one registry operation may take: ``base + per_gb * size``, at most ``max`` (minutes)."""

    base_minutes: float = 10.0
    minutes_per_gb: float = 3.0
    max_minutes: float = 120.0

    @classmethod
    def from_settings(cls, settings: EcrSettings) -> CopyLimits:
        return cls(
            float(settings.copy_timeout_base_minutes),
            float(settings.copy_timeout_minutes_per_gb),
            float(settings.copy_timeout_max_minutes),
        )

    def bound_seconds(self, size_bytes: int = 0) -> float:
        minutes = self.base_minutes + self.minutes_per_gb * max(0, size_bytes) / 1e9
        return 60.0 * min(self.max_minutes, minutes)
