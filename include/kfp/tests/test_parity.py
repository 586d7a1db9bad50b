"""Parity: the pipeline, run with kfp.local against the local AWS, creates what the Airflow DAG creates.

The demo conf runs through all eight steps as subprocesses of this environment (SubprocessRunner
without a venv: the components' image has what this environment has). The training job, model,
endpoint config and endpoint found in the scientist account are compared field by field with

1. the requests sagelift.domain builds for the same conf, platform, tags and digest-pinned images, as
   the Airflow operators do at run time; and
2. the golden request bodies the Airflow side is tested with (tests/domain/golden), with the run's
   names, the tags and the image digests normalized, since those depend on the run and its inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kfp import local
from pipeline import PIPELINE_NAME, build_pipeline

from sagelift.domain.plan import build_plan, plan_names, plan_params
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
)
from sagelift.domain.tags import derive_run_tags, merge_tags
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import IMAGES_IN_ECR, STANDARD_TAGS, Scenario, demo_conf

pytestmark = pytest.mark.slow  # eight component subprocesses: ~15 s alone, more on a busy machine

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "domain" / "golden" / "sagemaker_byo_image.json"
PINNED_RE = re.compile(r"@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws() as server:
        yield server


@pytest.fixture(scope="module")
def deployed(
    aws: LocalAws, component_env: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Run the pipeline once with the demo conf; what it created, read back as an administrator."""
    tmp_path = tmp_path_factory.mktemp("kfp")
    aws.reset()
    scenario = Scenario(aws).build()
    key, secret = scenario.runner_key
    for name, value in {
        "SAGELIFT_PLATFORM": json.dumps(scenario.platform()),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": aws.url,
    }.items():
        component_env.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        component_env.delenv(name, raising=False)

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    conf = demo_conf()
    build_pipeline()(**conf)

    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    (job_summary,) = sm.list_training_jobs()["TrainingJobSummaries"]
    job = sm.describe_training_job(TrainingJobName=job_summary["TrainingJobName"])
    model = sm.describe_model(ModelName=job["TrainingJobName"])
    config = sm.describe_endpoint_config(EndpointConfigName=job["TrainingJobName"])
    endpoint = sm.describe_endpoint(EndpointName=conf["model_name"])
    return {
        "conf": conf,
        "platform": scenario.platform(),
        "digests": {
            repository: aws.client("ecr", SCIENTIST_ACCOUNT).describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag}]
            )["imageDetails"][0]["imageDigest"]
            for repository, tag in IMAGES_IN_ECR
        },
        "apis": aws.client("apigateway", SCIENTIST_ACCOUNT).get_rest_apis()["items"],
        "run_key": job["TrainingJobName"].rsplit("-", 1)[1],
        "CreateTrainingJob": job,
        "CreateModel": model,
        "CreateEndpointConfig": config,
        "CreateEndpoint": endpoint,
        "tags": {
            op: sm.list_tags(ResourceArn=d[arn])["Tags"]
            for op, d, arn in (
                ("CreateTrainingJob", job, "TrainingJobArn"),
                ("CreateModel", model, "ModelArn"),
                ("CreateEndpointConfig", config, "EndpointConfigArn"),
                ("CreateEndpoint", endpoint, "EndpointArn"),
            )
        },
    }


def _kfp_run_id(deployed: dict[str, Any]) -> str:
    """The KFP run id, from the run tag every resource carries."""
    (tag,) = [t for t in deployed["tags"]["CreateModel"] if t["Key"] == "sagelift:run-id"]
    return str(tag["Value"])


def _expected_requests(deployed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the Airflow operators send for this conf: the domain builders fed as they feed them."""
    run_id = _kfp_run_id(deployed)
    plan = build_plan(deployed["conf"], deployed["platform"], PIPELINE_NAME, run_id)
    params, names = plan_params(plan), plan_names(plan)
    platform = PlatformConfig.from_dict(deployed["platform"])
    tags = merge_tags(
        [{"Key": k, "Value": v} for k, v in STANDARD_TAGS.items()],
        derive_run_tags(
            model_name=params.model_name, dag_id=PIPELINE_NAME, run_id=run_id, account_id=params.account_id
        ),
    )
    # copy_images' XCom for images already in the account's ECR: pinned to the digest ECR reports.
    images = {}
    for param in ("training_docker_image", "model_docker_image"):
        reference = str(getattr(params, param))
        repository = reference.split("/", 1)[1].split(":")[0]
        images[param] = {"image": f"{reference.split(':')[0]}@{deployed['digests'][repository]}"}
    return {
        "CreateTrainingJob": build_training_job_request(
            params,
            names,
            region=platform.region,
            role_arn=platform.training_role_arn(params.account_id),
            tags=tags,
            settings=platform.sagemaker,
            copied_images=images,
        ),
        "CreateModel": build_model_request(
            params,
            names,
            region=platform.region,
            role_arn=platform.model_role_arn(params.account_id),
            model_data_url=expected_model_artifact(str(params.training_s3_output_path), names.training_job),
            tags=tags,
            copied_images=images,
        ),
        "CreateEndpointConfig": build_endpoint_config_request(
            params, names, tags=tags, settings=platform.sagemaker
        ),
        "CreateEndpoint": build_endpoint_request(names, tags=tags),
    }


def _project(described: Any, request: Any) -> Any:
    """``described`` cut down to the fields ``request`` has: Describe adds SageMaker's own defaults."""
    if isinstance(described, dict) and isinstance(request, dict):
        return {key: _project(described.get(key), value) for key, value in request.items()}
    if isinstance(described, list) and isinstance(request, list) and len(described) == len(request):
        return [_project(d, r) for d, r in zip(described, request, strict=True)]
    return described


def _sent_fields(deployed: dict[str, Any], operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as the created resource reports them (its tags from ListTags)."""
    fields = _project(deployed[operation], {k: v for k, v in request.items() if k != "Tags"})
    fields["Tags"] = deployed["tags"][operation]
    return fields


OPERATIONS = ("CreateTrainingJob", "CreateModel", "CreateEndpointConfig", "CreateEndpoint")


def test_pipeline_creates_what_the_domain_builders_build(deployed: dict[str, Any]) -> None:
    expected = _expected_requests(deployed)
    for operation in OPERATIONS:
        assert _sent_fields(deployed, operation, expected[operation]) == expected[operation], operation
    # every resource is named from this run's key, the endpoint and the API after the model
    assert (
        expected["CreateTrainingJob"]["TrainingJobName"] == deployed["CreateTrainingJob"]["TrainingJobName"]
    )
    assert [api["name"] for api in deployed["apis"]] == [deployed["conf"]["model_name"]]


def _normalized(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Names to placeholders, image digests back to the tag they were resolved from, tags dropped."""
    text = json.dumps({k: v for k, v in body.items() if k != "Tags"}, sort_keys=True)
    for name, placeholder in names.items():
        text = text.replace(f'"{name}', f'"{placeholder}').replace(f"/{name}/", f"/{placeholder}/")
    out = json.loads(text)
    for key, value in _walk(out):
        if key in ("TrainingImage", "Image") and PINNED_RE.search(value):
            repository = value.rsplit("/", 1)[1].split("@")[0]
            tags = dict(IMAGES_IN_ECR)
            _replace(out, value, PINNED_RE.sub(f":{tags[repository]}", value))
    return out


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _replace(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if value == old:
                node[key] = new
            else:
                _replace(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _replace(item, old, new)


def test_pipeline_sends_the_airflow_golden_requests(deployed: dict[str, Any]) -> None:
    golden = json.loads(GOLDEN.read_text())
    golden_per_run = golden["CreateTrainingJob"]["TrainingJobName"]
    kfp_per_run = deployed["CreateTrainingJob"]["TrainingJobName"]
    for operation in OPERATIONS:
        want = _normalized(golden[operation], {golden_per_run: "<run>"})
        got = _normalized(_sent_fields(deployed, operation, golden[operation]), {kfp_per_run: "<run>"})
        assert got == want, operation
