"""Image references, ECR naming and platform selection: pure rules."""

from __future__ import annotations

import json
import re

import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.images import (
    CopyLimits,
    ImageReference,
    TokenRealmRules,
    check_image_sources,
    check_source_registry,
    derive_ecr_repository_name,
    derive_ecr_tag,
    ecr_registry_host,
    image_blob_bytes,
    manifest_digest,
    parse_image_reference,
    parse_www_authenticate,
    pinned_image,
    plan_image_steps,
    render_registry_endpoint,
    select_platforms,
    validate_image_host,
)
from sagelift.domain.platform import EcrSettings, PlatformConfig

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


# --- where images may come from ------------------------------------------------------------------------
ONBOARDED = {ACCOUNT: object()}


def ecr_settings(**raw: object) -> EcrSettings:
    return PlatformConfig.from_dict({"region": "us-east-1", "ecr": raw}).ecr


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("169.254.169.254", "is an IP address"),
        ("127.0.0.1:5000", "is an IP address"),
        ("[::1]:5000", "is an IP address"),
        ("10.1.2.3", "is an IP address"),
        ("2130706433", "looks like an IP address"),
        ("0x7f.0x0.0x0.0x1", "looks like an IP address"),
        ("localhost", "loopback"),
        ("registry.localhost:5000", "loopback"),
        ("metadata.google.internal", r"\*\.internal"),
        ("kubernetes.default.svc", r"\*\.svc"),
        ("registry.ml.svc.cluster.local", r"\*\.svc|\*\.cluster\.local"),
        ("printer.local", r"\*\.local"),
        ("metadata", "single-label"),
        ("registry:5000", "single-label"),
    ],
)
def test_internal_hosts_are_refused_naming_the_field(host: str, rule: str) -> None:
    with pytest.raises(SageliftValidationError, match=rule) as err:
        validate_image_host(host, "model_docker_image")
    assert err.value.fields == ["model_docker_image"]
    assert len(str(err.value)) <= 200


@pytest.mark.parametrize("host", ["ghcr.io", "registry.example.com:8443", "public.ecr.aws", "docker.io"])
def test_public_dns_names_pass_the_host_rule(host: str) -> None:
    validate_image_host(host, "model_docker_image")


@pytest.mark.parametrize(
    "image",
    [
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/models/xgb:1",
        f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/models/xgb:1",  # an onboarded account, any region
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",  # built-in algorithm
        "763104351884.dkr.ecr.eu-north-1.amazonaws.com/pytorch-inference:2.1-cpu-py310",  # AWS DLC
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-inference:2.1-cpu-py310",  # DLC, opt-in region
        "public.ecr.aws/lambda/python:3.12",
    ],
)
def test_the_default_allow_list_holds_onboarded_and_aws_registries(image: str) -> None:
    check_source_registry(parse_image_reference(image, "f"), ecr_settings(), ONBOARDED, "f")


@pytest.mark.parametrize(
    ("image", "rule"),
    [
        ("python:3.12", "docker.io is not an allowed image source"),
        ("ghcr.io/org/img:1", "ghcr.io is not an allowed image source"),
        ("444455556666.dkr.ecr.us-east-1.amazonaws.com/x:1", "neither onboarded nor one of AWS's own"),
        # AWS's algorithm account, but not in the region the table lists it for
        (
            "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1",
            "neither onboarded nor one of AWS's own",
        ),
        ("127.0.0.1:5000/team/trainer:1", "is an IP address"),
        ("localhost:5000/team/trainer:1", "loopback"),
        ("kubernetes.default.svc/x:1", r"\*\.svc"),
    ],
)
def test_the_default_allow_list_refuses_everything_else(image: str, rule: str) -> None:
    with pytest.raises(SageliftValidationError, match=rule) as err:
        check_source_registry(
            parse_image_reference(image, "training_docker_image"),
            ecr_settings(),
            ONBOARDED,
            "training_docker_image",
        )
    assert err.value.fields == ["training_docker_image"]
    assert len(str(err.value)) <= 200


def test_the_platform_allows_registries_by_name_wildcard_and_port() -> None:
    settings = ecr_settings(allowed_source_registries=["docker.io", "*.registry.example.com", "127.0.0.1:*"])

    def allowed(image: str) -> bool:
        try:
            check_source_registry(parse_image_reference(image, "f"), settings, ONBOARDED, "f")
        except SageliftValidationError:
            return False
        return True

    assert allowed("python:3.12")
    assert allowed("eu.registry.example.com/ml/trainer:1")
    assert not allowed("registry.example.com/ml/trainer:1")  # the wildcard covers subdomains only
    assert not allowed("evilregistry.example.com/ml/trainer:1")
    assert not allowed("eu.registry.example.com:8443/ml/trainer:1")  # no port in the entry: 443 only
    assert allowed("127.0.0.1:5000/team/trainer:1")  # the entry names the address: explicitly allowed
    assert not allowed("127.0.0.2:5000/team/trainer:1")
    assert not allowed("localhost:5000/team/trainer:1")


def test_link_local_and_metadata_hosts_can_never_be_allowed() -> None:
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(
            {
                "region": "us-east-1",
                "ecr": {
                    "allowed_source_registries": [
                        "169.254.169.254",
                        "metadata.google.internal",
                        "*",
                        "*.svc",
                    ],
                    "allowed_token_realms": ["[fd00:ec2::254]:*", "*.com"],
                },
            }
        )
    assert (
        err.value.fields
        == ["platform.ecr.allowed_source_registries"] * 4 + ["platform.ecr.allowed_token_realms"] * 2
    )
    with pytest.raises(SageliftValidationError, match="link-local or metadata"):
        check_source_registry(
            parse_image_reference("169.254.169.254/latest/meta-data:1", "f"), ecr_settings(), ONBOARDED, "f"
        )


def test_check_image_sources_collects_a_problem_per_image_param() -> None:
    problems = Problems()
    check_image_sources(
        {"training_docker_image": "127.0.0.1:5000/a:1", "model_docker_image": "kubernetes.default.svc/b:1"},
        ecr_settings(),
        ONBOARDED,
        problems,
    )
    assert problems.fields() == ["training_docker_image", "model_docker_image"]
    clean = Problems()
    check_image_sources({"model_docker_image": "public.ecr.aws/x/y:1"}, ecr_settings(), ONBOARDED, clean)
    assert not clean


def test_www_authenticate_challenges_parse_with_quoted_commas() -> None:
    assert parse_www_authenticate(
        [
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
            'Basic realm="ecr"',
        ]
    ) == [
        (
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:a/b:pull,push",
            },
        ),
        ("basic", {"realm": "ecr"}),
    ]
    assert parse_www_authenticate(['Basic realm="a", Bearer realm="http://169.254.169.254/"'])[1] == (
        "bearer",
        {"realm": "http://169.254.169.254/"},
    )
    assert len(parse_www_authenticate(["Bearer " + ",".join(f"k{i}=v" for i in range(500))])[0][1]) == 32


@pytest.mark.parametrize(
    ("realm", "registry", "refused"),
    [
        ("https://reg.example.com/token", "reg.example.com", None),  # same origin
        ("https://reg.example.com:443/token", "reg.example.com", None),
        ("https://auth.docker.io/token", "docker.io", None),  # Docker Hub's known realm
        ("https://auth.example.com/token", "reg.example.com", None),  # listed by the platform
        ("https://reg.example.com:8443/token", "reg.example.com", "not on platform.ecr.allowed_token_realms"),
        ("https://auth.docker.io/token", "reg.example.com", "not on platform.ecr.allowed_token_realms"),
        ("http://reg.example.com/token", "reg.example.com", "not https"),
        ("http://169.254.169.254/latest/meta-data/", "reg.example.com", "not https"),
        ("https://169.254.169.254/latest/", "reg.example.com", "link-local or metadata"),
        ("https://metadata.google.internal/x", "reg.example.com", "link-local or metadata"),
        ("https://[::ffff:169.254.169.254]/x", "reg.example.com", "link-local or metadata"),
        ("https://kubernetes.default.svc/api", "reg.example.com", "not on platform.ecr.allowed_token_realms"),
        ("file:///etc/passwd", "reg.example.com", "without a host"),
        ("https://user:pw@auth.example.com/token", "reg.example.com", "with credentials in it"),
    ],
)
def test_token_realms_are_checked_against_the_platform_rules(
    realm: str, registry: str, refused: str | None
) -> None:
    reason = TokenRealmRules(("auth.example.com",)).refusal(realm, registry)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
        assert "pw" not in reason.replace("https://", "")  # credentials in a realm are never echoed


def test_http_realms_pass_only_when_the_platform_allows_them() -> None:
    realm = "http://auth.example.com/token"
    assert TokenRealmRules(("auth.example.com:80",)).refusal(realm, "reg.example.com") is not None
    assert (
        TokenRealmRules(("auth.example.com:80",), allow_http=True).refusal(realm, "reg.example.com") is None
    )
    rules = TokenRealmRules.from_settings(
        ecr_settings(allowed_token_realms=["auth.example.com"], allow_http_token_realms=True)
    )
    assert rules == TokenRealmRules(("auth.example.com",), True)


def test_copy_time_bounds_grow_with_the_image_and_stop_at_the_maximum() -> None:
    limits = CopyLimits.from_settings(
        ecr_settings(copy_timeout_base_minutes=5, copy_timeout_minutes_per_gb=2, copy_timeout_max_minutes=30)
    )
    assert limits.bound_seconds(0) == 5 * 60
    assert limits.bound_seconds(4_000_000_000) == (5 + 8) * 60
    assert limits.bound_seconds(10**12) == 30 * 60
    assert CopyLimits.from_settings(ecr_settings()) == CopyLimits(10, 3, 120)


def test_an_image_size_is_what_its_manifest_declares() -> None:
    manifest = {"config": {"size": 100}, "layers": [{"size": 1000}, {"size": 2000}, {"size": "huge"}, "x"]}
    assert image_blob_bytes(manifest) == 3100
    assert image_blob_bytes({"layers": "not a list"}) == 0


def test_copy_settings_validate_themselves() -> None:
    with pytest.raises(SageliftValidationError) as err:
        PlatformConfig.from_dict(
            {
                "region": "us-east-1",
                "ecr": {
                    "copy_timeout_base_minutes": 0,
                    "copy_timeout_minutes_per_gb": "3",
                    "copy_timeout_max_minutes": 2000,
                    "allow_http_token_realms": "yes",
                    "allowed_token_realms": "auth.example.com",
                },
            }
        )
    assert set(err.value.fields) == {
        "platform.ecr.copy_timeout_base_minutes",
        "platform.ecr.copy_timeout_minutes_per_gb",
        "platform.ecr.copy_timeout_max_minutes",
        "platform.ecr.allow_http_token_realms",
        "platform.ecr.allowed_token_realms",
    }
    with pytest.raises(SageliftValidationError, match="at least copy_timeout_base_minutes"):
        ecr_settings(copy_timeout_base_minutes=30, copy_timeout_max_minutes=10)


# --- AWS-owned images are used in place (issue 15 item 5) -----------------------------------------------
@pytest.mark.parametrize(
    ("image", "in_place"),
    [
        (  # a built-in algorithm's image, by tag: SageMaker resolves AWS's tags itself
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        ),
        (  # a Deep Learning Container given with tag and digest: pinned by the digest
            f"763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu@{DIGEST}",
            f"763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference@{DIGEST}",
        ),
    ],
)
def test_aws_owned_images_are_used_in_place(image: str, in_place: str) -> None:
    (step,) = plan_image_steps({"model_docker_image": image}, ACCOUNT, "us-east-1", "sagelift/")
    assert (step.action, step.copy, step.in_place) == ("aws_owned", False, in_place)


def test_an_aws_owned_image_of_another_region_is_refused_naming_the_regions_registry() -> None:
    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
    with pytest.raises(SageliftValidationError) as err:
        plan_image_steps({"model_docker_image": image}, ACCOUNT, "af-south-1", "sagelift/")
    assert err.value.fields == ["model_docker_image"]
    assert "626614931356.dkr.ecr.af-south-1.amazonaws.com" in str(err.value)
    assert len(str(err.value).splitlines()[0]) <= 200


def test_validate_refuses_an_aws_owned_image_of_another_region() -> None:
    from sagelift.domain.plan import build_plan
    from tests.support.scenario import demo_conf

    conf = demo_conf(model_docker_image="763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1")
    with pytest.raises(SageliftValidationError) as err:
        build_plan(conf, {"region": "us-east-1", "accounts": {ACCOUNT: {}}}, "sagemaker_deploy", "manual__1")
    assert err.value.fields == ["model_docker_image"]


# --- copy records (issue 14 item 5) ---------------------------------------------------------------------
def test_a_copy_record_names_its_model_and_digest_within_tag_rules() -> None:
    from sagelift.domain.images import TAG_RE, derive_copy_record_tag, parse_copy_record_tag

    longest = "m" + "-a" * 26 + "b"  # 54 characters, the longest model name
    tag = derive_copy_record_tag(longest, DIGEST)
    assert TAG_RE.match(tag) and len(tag) <= 128
    assert parse_copy_record_tag(tag, DIGEST) == longest
    assert parse_copy_record_tag(derive_copy_record_tag("churn", DIGEST), "sha256:" + "cd" * 32) is None
    for not_a_record in ("1.0", "sagelift.churn", f"sagelift.a.b.{'ab' * 16}", f"sagelift.-x.{'ab' * 16}"):
        assert parse_copy_record_tag(not_a_record, DIGEST) is None


# --- what registries serve is bounded and checked (issue 14 item 13) ------------------------------------
def test_a_manifest_is_a_bounded_json_object() -> None:
    from sagelift.domain.images import ManifestError, parse_manifest

    good = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"})
    assert parse_manifest(good.encode(), "img")["schemaVersion"] == 2
    cases = {
        b"[1, 2]": "served a list where a manifest is a JSON object",
        b'"a string"': "served a string where a manifest is a JSON object",
        b"null": "served null",
        b"{": "is not valid JSON",
        b"[" * 10_000 + b"]" * 10_000: "nests objects and lists more than 12 levels deep",
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000: "more than 12 levels deep",
        b'{"mediaType": ["x"]}': "mediaType is a list",
        b"\xff\xfe": "not UTF-8",
        b'{"size": 1' + b"0" * 40 + b"}": "more than 19 digits",
    }
    for raw, message in cases.items():
        with pytest.raises(ManifestError, match=re.escape(message)) as err:
            parse_manifest(raw, "registry.example.com/team/img:1")
        assert str(err.value).startswith("registry.example.com/team/img:1: ")
        assert len(str(err.value)) <= 200


@pytest.mark.parametrize(
    ("manifests", "message"),
    [
        ({"a": 1}, "manifests is an object, not a list"),
        ("nope", "manifests is a string, not a list"),
        ([], "lists no manifests"),
        (["sha256:" + "1" * 64], "manifests[0] is a string, not an object"),
        ([{"size": 1}], "manifests[0] has no digest"),
        ([{"digest": "sha256:../../etc"}], "manifests[0] has no digest"),
        ([{"digest": "sha512:" + "1" * 128}], "manifests[0] has no digest"),
        ([{"digest": "sha256:" + "1" * 64, "platform": "linux/amd64"}], "platform that is a string"),
        ([{"digest": "sha256:" + "1" * 64, "platform": {"os": ["linux"]}}], "platform os that is a list"),
        ([{"digest": "sha256:" + "1" * 64, "mediaType": 7}], "mediaType that is a number"),
        ([{"digest": "sha256:" + "1" * 64}] * 1001, "lists 1001 manifests; at most 1000"),
    ],
)
def test_a_bad_index_is_refused_naming_the_entry(manifests: object, message: str) -> None:
    from sagelift.domain.images import ManifestError, parse_manifest

    raw = json.dumps({"schemaVersion": 2, "mediaType": INDEX["mediaType"], "manifests": manifests}).encode()
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse_manifest(raw, "img")
    with pytest.raises(ManifestError, match=re.escape(message)):
        select_platforms("img", {"manifests": manifests}, ["linux/amd64"])
