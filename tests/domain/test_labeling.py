"""Labeling before training (issue 20 item 4): the conf's rules, the platform's, the table of Ground Truth's
Lambda functions, CreateLabelingJob's body (validated against botocore's model) and the training channel
the plan carries from validate on."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.labeling import (
    TASK_TYPES,
    LabelingSettings,
    build_labeling_job_request,
    lambda_arns,
    parse_labeling,
    render_ui_template,
    task_types,
)
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import build_training_job_request
from sagelift.domain.tuning import DEFINITION_FIELDS
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

MANIFEST = f"s3://{DATA_BUCKET}/to-label/leaves.manifest"
WORKTEAM = f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:workteam/private-crowd/agronomists"
LABELING = {
    "manifest_s3_uri": MANIFEST,
    "task_type": "image_classification",
    "labels": ["healthy", "rust", "blight"],
    "instructions": "Pick the disease the leaf shows.",
    "channel": "labeled",  # the demo conf has train and validation channels
}


def _platform(**account: Any) -> dict[str, Any]:
    settings = {
        "deployers": {"users": ["admin"]},
        "labeling_workteam_arn": WORKTEAM,
        "labeling_prefixes": [f"s3://{DATA_BUCKET}/to-label/"],
        **account,
    }
    return {"region": "us-east-1", "accounts": {SCIENTIST_ACCOUNT: settings}}


def _plan(platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    conf.setdefault("labeling", LABELING)
    raw = build_plan(
        demo_conf(**conf), platform or _platform(), "sagemaker_deploy", "lab-1", triggered_by="admin"
    )
    return Plan.from_xcom(raw)


def _refusal(platform: dict[str, Any] | None = None, **conf: Any) -> str:
    with pytest.raises(SageliftValidationError) as err:
        _plan(platform, **conf)
    return str(err.value)


def test_an_empty_labeling_is_off_and_the_task_skips() -> None:
    problems = Problems()
    assert parse_labeling(None, problems) == LabelingSettings() and not LabelingSettings().enabled
    assert parse_labeling("", problems).to_conf() == {} and not problems
    plan = _plan(labeling={})
    assert plan.skip_reason("label_data") and len(plan.params.training_channels) == 2


def test_settings_round_trip_through_the_plan_and_the_kfp_struct() -> None:
    plan = _plan()
    settings = plan.params.labeling
    assert settings.enabled and settings.labels == ("healthy", "rust", "blight")
    conf = settings.to_conf()
    assert None not in conf.values()  # a KFP struct holds no nulls
    assert LabelingSettings.from_dict(settings.to_dict()) == settings
    assert _plan(labeling=conf).params.labeling == settings
    assert plan.skip_reason("label_data") is None


def test_the_output_manifest_is_a_training_channel_of_the_training_and_tuning_requests() -> None:
    plan = _plan(labeling={**LABELING, "channel": "labeled"})
    job = plan.names.training_job
    channel = {
        "ChannelName": "labeled",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "AugmentedManifestFile",
                "S3Uri": f"s3://{DATA_BUCKET}/churn/output/{job}/manifests/output/output.manifest",
                "S3DataDistributionType": "FullyReplicated",
                "AttributeNames": ["source-ref", "label"],
            }
        },
        "InputMode": "Pipe",
        "ContentType": "application/x-image",
        "RecordWrapperType": "RecordIO",
    }
    training = build_training_job_request(
        plan.params,
        plan.names,
        region="us-east-1",
        role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/training",
        tags=[{"Key": "k", "Value": "v"}],
        settings=SageMakerSettings(),
    )
    assert training["InputDataConfig"][-1] == channel
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["train", "validation", "labeled"]
    assert validate_request("sagemaker", "CreateTrainingJob", training) == []
    # tuning's training job definition takes the run's channels from this same request
    assert "InputDataConfig" in DEFINITION_FIELDS


def test_a_text_task_streams_its_source_inline_and_may_be_the_only_channel() -> None:
    labeling = {**LABELING, "task_type": "text_classification", "label_attribute_name": "sentiment"}
    del labeling["channel"]
    plan = _plan(labeling=labeling, training_channels=[])
    (channel,) = plan.params.training_channels
    assert channel["DataSource"]["S3DataSource"]["AttributeNames"] == ["source", "sentiment"]
    assert "RecordWrapperType" not in channel and channel["ChannelName"] == "train"


@pytest.mark.parametrize(
    ("labeling", "field", "rule"),
    [
        ({"task_type": "bounding_box", "labels": ["a"]}, "labeling.manifest_s3_uri", "required"),
        (
            {**LABELING, "manifest_s3_uri": f"s3://{DATA_BUCKET}/to-label/"},
            "labeling.manifest_s3_uri",
            "one S3 object",
        ),
        ({**LABELING, "task_type": "video"}, "labeling.task_type", "bounding_box"),
        ({**LABELING, "labels": []}, "labeling.labels", "1-30"),
        ({**LABELING, "labels": ["a", "a"]}, "labeling.labels", "unique"),
        (
            {**LABELING, "label_attribute_name": "my_label"},
            "labeling.label_attribute_name",
            "letters, digits",
        ),
        (
            {**LABELING, "label_attribute_name": "label-metadata"},
            "labeling.label_attribute_name",
            "-metadata",
        ),
        ({**LABELING, "label_attribute_name": "source-ref"}, "labeling.label_attribute_name", "source-ref"),
        ({**LABELING, "label_attribute_name": "mask-ref"}, "labeling.label_attribute_name", "-ref"),
        (
            {**LABELING, "task_type": "semantic_segmentation", "label_attribute_name": "mask"},
            "labeling.label_attribute_name",
            "must end in -ref",
        ),
        ({**LABELING, "channel": "validation"}, "labeling.channel", "already has a channel"),
        ({**LABELING, "workers_per_object": 10}, "labeling.workers_per_object", "1 to 9"),
        (
            {**LABELING, "task_availability_seconds": 59},
            "labeling.task_availability_seconds",
            "60 to 2592000",
        ),
        (
            {**LABELING, "task_availability_seconds": 31 * 86400},
            "labeling.task_availability_seconds",
            "60 to 2592000",
        ),
        ({**LABELING, "colour": "red"}, "labeling.colour", "unknown setting"),
        # CreateLabelingJob's TaskDescription needs a character, its TaskTitle only typable text
        ({**LABELING, "instructions": " \n "}, "labeling.instructions", "only spaces"),
        ({**LABELING, "instructions": "Pick\x07"}, "labeling.instructions", "control character (U+0007)"),
        ({**LABELING, "title": "Leaves\x1b"}, "labeling.title", "control character (U+001B)"),
        ({**LABELING, "title": "Leaves 🍂"}, "labeling.title", "U+1F342, which a Ground Truth task title"),
    ],
)
def test_validate_refuses_a_broken_rule_naming_the_field(
    labeling: dict[str, Any], field: str, rule: str
) -> None:
    message = _refusal(labeling=labeling)
    first = message.splitlines()[0]
    assert len(first) < 200
    assert field in message and rule in message


def test_workers_text_within_the_rules_reaches_a_request_botocore_accepts() -> None:
    settings = _plan(labeling={**LABELING, "title": "Leaves\tà trier", "instructions": "Pick 🍂\nthen go"})
    request = build_labeling_job_request(
        settings.params.labeling,
        job_name="churn-predictor-0123456789ab",
        training_output=f"s3://{DATA_BUCKET}/churn/output",
        region="us-east-1",
        role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/training",
        workteam_arn=WORKTEAM,
        tags=[],
    )
    assert validate_request("sagemaker", "CreateLabelingJob", request) == []
    assert request["HumanTaskConfig"]["TaskDescription"] == "Pick 🍂 then go"


def test_validate_refuses_labeling_for_a_run_that_trains_nothing() -> None:
    message = _refusal(model_artifact_s3_path=f"s3://{DATA_BUCKET}/churn/model.tar.gz")
    assert "labeling: labels feed training" in message


@pytest.mark.parametrize(
    ("account", "field", "rule"),
    [
        ({"labeling_workteam_arn": None}, "labeling", "has no labeling_workteam_arn"),
        ({"labeling_prefixes": None}, "labeling.manifest_s3_uri", "lists no labeling_prefixes"),
        ({"labeling_prefixes": [f"s3://{DATA_BUCKET}/other/"]}, "labeling.manifest_s3_uri", "not under"),
        (
            {"labeling_workteam_arn": WORKTEAM.replace("us-east-1", "eu-west-1")},
            "labeling",
            "workteam is in eu-west-1",
        ),
    ],
)
def test_validate_refuses_what_the_platform_does_not_allow(
    account: dict[str, Any], field: str, rule: str
) -> None:
    message = _refusal(_platform(**account))
    assert f"{field}: " in message and rule in message


def test_the_platform_refuses_a_public_or_foreign_workteam() -> None:
    for arn in (
        WORKTEAM.replace("private-crowd", "public-crowd"),
        WORKTEAM.replace(SCIENTIST_ACCOUNT, "999999999999"),
        "agronomists",
    ):
        message = _refusal(_platform(labeling_workteam_arn=arn), labeling={})
        assert f"platform.accounts.{SCIENTIST_ACCOUNT}.labeling_workteam_arn" in message


def test_a_region_without_ground_truth_is_refused() -> None:
    platform = _platform(labeling_workteam_arn=WORKTEAM.replace("us-east-1", "sa-east-1"))
    platform["region"] = "sa-east-1"
    assert (
        "labeling.task_type: Ground Truth's built-in task types are not available in sa-east-1"
        in _refusal(platform)
    )


def test_the_lambda_table_is_the_one_sagemakers_api_reference_lists() -> None:
    """Every ARN sagelift sends is one botocore's model documents for PreHumanTaskLambdaArn and
    AnnotationConsolidationLambdaArn (the API reference's lists), in every region it lists."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    pre_doc = model.shape_for("HumanTaskConfig").members["PreHumanTaskLambdaArn"].documentation
    acs_doc = (
        model.shape_for("AnnotationConsolidationConfig")
        .members["AnnotationConsolidationLambdaArn"]
        .documentation
    )
    regions = set(re.findall(r"arn:aws:lambda:([a-z0-9-]+):\d{12}:function:PRE-BoundingBox", pre_doc))
    assert len(regions) >= 12
    for task_type in TASK_TYPES:
        for region in regions:
            arns = lambda_arns(task_type, region)
            assert arns is not None, (task_type, region)
            assert arns[0] in pre_doc and arns[1] in acs_doc


def test_the_request_is_valid_for_botocore_in_every_task_type() -> None:
    for task_type in TASK_TYPES:
        attribute = "mask-ref" if task_type == "semantic_segmentation" else "label"
        settings = LabelingSettings.from_dict(
            {
                **LABELING,
                "task_type": task_type,
                "label_attribute_name": attribute,
                "instructions": "Line 1\nLine 2",
            }
        )
        request = build_labeling_job_request(
            settings,
            job_name="churn-predictor-0123456789ab",
            training_output=f"s3://{DATA_BUCKET}/churn/output",
            region="eu-west-1",
            role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/training",
            workteam_arn=WORKTEAM,
            tags=[{"Key": "sagelift:model", "Value": "churn-predictor"}],
            output_kms_key="alias/output",
        )
        assert validate_request("sagemaker", "CreateLabelingJob", request) == []
        task = request["HumanTaskConfig"]
        function = task_types()[task_type]["function"]
        assert (
            task["PreHumanTaskLambdaArn"] == f"arn:aws:lambda:eu-west-1:568282634449:function:PRE-{function}"
        )
        assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
            f"ACS-{function}"
        )
        prefix = f"s3://{DATA_BUCKET}/churn/output/churn-predictor-0123456789ab/labeling-input/"
        assert task["UiConfig"]["UiTemplateS3Uri"] == prefix + "template.liquid.html"
        assert request["LabelCategoryConfigS3Uri"] == prefix + "label-categories.json"
        assert request["OutputConfig"] == {
            "S3OutputPath": f"s3://{DATA_BUCKET}/churn/output/",
            "KmsKeyId": "alias/output",
        }
        assert task["TaskDescription"] == "Line 1 Line 2"
        assert (task["TaskTimeLimitInSeconds"], task["TaskAvailabilityLifetimeInSeconds"]) == (300, 2 * 86400)


def test_label_data_waits_as_long_as_the_tasks_stay_open_not_the_training_budget() -> None:
    from sagelift.operators.labeling import SageMakerLabelingOperator

    conf = {**LABELING, "task_availability_seconds": 5 * 86400, "task_time_limit_seconds": 3600}
    plan = _plan(labeling=conf)
    assert plan.params.labeling.wait_seconds == 5 * 86400 + 3600 + 3600
    assert plan.platform.sagemaker.training_wait_budget_seconds == 48 * 3600  # shorter: people take days
    operator = SageMakerLabelingOperator(task_id="label_data")
    assert operator.wait_budget_seconds(plan) == plan.params.labeling.wait_seconds


def test_the_conf_reaches_the_worker_template_as_inert_text() -> None:
    settings = LabelingSettings.from_dict(
        {
            **LABELING,
            "instructions": "{{ task.input | to_json }} {% raw %} <script>alert(1)</script>",
            "title": '"x',
        }
    )
    template = render_ui_template(settings)
    assert (
        "<script>alert" not in template
        and "{{ task.input | to_json }}" not in template
        and "{%" not in template
    )
    assert "&#123;&#123; task.input | to_json &#125;&#125;" in template and 'header="&quot;x"' in template
    # the template's own Liquid is there: the object to label and the labels
    assert "{{ task.input.taskObject | grant_read_access }}" in template
    assert '<crowd-image-classifier name="crowd-image-classifier"' in template


def test_onboarding_grants_the_labeling_calls_and_documents_only_to_an_account_with_a_workteam() -> None:
    """The execution role may create, describe and stop the account's labeling jobs and write their two
    documents beside the training output; the training role, which the job runs as, reads the manifest's
    prefix and the job's own output. An account without a workteam gets none of it."""
    from parliament import analyze_policy_string

    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig

    platform = _platform()
    platform["master_role_arn"] = "arn:aws:iam::222222222222:role/sagelift-master-pipeline"
    platform["accounts"]["444444444444"] = {}

    def render(account: str) -> dict[str, Any]:
        return render_policies(
            PlatformConfig.from_dict(platform),
            account,
            runner_principal_arn="arn:aws:iam::111111111111:role/airflow-workers",
            data_uris=[f"s3://{DATA_BUCKET}/churn/"],
            output_uris=[f"s3://{DATA_BUCKET}/churn/output/"],
        )

    policies = render(SCIENTIST_ACCOUNT)
    statements = {s["Sid"]: s for s in policies["execution-permissions"]["Statement"]}
    jobs = statements["LabelingJobsOfTheRun"]
    assert set(jobs["Action"]) == {
        "sagemaker:CreateLabelingJob",
        "sagemaker:DescribeLabelingJob",
        "sagemaker:StopLabelingJob",
        "sagemaker:AddTags",
    }
    assert jobs["Resource"] == f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:labeling-job/*"
    documents = statements["WriteTheLabelingJobsTemplateAndLabels"]["Resource"]
    assert documents == [f"arn:aws:s3:::{DATA_BUCKET}/churn/output/*/labeling-input/*"]
    reads = {s["Sid"]: s for s in policies["training-and-model-permissions"]["Statement"]}[
        "ReadDataAndArtifacts"
    ]
    assert f"arn:aws:s3:::{DATA_BUCKET}/to-label/*" in reads["Resource"]
    assert f"arn:aws:s3:::{DATA_BUCKET}/churn/output/*" in reads["Resource"]
    for name in ("execution-permissions", "training-and-model-permissions"):
        findings = analyze_policy_string(json.dumps(policies[name])).findings
        assert not [f for f in findings if f.severity in ("HIGH", "MEDIUM", "CRITICAL")], name
    other = render("444444444444")
    assert "Labeling" not in json.dumps(other) and "to-label" not in json.dumps(other)


def test_every_setting_is_documented_in_the_trigger_form_and_the_readme_whose_example_is_valid() -> None:
    from sagelift.dags.params import airflow_params
    from sagelift.domain.labeling import _KEYS
    from tests.conftest import ROOT

    form = airflow_params()["labeling"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Labeling before training") :]
    section = section[: section.index("\n### ")]
    for key in _KEYS:
        assert key in form.description, key
        assert f"`{key}`" in section, key
    example = json.loads(
        section[section.index("```json") + 7 : section.index("```\n", section.index("```json"))]
    )
    problems = Problems()
    assert parse_labeling(example["labeling"], problems).enabled and not problems
    assert form.schema["section"] == "Training"
    # the form's example fits the demo conf (its channel name is new)
    from sagelift.domain.params import PARAMETERS

    (spec,) = [p for p in PARAMETERS if p.name == "labeling"]
    parse_labeling(spec.examples[0], problems, channels=demo_conf()["training_channels"])
    assert not problems


def test_the_summary_shows_the_labeling_job_its_counts_and_the_channel_it_fed() -> None:
    from sagelift.domain.labeling import labeling_facts
    from sagelift.domain.summary import build_run_summary, render_run_summary

    plan = _plan()
    job = plan.names.training_job
    manifest = plan.params.training_channels[-1]["DataSource"]["S3DataSource"]["S3Uri"]
    facts = labeling_facts(
        {
            "LabelingJobName": job,
            "LabelingJobStatus": "Completed",
            "LabelAttributeName": "label",
            "LabelCounters": {
                "TotalLabeled": 40,
                "HumanLabeled": 38,
                "FailedNonRetryableError": 2,
                "Unlabeled": 0,
            },
            "LabelingJobOutput": {"OutputDatasetS3Uri": manifest},
        }
    )
    summary = build_run_summary(
        plan.to_xcom(), images=None, training=None, model=None, endpoint=None, api=None, labeling=facts
    )
    assert summary["labeling"]["channel"] == "labeled" and summary["labeling"]["labeled"] == 40
    assert {
        "kind": "labeling job",
        "name": job,
        "action": "created",
        "status": "Completed",
        "output": manifest,
    } in (summary["resources"])
    text = render_run_summary(summary)
    assert f"Labeling: {job} labeled 40 objects (38 by people, 2 failed, 0 unlabeled)" in text
    assert f"training channel labeled read {manifest}" in text
    skipped = build_run_summary(
        plan.to_xcom(), images=None, training=None, model=None, endpoint=None, api=None
    )
    assert skipped["labeling"] is None and "Labeling" not in render_run_summary(skipped)
