"""Image references, ECR naming and platform selection: pure rules."""

from __future__ import annotations

import json

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import (
    ImageReference,
    derive_ecr_repository_name,
    derive_ecr_tag,
    ecr_registry_host,
    manifest_digest,
    parse_image_reference,
    pinned_image,
    plan_image_steps,
    render_registry_endpoint,
    select_platforms,
)
from sagelift.domain.platform import PlatformConfig

DIGEST = "sha256:" + "ab" * 32
ACCOUNT = "333333333333"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python:3.12", ImageReference("docker.io", "library/python", "3.12")),
        ("python", ImageReference("docker.io", "library/python", "latest")),
        ("team/trainer", ImageReference("docker.io", "team/trainer", "latest")),
        ("registry.example.com/ml/trainer:1.0", ImageReference("registry.example.com", "ml/trainer", "1.0")),
        ("127.0.0.1:5000/team/trainer:v1", ImageReference("127.0.0.1:5000", "team/trainer", "v1")),
        ("localhost/trainer", ImageReference("localhost", "trainer", "latest")),
        (f"ghcr.io/org/img@{DIGEST}", ImageReference("ghcr.io", "org/img", None, DIGEST)),
        (f"ghcr.io/org/img:1@{DIGEST}", ImageReference("ghcr.io", "org/img", "1", DIGEST)),
        (
            f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/a/b:c",
            ImageReference(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com", "a/b", "c"),
        ),
    ],
)
def test_references_parse_as_registries_do(text: str, expected: ImageReference) -> None:
    assert parse_image_reference(text, "training_docker_image") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " python",
        "Registry.example.com",
        "python:",
        "python@sha256:short",
        "registry.example.com/UPPER:1",
        "registry.example.com/a//b",
        "python:-bad",
        None,
        42,
    ],
)
def test_bad_references_name_the_field(text: object) -> None:
    with pytest.raises(SageliftValidationError) as err:
        parse_image_reference(text, "model_docker_image")
    assert err.value.fields == ["model_docker_image"]


def test_rendering_round_trips_and_pins() -> None:
    ref = parse_image_reference("127.0.0.1:5000/team/trainer:v1", "f")
    assert str(ref) == "127.0.0.1:5000/team/trainer:v1"
    assert ref.pinned(DIGEST) == f"127.0.0.1:5000/team/trainer@{DIGEST}"


def test_ecr_hosts_are_recognised_by_account_and_region() -> None:
    ref = parse_image_reference(f"{ecr_registry_host(ACCOUNT, 'us-east-1')}/x:1", "f")
    assert (ref.ecr_account, ref.ecr_region) == (ACCOUNT, "us-east-1")
    assert ecr_registry_host(ACCOUNT, "cn-north-1") == f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn"
    assert parse_image_reference("registry.example.com/x", "f").ecr_account is None


def test_repository_names_derive_from_the_source_repository() -> None:
    ref = parse_image_reference("registry.example.com/ml/trainer:1.0", "f")
    assert derive_ecr_repository_name(ref, "sagelift/", "f") == "sagelift/ml/trainer"
    assert derive_ecr_repository_name(ref, "", "f") == "ml/trainer"
    long = parse_image_reference("r.example.com/" + "a" * 250, "f")
    with pytest.raises(SageliftValidationError, match="2-256 characters"):
        derive_ecr_repository_name(long, "sagelift/", "f")


def test_copies_are_tagged_with_the_source_tag_or_the_digest() -> None:
    assert derive_ecr_tag(parse_image_reference("r.io/a:1.0", "f")) == "1.0"
    assert derive_ecr_tag(parse_image_reference(f"r.io/a@{DIGEST}", "f")) == "sha256-" + "ab" * 32


def test_the_plan_copies_foreign_images_and_uses_account_images_as_they_are() -> None:
    own = f"{ecr_registry_host(ACCOUNT, 'us-east-1')}/models/xgb:3"
    other_region = f"{ecr_registry_host(ACCOUNT, 'eu-west-1')}/models/xgb:3"
    steps = plan_image_steps(
        {"training_docker_image": own, "model_docker_image": other_region}, ACCOUNT, "us-east-1", "sagelift/"
    )
    assert [(s.param, s.copy, s.target_repository) for s in steps] == [
        ("training_docker_image", False, "models/xgb"),
        ("model_docker_image", True, "sagelift/models/xgb"),
    ]
    assert plan_image_steps({"training_docker_image": None}, ACCOUNT, "us-east-1", "p/") == []


INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"digest": "sha256:" + "1" * 64, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "2" * 64, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
        {
            "digest": "sha256:" + "3" * 64,
            "size": 1,
            "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
        },
    ],
}


def test_no_filter_keeps_the_whole_index() -> None:
    assert select_platforms("img", INDEX, []).whole_index


def test_one_platform_selects_its_manifest() -> None:
    selection = select_platforms("img", INDEX, ["linux/arm64"])
    assert not selection.whole_index and selection.index is None
    assert [e["digest"] for e in selection.entries] == ["sha256:" + "2" * 64]


def test_several_platforms_make_a_new_index_of_just_those() -> None:
    selection = select_platforms("img", INDEX, ["linux/amd64", "linux/arm/v7"])
    assert selection.index is not None
    doc = json.loads(selection.index)
    assert [m["platform"]["architecture"] for m in doc["manifests"]] == ["amd64", "arm"]
    assert selection.index_digest == manifest_digest(selection.index)


def test_a_filter_matching_nothing_names_what_the_image_offers() -> None:
    with pytest.raises(SageliftValidationError, match=r"img offers none of windows/amd64 .*linux/arm/v7"):
        select_platforms("img", INDEX, ["windows/amd64"])


def test_registry_endpoint_defaults_to_ecr_and_fills_placeholders() -> None:
    assert render_registry_endpoint(None, ACCOUNT, "us-east-1") == ecr_registry_host(ACCOUNT, "us-east-1")
    assert render_registry_endpoint("{account_id}.{region}.proxy.internal:8443", ACCOUNT, "us-east-1") == (
        f"{ACCOUNT}.us-east-1.proxy.internal:8443"
    )


def test_downstream_reads_the_pinned_image() -> None:
    images = {"training_docker_image": {"image": f"x/y@{DIGEST}"}, "model_docker_image": None}
    assert pinned_image(images, "training_docker_image") == f"x/y@{DIGEST}"
    assert pinned_image(images, "model_docker_image") is None


def test_platform_settings_for_step_4_validate_themselves() -> None:
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(
            {
                "region": "us-east-1",
                "ecr": {
                    "platforms": ["amd64"],
                    "registry_endpoint": "https://x",
                    "registry_ca_file": "ca.pem",
                },
            }
        )
    assert set(err.value.fields) == {
        "platform.ecr.platforms",
        "platform.ecr.registry_endpoint",
        "platform.ecr.registry_ca_file",
    }
