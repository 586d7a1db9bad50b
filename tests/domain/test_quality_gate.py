"""The quality gate (issue 17 item 7) and the registry's request bodies (item 6): rules read at validate
naming their field, the verdict on a job's final metrics, the version's status, CreateModel from the
registered version, and the summary's registry line; every body valid for botocore."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.model_package import (
    build_model_package_group_request,
    build_model_package_request,
    build_update_model_package_request,
)
from sagelift.domain.params import parse_params
from sagelift.domain.plan import derive_names
from sagelift.domain.quality_gate import QualityGate, approval_status, evaluate_gate
from sagelift.domain.sagemaker import build_model_request
from sagelift.domain.summary import build_run_summary, render_run_summary
from tests.support.botocore_validation import validate_request
from tests.support.scenario import demo_conf

OWN_METRICS = {"metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]}


def _parse(gate: Any, **conf: Any) -> Any:
    return parse_params(demo_conf(quality_gate=gate, **conf))


def _first_line(gate: Any, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as refused:
        _parse(gate, **conf)
    line = str(refused.value).splitlines()[0]
    assert len(line) < 200
    return line


def test_rules_are_read_as_metric_op_number_and_pushed_back_as_text() -> None:
    params = _parse(["validation:auc >= 0.8", "validation:auc<0.99"], training=OWN_METRICS)
    assert params.quality_gate.to_dict() == ["validation:auc >= 0.8", "validation:auc < 0.99"]
    assert QualityGate.from_dict(params.to_dict()["quality_gate"]) == params.quality_gate
    assert _parse("validation:auc > 0.5", training=OWN_METRICS).quality_gate.metrics == ("validation:auc",)
    assert not _parse([]).quality_gate.enabled


@pytest.mark.parametrize(
    ("gate", "field", "words"),
    [
        (["validation:auc ~ 0.8"], "quality_gate[0]", "op one of"),
        (["validation:auc >= high"], "quality_gate[0]", "not a finite number"),
        (["validation:auc >= 0.8", 3], "quality_gate[1]", "must be a rule"),
        ({"validation:auc": 0.8}, "quality_gate", "must be a list"),
        (["validation:f1 >= 0.8"], "quality_gate[0]", "not a metric the training job reports"),
    ],
)
def test_a_broken_rule_is_refused_naming_its_field(gate: Any, field: str, words: str) -> None:
    line = _first_line(gate, training=OWN_METRICS)
    assert line.startswith(f"{field}:") and words in line


def test_built_in_algorithms_define_their_metrics_and_an_artifact_run_has_none() -> None:
    builtin = demo_conf(
        training_docker_image=None, training_algorithm_name="xgboost", model_docker_image=None
    )
    assert parse_params({**builtin, "quality_gate": ["validation:auc >= 0.8"]}).quality_gate.enabled
    line = _first_line(
        ["validation:auc >= 0.8"],
        model_artifact_s3_path="s3://sagelift-data/churn/model.tar.gz",
        training_docker_image=None,
        training_channels=None,
        training_hyperparameters=None,
        training_instance_count=None,
        training_instance_type=None,
    )
    assert line.startswith("quality_gate:") and "nothing is trained" in line
    assert "define training.metric_definitions" in _first_line(["validation:auc >= 0.8"])


def test_the_verdict_names_the_metric_and_both_values_and_sets_the_status() -> None:
    gate = QualityGate.from_dict(["validation:auc >= 0.8", "train:loss < 0.5"])
    passed = evaluate_gate(gate, {"validation:auc": 0.8, "train:loss": 0.1})
    assert passed.passed and [c["passed"] for c in passed.checks] == [True, True]
    assert approval_status(passed, False) == "Approved"
    assert approval_status(passed, True) == "PendingManualApproval"
    below = evaluate_gate(gate, {"validation:auc": 0.71, "train:loss": 0.1})
    assert not below.passed and approval_status(below, True) == "Rejected"
    assert below.message == "quality_gate: validation:auc is 0.71, which fails >= 0.8"
    missing = evaluate_gate(gate, {"validation:auc": 0.9})
    assert "no final value for train:loss" in missing.message and missing.checks[1]["value"] is None


def test_the_registry_bodies_are_valid_for_botocore() -> None:
    tags = [{"Key": "sagelift:model", "Value": "churn"}]
    group = build_model_package_group_request("churn-predictor", tags)
    assert validate_request("sagemaker", "CreateModelPackageGroup", group) == []
    version = build_model_package_request(
        model_name="churn-predictor",
        run_key="0123abcd",
        dag_id="sagemaker_deploy",
        run_id="manual__2026-12-02T10:00:00+00:00",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/churn@sha256:" + "a" * 64,
        model_data_url="s3://bucket/out/job/output/model.tar.gz",
        environment={"A": "1"},
        metrics={"validation:auc": 0.91, "odd name (%)": 1e-7},
        gate="passed",
        status="Approved",
        tags=tags,
    )
    assert validate_request("sagemaker", "CreateModelPackage", version) == []
    assert version["CustomerMetadataProperties"]["metric:odd name ___"] == "1e-07"
    update = build_update_model_package_request(
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/c/1", "Rejected", "x"
    )
    assert validate_request("sagemaker", "UpdateModelPackage", update) == []


def test_create_model_builds_the_model_from_the_registered_version() -> None:
    params = parse_params(demo_conf())
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-predictor/3"
    request = build_model_request(
        params,
        derive_names(params.model_name, "sagemaker_deploy", "r1"),
        region="us-east-1",
        role_arn="arn:aws:iam::123456789012:role/model",
        model_data_url="s3://ignored/model.tar.gz",
        tags=[],
        model_package_arn=arn,
    )
    assert request["PrimaryContainer"] == {
        "ModelPackageName": arn,
        "Environment": {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},
    }
    assert validate_request("sagemaker", "CreateModel", request) == []


def test_the_summary_shows_group_version_status_and_gate() -> None:
    plan = {
        "params": {"model_name": "churn", "account_id": "123456789012"},
        "names": {
            "run_key": "k",
            "training_job": "churn-k",
            "model": "churn-k",
            "endpoint_config": "churn-k",
        },
    }
    registered = {
        "model_package_group": "churn",
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3",
        "version": 3,
        "status": "Approved",
        "gate": {
            "passed": True,
            "checks": [{"rule": "validation:auc >= 0.8", "value": 0.91, "passed": True}],
        },
    }
    summary = build_run_summary(
        plan, images=None, training=None, model=None, endpoint=None, api=None, registered=registered
    )
    assert summary["registry"]["version"] == 3 and summary["registry"]["quality_gate"] == "passed"
    assert "Model registry: churn version 3 is Approved; quality gate passed" in render_run_summary(summary)


def test_a_retrain_registration_carries_its_threshold() -> None:
    from sagelift.domain.retrain import parse_retrain_model
    from tests.conftest import ROOT

    raw = json.loads((ROOT / "include/examples/retrain/fraud-scorer.json").read_text())
    registered = parse_retrain_model("fraud-scorer", raw)
    assert parse_params(registered.conf).quality_gate.to_dict() == ["validation:auc >= 0.9"]
    with pytest.raises(SageliftValidationError) as refused:
        parse_retrain_model("fraud-scorer", {**raw, "conf": {**raw["conf"], "quality_gate": ["auc >> 1"]}})
    assert refused.value.fields == ["fraud-scorer: conf.quality_gate[0]"]


def test_a_threshold_keeps_every_digit_through_the_plan() -> None:
    gate = QualityGate.from_dict(["validation:auc >= 0.123456789", "train:loss < 1e-7", "epochs > 100"])
    assert gate.to_dict() == ["validation:auc >= 0.123456789", "train:loss < 1e-07", "epochs > 100"]
    assert QualityGate.from_dict(gate.to_dict()) == gate
