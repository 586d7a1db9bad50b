"""KFP naming rules: deterministic, so a retry finds what an earlier try made."""

from __future__ import annotations

import json

from sagelift.domain.kfp import (
    PIPELINE_EXTRA_PARAMETERS,
    derive_package_digest,
    derive_pipeline_version_name,
    derive_run_display_name,
    name_filter,
    version_holds_package,
)


def test_same_content_same_version_name_and_changed_content_a_new_one():
    one = derive_package_digest(b"spec: 1")
    two = derive_package_digest(b"spec: 2")

    assert derive_pipeline_version_name("p", one) == derive_pipeline_version_name(
        "p", derive_package_digest(b"spec: 1")
    )
    assert derive_pipeline_version_name("p", one) != derive_pipeline_version_name("p", two)


def test_a_version_holds_a_package_by_name_or_by_the_digest_in_its_description():
    digest = derive_package_digest(b"spec")

    assert version_holds_package({"name": derive_pipeline_version_name("p", digest)}, "p", digest)
    assert version_holds_package({"name": "p", "description": f"package {digest}"}, "p", digest)
    assert not version_holds_package({"name": "p", "description": "from the UI"}, "p", digest)


def test_run_name_depends_only_on_the_dag_run():
    assert derive_run_display_name("d", "r") == derive_run_display_name("d", "r")
    assert derive_run_display_name("d", "r1") != derive_run_display_name("d", "r2")


def test_name_filter_is_filter_proto_json():
    assert json.loads(name_filter("x")) == {
        "predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": "x"}]
    }


def test_run_parameters_are_the_thirteen_pipeline_parameters():
    from sagelift.domain.kfp import build_run_parameters
    from sagelift.domain.params import ORIGINAL_PARAMETER_NAMES, parse_params
    from tests.support.scenario import demo_conf

    params = parse_params(demo_conf()).to_dict()
    run = build_run_parameters(params)
    assert list(run) == [*ORIGINAL_PARAMETER_NAMES, *PIPELINE_EXTRA_PARAMETERS]
    assert run["model_artifact_s3_path"] == ""  # unset -> the pipeline default, never None
    assert run["training_instance_count"] == 2
    assert run["endpoint"] == {}  # no serving settings: the pipeline's default
    assert run["training"] == {}
    assert run["request_overrides"] == {}


def test_the_serving_settings_travel_as_the_conf_that_gives_them():
    from sagelift.domain.kfp import build_run_parameters, parse_run_parameters
    from sagelift.domain.params import parse_params
    from tests.support.scenario import demo_conf

    endpoint = {"mode": "serverless", "serverless": {"memory_size_mb": 3072, "max_concurrency": 7}}
    params = parse_params(demo_conf(endpoint=endpoint))
    sent = build_run_parameters(params.to_dict())["endpoint"]
    assert sent == endpoint
    # a KFP struct hands numbers back as doubles: the component reads the same settings
    received = {
        "endpoint": {"mode": "serverless", "serverless": {"memory_size_mb": 3072.0, "max_concurrency": 7.0}}
    }
    assert parse_params(demo_conf(**parse_run_parameters(received))).endpoint == params.endpoint


def test_run_parameters_refuse_overrides_the_pipeline_cannot_take():
    import pytest

    from sagelift.domain.errors import SageliftValidationError
    from sagelift.domain.kfp import build_run_parameters
    from sagelift.domain.params import parse_params
    from tests.support.scenario import demo_conf

    with pytest.raises(SageliftValidationError, match="pvc_size: not available on the KFP engine"):
        build_run_parameters(parse_params(demo_conf(pvc_size="1Gi")).to_dict())
