"""Batch scoring's settings (issue 17 item 10): the conf's rules, the plan's skips and CreateTransformJob's
body, validated against botocore's service model."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from sagelift.domain.batch_settings import (
    BatchSettings,
    build_transform_job_request,
    parse_batch,
    transform_instance_types,
)
from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.plan import Plan, build_plan
from sagelift.steps.batch import transform_request
from sagelift.steps.overrides import check_request_overrides
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

INPUT = f"s3://{DATA_BUCKET}/trials/2026/"
KEY = f"arn:aws:kms:us-east-1:{SCIENTIST_ACCOUNT}:key/0b0c3a7e-4f3e-4a39-9d8e-6a1f2b3c4d5e"


def _platform(**account: Any) -> dict[str, Any]:
    return {
        "region": "us-east-1",
        "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}, **account}},
    }


def _plan(platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    raw = build_plan(
        demo_conf(**conf), platform or _platform(), "sagemaker_deploy", "batch-1", triggered_by="admin"
    )
    return Plan.from_xcom(raw)


def _refusal(platform: dict[str, Any] | None = None, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        _plan(platform, **conf)
    return str(err.value)


def test_an_empty_batch_is_off_and_round_trips() -> None:
    problems = Problems()
    assert parse_batch(None, problems) == BatchSettings() and not BatchSettings().enabled
    assert parse_batch("", problems).to_conf() == {}
    assert not problems


def test_settings_round_trip_through_the_plan_and_the_kfp_struct() -> None:
    batch = {"input_s3_uri": INPUT, "split_type": "Line", "instance_count": 2, "accept": "text/csv"}
    plan = _plan(batch=batch)
    assert plan.params.batch.enabled and plan.params.batch.instance_count == 2
    conf = plan.params.batch.to_conf()
    assert conf == batch and None not in conf.values()  # a KFP struct holds no nulls
    assert BatchSettings.from_dict(plan.params.batch.to_dict()) == plan.params.batch
    assert _plan(batch=conf).params.batch == plan.params.batch


@pytest.mark.parametrize(
    ("batch", "field", "rule"),
    [
        ({"split_type": "Line"}, "batch.input_s3_uri", "required"),
        ({"input_s3_uri": "http://x/y"}, "batch.input_s3_uri", "S3 URI"),
        (
            {"input_s3_uri": INPUT, "split_type": "Lines"},
            "batch.split_type",
            "None, Line, RecordIO, TFRecord",
        ),
        ({"input_s3_uri": INPUT, "strategy": "Multi"}, "batch.strategy", "MultiRecord, SingleRecord"),
        (
            {"input_s3_uri": INPUT, "instance_type": "ml.m5.largee"},
            "batch.instance_type",
            "did you mean ml.m5.large",
        ),
        (
            {"input_s3_uri": INPUT, "instance_type": "ml.t2.medium"},
            "batch.instance_type",
            "transform instance type",
        ),
        ({"input_s3_uri": INPUT, "instance_count": 0}, "batch.instance_count", "from 1 to 100"),
        ({"input_s3_uri": INPUT, "max_payload_mb": 101}, "batch.max_payload_mb", "from 0 to 100"),
        (
            {"input_s3_uri": INPUT, "max_payload_mb": 10, "max_concurrent_transforms": 11},
            "batch.max_concurrent_transforms",
            "at most 100 MB, got 11 x 10",
        ),
        (
            {"input_s3_uri": INPUT, "max_concurrent_transforms": 17},
            "batch.max_concurrent_transforms",
            "got 17 x 6 (max_payload_mb unset: SageMaker's 6)",
        ),
        ({"input_s3_uri": INPUT, "assemble_with": "Newline"}, "batch.assemble_with", "None, Line"),
        (
            {"input_s3_uri": INPUT, "output_s3_uri": INPUT + "out/"},
            "batch.output_s3_uri",
            "under input_s3_uri",
        ),
        ({"input_s3_uri": INPUT, "input_prefix": INPUT}, "batch.input_prefix", "unknown setting"),
    ],
)
def test_each_rule_names_its_field(batch: dict[str, Any], field: str, rule: str) -> None:
    message = _refusal(batch=batch)
    first = message.splitlines()[0]
    assert len(first) < 200 and field in message and rule in message


def test_payload_times_concurrency_within_sagemaker_s_100_mb_passes() -> None:
    for batch in (
        {"input_s3_uri": INPUT, "max_payload_mb": 10, "max_concurrent_transforms": 10},
        {"input_s3_uri": INPUT, "max_concurrent_transforms": 16},  # 16 x the default 6 MB
        {
            "input_s3_uri": INPUT,
            "max_payload_mb": 0,
            "max_concurrent_transforms": 50,
        },  # 0: unlimited, streamed
    ):
        assert _plan(batch=batch).params.batch.max_concurrent_transforms == batch["max_concurrent_transforms"]


def test_an_artifact_run_must_name_where_results_go() -> None:
    conf = {
        "model_artifact_s3_path": f"s3://{DATA_BUCKET}/models/churn/model.tar.gz",
        "training_docker_image": "",
        "training_channels": [],
        "training_s3_output_path": "",
    }
    message = _refusal(batch={"input_s3_uri": INPUT}, **conf)
    assert "batch.output_s3_uri" in message and "required when nothing is trained" in message
    plan = _plan(batch={"input_s3_uri": INPUT, "output_s3_uri": f"s3://{DATA_BUCKET}/scores/"}, **conf)
    assert transform_request(plan, [])["TransformOutput"]["S3OutputPath"] == f"s3://{DATA_BUCKET}/scores/"


def test_batch_mode_refuses_endpoint_settings_and_train_only_runs() -> None:
    message = _refusal(batch={"input_s3_uri": INPUT}, endpoint={"instance_count": 2})
    assert "endpoint" in message and "batch is set, so no endpoint is created" in message
    message = _refusal(batch={"input_s3_uri": INPUT}, model_docker_image="")
    assert message.startswith("batch") or "batch:" in message
    assert "has no model to score with" in message


def test_the_account_bounds_the_prefixes() -> None:
    bounded = _platform(batch_prefixes=[f"s3://{DATA_BUCKET}/trials/", f"s3://{DATA_BUCKET}/churn/"])
    assert _plan(bounded, batch={"input_s3_uri": INPUT}).params.batch.enabled  # output under churn/output/
    message = _refusal(bounded, batch={"input_s3_uri": "s3://elsewhere/data/"})
    assert "batch.input_s3_uri" in message and "batch_prefixes" in message
    message = _refusal(bounded, batch={"input_s3_uri": INPUT, "output_s3_uri": "s3://elsewhere/out/"})
    assert "batch.output_s3_uri" in message
    message = _refusal(_platform(batch_prefixes=["s3://no-slash"]), batch={"input_s3_uri": INPUT})
    assert f"platform.accounts.{SCIENTIST_ACCOUNT}.batch_prefixes" in message


def test_the_plan_skips_the_endpoint_and_api_in_batch_mode_and_batch_otherwise() -> None:
    batch = _plan(batch={"input_s3_uri": INPUT})
    assert batch.skip_reason("create_model") is None and batch.skip_reason("batch_transform") is None
    for step in ("deploy_endpoint", "expose_api"):
        assert "batch is set" in str(batch.skip_reason(step)) and INPUT in str(batch.skip_reason(step))
    serving = _plan()
    assert serving.skip_reason("deploy_endpoint") is None
    assert "batch is not set" in str(serving.skip_reason("batch_transform"))
    train_only = _plan(model_docker_image="")
    assert "train-only" in str(train_only.skip_reason("batch_transform"))


def test_the_request_is_valid_for_botocore_and_derives_its_output() -> None:
    plan = _plan(
        batch={"input_s3_uri": INPUT, "content_type": "text/csv", "split_type": "Line", "max_payload_mb": 6}
    )
    tags = [{"Key": "sagelift:model", "Value": "churn-predictor"}]
    request = transform_request(plan, tags)
    assert validate_request("sagemaker", "CreateTransformJob", request) == []
    assert request == {
        "TransformJobName": plan.names.model,
        "ModelName": plan.names.model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": INPUT}},
            "SplitType": "Line",
            "ContentType": "text/csv",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{DATA_BUCKET}/churn/output/{plan.names.model}/batch/",
            "AssembleWith": "None",
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "Tags": tags,
    }


def test_the_accounts_kms_keys_encrypt_results_and_volumes() -> None:
    network = {"output_kms_key": KEY, "volume_kms_key": KEY}
    plan = _plan(_platform(network=network), batch={"input_s3_uri": INPUT})
    request = transform_request(plan, [])
    assert request["TransformOutput"]["KmsKeyId"] == KEY
    assert request["TransformResources"]["VolumeKmsKeyId"] == KEY
    assert validate_request("sagemaker", "CreateTransformJob", request) == []
    # local NVMe storage: SageMaker refuses a volume key there
    nvme = BatchSettings(
        input_s3_uri=INPUT, output_s3_uri=f"s3://{DATA_BUCKET}/o/", instance_type="ml.g5.xlarge"
    )
    request = build_transform_job_request(
        nvme,
        job_name="j",
        model_name="m",
        training_output=None,
        tags=[],
        network=plan.platform.account(SCIENTIST_ACCOUNT).network,
    )
    assert (
        "VolumeKmsKeyId" not in request["TransformResources"]
        and request["TransformOutput"]["KmsKeyId"] == KEY
    )


def test_overrides_apply_only_where_the_platform_allows_and_botocore_accepts() -> None:
    allowed = {
        "region": "us-east-1",
        "sagemaker": {"allowed_overrides": {"CreateTransformJob": ["ModelClientConfig", "Environment"]}},
    }
    platform = {**_platform(), **allowed}
    fields = {"ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1}}
    plan = _plan(platform, batch={"input_s3_uri": INPUT}, request_overrides={"CreateTransformJob": fields})
    request = transform_request(plan, [])
    assert request["ModelClientConfig"] == fields["ModelClientConfig"]
    check_request_overrides(plan)  # botocore accepts it
    bad = _plan(
        platform,
        batch={"input_s3_uri": INPUT},
        request_overrides={"CreateTransformJob": {"ModelClientConfig": {"InvocationsMaxRetries": "many"}}},
    )
    with pytest.raises(
        SageliftValidationError, match=r"request_overrides\.CreateTransformJob\.ModelClientConfig"
    ):
        check_request_overrides(bad)
    message = _refusal(
        platform,
        batch={"input_s3_uri": INPUT},
        request_overrides={"CreateTransformJob": {"TransformOutput": {"S3OutputPath": "s3://x/"}}},
    )
    assert "request_overrides.CreateTransformJob.TransformOutput.S3OutputPath" in message
    message = _refusal(platform, request_overrides={"CreateTransformJob": fields})
    assert "batch is not set" in message


def test_the_shipped_transform_instance_types_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateTransformJob").input_shape.members["TransformResources"]
    assert transform_instance_types() == tuple(sorted(shape.members["InstanceType"].enum))


def test_the_summary_shows_the_job_and_where_the_results_are_on_both_engines() -> None:
    from sagelift.domain.summary import build_run_summary, render_run_summary

    plan = _plan(batch={"input_s3_uri": INPUT})
    facts = {
        "job": plan.names.model,
        "status": "Completed",
        "input_s3_uri": INPUT,
        "output_s3_uri": f"s3://{DATA_BUCKET}/churn/output/{plan.names.model}/batch/",
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "seconds": 42.0,
    }
    airflow = {"Transform": {"TransformJobName": plan.names.model}, "Batch": facts}
    for xcom in (airflow, facts):  # Airflow's task returns both, the KFP step the facts
        summary = build_run_summary(
            plan.to_xcom(), images=None, training=None, model=None, endpoint=None, api=None, batch=xcom
        )
        assert summary["batch"] == facts and summary["invoke_url"] is None
        kinds = {r["kind"]: r for r in summary["resources"]}
        assert kinds["batch transform job"]["output"] == facts["output_s3_uri"]
        assert "endpoint" not in kinds and "endpoint config" not in kinds
        text = render_run_summary(summary)
        assert f"results under {facts['output_s3_uri']}" in text and "in 42 s" in text
    serving = build_run_summary(
        _plan().to_xcom(), images=None, training=None, model=None, endpoint=None, api=None
    )
    assert serving["batch"] is None
