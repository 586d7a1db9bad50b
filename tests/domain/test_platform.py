"""The platform configuration's SageMaker settings: defaults and strict parsing."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.platform import PlatformConfig, parse_platform_variable

BASE = {"region": "us-east-1", "accounts": {"333333333333": {}}}


def test_training_logs_are_streamed_unless_the_platform_says_false():
    assert PlatformConfig.from_dict(BASE).sagemaker.stream_training_logs is True
    off = PlatformConfig.from_dict({**BASE, "sagemaker": {"stream_training_logs": False}})
    assert off.sagemaker.stream_training_logs is False


def test_stream_training_logs_must_be_a_boolean():
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict({**BASE, "sagemaker": {"stream_training_logs": "false"}})
    assert raised.value.fields == ["platform.sagemaker.stream_training_logs"]


# --- every platform rule is checked when the configuration is parsed ----------------------------------
def refused_fields(raw) -> list[str]:
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict(raw)
    first_line = str(raised.value).splitlines()[0]
    assert len(first_line) <= 160 and first_line.startswith(raised.value.fields[0]), first_line
    return raised.value.fields


@pytest.mark.parametrize(
    ("api", "field"),
    [
        ({"authorization": "AWS_IAM", "quota_limit": 1000}, "platform.api.quota_limit"),
        ({"endpoint_type": "PRIVATE"}, "platform.api.allowed_vpc_endpoint_ids"),
        ({"throttle_rate_limit": -5}, "platform.api.throttle_rate_limit"),
        ({"throttle_burst_limit": 0}, "platform.api.throttle_burst_limit"),
        ({"allowed_org_id": "o-abcdefghij", "authorization": "API_KEY"}, "platform.api.allowed_org_id"),
        ({"stage_name": ["prod"]}, "platform.api.stage_name"),
        ({"integration_timeout_ms": True}, "platform.api.integration_timeout_ms"),
    ],
)
def test_api_settings_that_would_fail_expose_api_are_refused_when_parsed(api, field):
    assert refused_fields({**BASE, "api": api}) == [field]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({**BASE, "kubernetes": "yes"}, "platform.kubernetes"),
        (
            {**BASE, "kubernetes": {"service_account_name": "Pipeline_SA"}},
            "platform.kubernetes.service_account_name",
        ),
        ({**BASE, "kubernetes": {"kubernetes_conn_id": 7}}, "platform.kubernetes.kubernetes_conn_id"),
        ({**BASE, "kubernetes": {"image": "python 3"}}, "platform.kubernetes.image"),
        (
            {**BASE, "kubernetes": {"wait_for_bound_seconds": -1}},
            "platform.kubernetes.wait_for_bound_seconds",
        ),
        (
            {**BASE, "kubernetes": {"resources": {"requests": {"cpu": "1" * 1000 + "m"}}}},
            "platform.kubernetes.resources",
        ),
        ({**BASE, "kubernetes": {"pvc_size": "20Gi"}}, "platform.kubernetes.pvc_size"),
        ({**BASE, "kubernetes": {"max_pvc_size": "lots"}}, "platform.kubernetes.max_pvc_size"),
        (
            {**BASE, "kubernetes": {"allowed_storage_classes": "gp3"}},
            "platform.kubernetes.allowed_storage_classes",
        ),
        (
            {**BASE, "kubernetes": {"allowed_storage_classes": ["GP3"]}},
            "platform.kubernetes.allowed_storage_classes[0]",
        ),
        ({**BASE, "ecr": {"repository_prefix": 5}}, "platform.ecr.repository_prefix"),
        ({**BASE, "ecr": {"platforms": 3}}, "platform.ecr.platforms"),
        ({**BASE, "accounts": {"333333333333": "x"}}, "platform.accounts.333333333333"),
        ({**BASE, "accounts": ["333333333333"]}, "platform.accounts"),
        (
            {**BASE, "sagemaker": {"training_max_runtime_seconds": 0}},
            "platform.sagemaker.training_max_runtime_seconds",
        ),
        ({**BASE, "sagemaker": {"keep_endpoint_configs": True}}, "platform.sagemaker.keep_endpoint_configs"),
        ({**BASE, "sagemaker": {"deferrable": "no"}}, "platform.sagemaker.deferrable"),
        ({**BASE, "session_duration_seconds": 10**5000}, "platform.session_duration_seconds"),
        ({**BASE, "execution_role_name": "role\n"}, "platform.execution_role_name"),
        ({**BASE, "region": "us-east-1\n"}, "platform.region"),
    ],
)
def test_ill_typed_or_out_of_range_settings_name_the_field(raw, field):
    assert refused_fields(raw) == [field]


def test_a_hostile_document_is_refused_with_one_short_message_naming_where():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    [field] = refused_fields({**BASE, "api": deep})
    assert field.startswith("platform.api.x.x.x")
    assert refused_fields({**BASE, "tags_s3_uri": "s3://b/" + "k" * 5000}) == ["platform.tags_s3_uri"]
    assert refused_fields(["not", "an", "object"]) == ["platform"]


def test_a_mistyped_setting_gets_the_closest_name():
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict({**BASE, "sagemakr": {}})
    assert raised.value.problems == [("platform.sagemakr", "unknown setting; did you mean 'sagemaker'?")]


def test_claim_overrides_are_bounded_by_the_platform():
    from sagelift.domain.errors import Problems

    settings = PlatformConfig.from_dict(
        {
            **BASE,
            "kubernetes": {
                "max_pvc_size": "5Gi",
                "pvc_storage_class": "gp3",
                "allowed_storage_classes": ["io2"],
            },
        }
    ).kubernetes
    for size, cls in (("5Gi", "gp3"), ("5120Mi", "io2"), (None, None), ("1G", None)):
        problems = Problems()
        settings.claim_override_problems(size, cls, problems)
        assert problems.items == [], (size, cls)
    problems = Problems()
    settings.claim_override_problems("6Gi", "fast", problems)
    assert problems.fields() == ["pvc_size", "pvc_storage_class"]
    assert "at most 5Gi" in problems.items[0][1]
    assert "gp3, io2" in problems.items[1][1]


def test_refusing_an_account_names_no_other_account():
    platform = PlatformConfig.from_dict({**BASE, "accounts": {"333333333333": {}, "555555555555": {}}})
    with pytest.raises(SageliftValidationError) as raised:
        platform.account("444444444444")
    message = str(raised.value)
    assert "444444444444" in message
    assert "333333333333" not in message and "555555555555" not in message


def test_an_oversized_string_is_refused_naming_where_it_is():
    raw = {**BASE, "kubernetes": {"resources": {"requests": {"cpu": "1" * 5000 + "m"}}}}
    assert refused_fields(raw) == ["platform.kubernetes.resources.requests.cpu"]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("[" * 100_000, "nests objects and lists more than 16 levels deep"),
        ('{"region": ', "is not valid JSON"),
        ('{"a": ' + "9" * 5000 + "}", "more than 19 digits"),
        ('["us-east-1"]', "must be a JSON object, got a list"),
    ],
)
def test_the_variable_s_text_is_read_within_bounds(text, rule):
    with pytest.raises(SageliftValidationError) as raised:
        parse_platform_variable(text)
    assert raised.value.fields == ["platform"]
    assert rule in str(raised.value)


def test_an_unset_variable_reads_as_none_and_a_set_one_as_its_object():
    assert parse_platform_variable(None) is None
    assert parse_platform_variable('{"region": "us-east-1"}') == {"region": "us-east-1"}


# --- who may deploy where ------------------------------------------------------------------------------
ACCESS = {
    "region": "us-east-1",
    "groups": {"churn-team": ["bob", "carol@example.com"], "fraud-team": ["dave"]},
    "accounts": {
        "333333333333": {"deployers": {"users": ["erin"], "groups": ["churn-team"]}},
        "444444444444": {"deployers": {"users": ["alice"]}},
        "555555555555": {},
    },
}


@pytest.mark.parametrize(
    ("user", "account", "allowed"),
    [
        ("erin", "333333333333", True),  # listed by name
        ("bob", "333333333333", True),  # through a group
        ("carol@example.com", "333333333333", True),
        ("alice", "333333333333", False),  # a deployer elsewhere only
        ("dave", "333333333333", False),  # in a group the account does not list
        ("Bob", "333333333333", False),  # names compare exactly
        ("alice", "444444444444", True),
        ("bob", "555555555555", False),  # onboarded, nobody listed: nobody may
        ("alice", "666666666666", False),  # not onboarded
        ("", "333333333333", False),
    ],
)
def test_an_account_lets_only_its_deployers_act(user, account, allowed):
    assert PlatformConfig.from_dict(ACCESS).may_deploy(user, account) is allowed


@pytest.mark.parametrize("account", ["333333333333", "555555555555", "666666666666"])
@pytest.mark.parametrize(
    ("action", "verb"), [("deploy into", "deploy into"), ("tear down in", "tear down in")]
)
def test_a_refusal_names_the_user_and_the_account_and_nobody_else(account, action, verb):
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict(ACCESS).check_deployer("alice", account, action)
    message = str(raised.value)
    assert raised.value.fields == ["account_id"]
    assert message.startswith(f"account_id: user 'alice' may not {verb} account {account}: ")
    # The same words whether the account is not onboarded, lists nobody, or lists others.
    assert message.replace(account, "<account>") == (
        f"account_id: user 'alice' may not {verb} account <account>: not one of its deployers "
        "(platform.accounts.<account>.deployers)"
    )
    for other in ("bob", "erin", "carol", "dave", "churn-team", "444444444444"):
        assert other not in message
    assert len(("Teardown refused. " + message).splitlines()[0]) <= 200


def test_a_long_user_name_keeps_the_refusal_short():
    with pytest.raises(SageliftValidationError) as raised:
        PlatformConfig.from_dict(ACCESS).check_deployer("u" * 256, "333333333333")
    first = str(raised.value).splitlines()[0]
    assert len("Invalid run configuration. " + first) <= 200
    assert "333333333333" in first


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"groups": ["bob"]}, "platform.groups"),
        ({"groups": {"churn team": ["bob"]}}, "platform.groups['churn team']"),
        ({"groups": {"t": "bob"}}, "platform.groups.t"),
        ({"groups": {"t": ["bob", " padded"]}}, "platform.groups.t[1]"),
        ({"groups": {"t": ["line\nbreak"]}}, "platform.groups.t[0]"),
        ({"groups": {"t": ["x" * 257]}}, "platform.groups.t[0]"),
        ({"accounts": {"333333333333": {"deployers": ["bob"]}}}, "platform.accounts.333333333333.deployers"),
        (
            {"accounts": {"333333333333": {"deployers": {"user": ["bob"]}}}},
            "platform.accounts.333333333333.deployers.user",
        ),
        (
            {"accounts": {"333333333333": {"deployers": {"users": "bob"}}}},
            "platform.accounts.333333333333.deployers.users",
        ),
        (
            {"accounts": {"333333333333": {"deployers": {"users": [7]}}}},
            "platform.accounts.333333333333.deployers.users[0]",
        ),
        (
            {"accounts": {"333333333333": {"deployers": {"groups": ["no-such-team"]}}}},
            "platform.accounts.333333333333.deployers.groups[0]",
        ),
    ],
)
def test_access_settings_are_checked_when_parsed(change, field):
    assert refused_fields({**BASE, **change}) == [field]


def test_an_undefined_group_is_named_in_the_refusal():
    raw = {**BASE, "accounts": {"333333333333": {"deployers": {"groups": ["churn-tema"]}}}}
    with pytest.raises(SageliftValidationError, match=r"'churn-tema' is not defined in platform\.groups"):
        PlatformConfig.from_dict(raw)


def test_deployers_are_read_as_given():
    platform = PlatformConfig.from_dict(ACCESS)
    assert platform.accounts["333333333333"].deployers.users == ("erin",)
    assert platform.accounts["333333333333"].deployers.groups == ("churn-team",)
    assert platform.groups["churn-team"] == ("bob", "carol@example.com")
    assert platform.accounts["555555555555"].deployers.users == ()
