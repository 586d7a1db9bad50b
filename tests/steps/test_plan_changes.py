"""A plan before any change (issue 16 item 9): plan_changes makes read-only calls only, and a real run
then makes exactly the creates, updates and deletes the plan listed.

Both the plan and the runs are the KFP engine's step functions (include/kfp/sagelift_kfp/steps.py, the
same core calls the Airflow operators make), called in this process with the pod's identity in the
environment, so every call goes through the role chain to the local AWS with the SageMaker lifecycle
emulation (jobs and endpoints end at once). Every AWS call is recorded in the client
(``recording_aws_calls``) and every request the local AWS received is in its log, so a write cannot
hide in either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from sagelift.domain.changes import Change, ChangeSet
from sagelift.domain.plan import Plan
from tests.conftest import ROOT
from tests.support.botocore_validation import RecordedCall, recording_aws_calls
from tests.support.local_aws import REGION, LocalAws
from tests.support.local_aws import SCIENTIST_ACCOUNT as SCIENTIST
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import Scenario, demo_conf

DAG_ID = "sagemaker-deploy"
MODEL = "churn-predictor"
READ_PREFIXES = ("Describe", "List", "Get", "Head")
# The role chain's hops: credentials for this process, nothing in the account changes.
CHAIN = ("AssumeRole",)
# Writes that leave nothing behind: the model's lock is taken and given back within the run.
LOCK_OPERATIONS = ("PutObject", "DeleteObject")
SERVING = {
    "autoscaling": {"min_capacity": 1, "max_capacity": 3, "target_invocations_per_instance": 100},
    "deployment": {"type": "canary", "canary_percent": 25, "bake_seconds": 60},
}


@pytest.fixture
def glue(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    world = Scenario(local_aws).build()
    key, secret = world.runner_key
    for name, value in {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": local_aws.url,
        "SAGELIFT_PLATFORM": json.dumps(world.platform()),
        "SAGELIFT_KFP_RETRY_DELAY": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT / "include" / "kfp"))
    from sagelift_kfp import steps

    with SageMakerLifecycle(time_scale=60).installed(local_aws):
        yield steps


def writes(calls: list[RecordedCall]) -> list[RecordedCall]:
    return [c for c in calls if not c.operation.startswith(READ_PREFIXES) and c.operation not in CHAIN]


def plan_of(glue: Any, run_id: str, **conf: Any) -> tuple[Plan, ChangeSet, list[RecordedCall]]:
    raw = glue.plan_run(demo_conf(plan_only=True, **conf), DAG_ID, run_id)
    with recording_aws_calls() as calls:
        changes = glue.plan_changes(raw)
    return Plan.from_xcom(raw), ChangeSet.from_xcom(changes), calls


def run_for_real(glue: Any, run_id: str, **conf: Any) -> list[RecordedCall]:
    """The deploy's steps as the KFP engine runs them; the calls they made."""
    from sagelift_kfp import governance

    conf = demo_conf(**conf)
    plan = glue.plan_run(conf, DAG_ID, run_id)
    with recording_aws_calls() as calls:
        glue.assume_role_chain(plan)
        assert glue.acquire_lock(plan)["lock_uri"]
        tags = glue.resolve_tags(plan)
        images = glue.copy_images(plan, tags)
        artifact, _ = glue.train_model(plan, tags, images)  # (the artifact, the job's facts)
        registered = governance.register_model(plan, tags, images, artifact)
        model_name = governance.create_model(plan, tags, images, artifact, registered)
        deployed = glue.deploy_endpoint(plan, tags, model_name)
        glue.expose_api(plan, tags, deployed)
        assert glue.release_lock(conf, DAG_ID, run_id)
    return calls


def touched(call: RecordedCall, plan: Plan) -> tuple[str, str]:
    """The resource a write operation changes, named as the plan names it."""
    p, names = call.params, plan.names
    kinds = {
        "CreateTrainingJob": ("SageMaker training job", names.training_job),
        "CreateModel": ("SageMaker model", names.model),
        "CreateModelPackageGroup": ("SageMaker model package group", MODEL),
        "CreateModelPackage": ("SageMaker model package version", MODEL),
        "DeleteModel": ("SageMaker model", str(p.get("ModelName"))),
        "CreateEndpointConfig": ("SageMaker endpoint config", names.endpoint_config),
        "CreateEndpoint": ("SageMaker endpoint", names.endpoint),
        "UpdateEndpoint": ("SageMaker endpoint", names.endpoint),
        "CreateRestApi": ("API Gateway REST API", names.api),
        "CreateDeployment": ("API Gateway stage", f"{names.api}/prod"),
        "CreateStage": ("API Gateway stage", f"{names.api}/prod"),
        "UpdateStage": ("API Gateway stage", f"{names.api}/prod"),
    }
    others = {
        "PutMetricAlarm": ("CloudWatch alarm", str(p.get("AlarmName"))),
        "RegisterScalableTarget": ("scalable target", str(p.get("ResourceId"))),
        "DeregisterScalableTarget": ("scalable target", str(p.get("ResourceId"))),
        "PutScalingPolicy": ("scaling policy", str(p.get("PolicyName"))),
        "DeleteScalingPolicy": ("scaling policy", str(p.get("PolicyName"))),
    }
    kinds.update(others)
    if call.operation in kinds:
        return kinds[call.operation]
    if call.operation == "AddTags":  # SageMaker: only the endpoint is tagged after its creation
        return "SageMaker endpoint", names.endpoint
    if call.operation == "DeleteEndpointConfig":
        return "SageMaker endpoint config", str(p["EndpointConfigName"])
    if call.operation == "TagResource":
        arn = str(p["resourceArn"])
        return (
            ("API Gateway stage", f"{names.api}/prod")
            if "/stages/" in arn
            else ("API Gateway REST API", names.api)
        )
    # the API's parts: its resource, method, integration and their responses
    assert call.service == "apigateway", f"a write the plan cannot name: {call.service} {call.operation}"
    return "API Gateway REST API", names.api


def planned(changes: ChangeSet) -> set[tuple[str, str]]:
    """The resources the plan says the run creates or updates; API names lose their id suffix."""
    return {(c.kind, c.name.split(" (")[0]) for c in changes.changes if c.action != "unchanged"}


def by_kind(changes: ChangeSet) -> dict[str, Change]:
    return {c.kind: c for c in changes.changes}


def real_writes(calls: list[RecordedCall], plan: Plan) -> set[tuple[str, str]]:
    done = set()
    for call in writes(calls):
        if call.operation in LOCK_OPERATIONS:
            assert call.params["Key"].endswith(f"/{MODEL}.json"), call.params  # the lock, nothing else
            continue
        done.add(touched(call, plan))
    return done


def test_a_plan_writes_nothing_and_a_real_run_then_does_what_it_said(glue: Any, local_aws: LocalAws) -> None:
    before = local_aws.request_count()
    first, changes, calls = plan_of(glue, "plan_test__1")
    assert calls and writes(calls) == [], [c.operation for c in writes(calls)]
    assert {c.service for c in calls} >= {"sts", "s3", "ecr", "sagemaker", "apigateway"}
    # the local AWS's own log agrees: API Gateway reads are GETs, the JSON APIs name a read
    received = local_aws.requests[before:]
    posted = [(r.path, r.target) for r in received if r.method not in ("GET", "HEAD")]
    assert all(target.split(".")[-1].startswith(READ_PREFIXES) or path == "/" for path, target in posted), (
        posted
    )
    assert {c.action for c in changes.changes} == {"create", "unchanged"}  # nothing there yet
    assert by_kind(changes)["model lock"].action == "create"
    rendered = changes.render()
    assert "Nothing was changed." in rendered and "+ create    SageMaker endpoint churn-predictor" in rendered
    # the standard tags of the platform's document, and the run's own
    assert "note: tags on what the run creates or updates: CostCenter=cc-4711, " in rendered
    assert "sagelift:run-id=plan_test__1" in rendered
    assert local_aws.client("sagemaker").list_endpoints()["Endpoints"] == []

    # the real run (plan_only off, same run id) creates exactly what the plan listed
    done = real_writes(run_for_real(glue, "plan_test__1"), first)
    assert done == planned(changes) - {("model lock", changes.changes[0].name)}

    # a second run changes the instance type, scales the variant and deploys as a canary: the plan names
    # each change, old -> new, and the alarms and scaling the run adds
    conf = {"endpoint_instance_type": "ml.m5.xlarge", "endpoint": SERVING}
    second, changes, calls = plan_of(glue, "plan_test__2", **conf)
    assert writes(calls) == []
    found = by_kind(changes)
    endpoint = found["SageMaker endpoint"]
    endpoint_fields = {f.path: (f.old, f.new) for f in endpoint.fields}
    assert endpoint.action == "update"
    assert endpoint_fields["EndpointConfigName"] == (
        first.names.endpoint_config,
        second.names.endpoint_config,
    )
    assert endpoint_fields["EndpointConfig.ProductionVariants[0].InstanceType"] == (
        "ml.m5.large",
        "ml.m5.xlarge",
    )
    assert endpoint_fields["Tags.sagelift:run-id"][1] != endpoint_fields["Tags.sagelift:run-id"][0]
    assert not [path for path in endpoint_fields if path.startswith("EndpointConfig.Tags")]
    assert endpoint.note.startswith("canary: 25% first, the rest after 60 s; rolls back on ")
    assert found["SageMaker training job"].action == "create"
    assert found["image"].action == "unchanged"
    assert {
        (c.kind, c.action) for c in changes.changes if c.kind in ("scalable target", "scaling policy")
    } == {
        ("scalable target", "create"),
        ("scaling policy", "create"),
    }
    assert [c.action for c in changes.changes if c.kind == "CloudWatch alarm"] == ["create", "create"]
    stage = found["API Gateway stage"]
    assert stage.action == "update" and {f.path for f in stage.fields} >= {"deploymentId"}
    assert "ml.m5.large -> ml.m5.xlarge" in changes.render()

    done = real_writes(run_for_real(glue, "plan_test__2", **conf), second)
    assert done == planned(changes) - {("model lock", changes.changes[0].name)}

    # a third run without the serving settings: the scaling the second put there is deleted, and the first
    # run's config and model are pruned (keep_endpoint_configs 2), as planned
    third, changes, _ = plan_of(glue, "plan_test__3")
    assert {(c.kind, c.name) for c in changes.changes if c.action == "delete"} == {
        ("scalable target", f"endpoint/{MODEL}/variant/AllTraffic"),
        ("scaling policy", f"sagelift-{MODEL}-invocations-per-instance"),
        ("SageMaker endpoint config", first.names.endpoint_config),
        ("SageMaker model", first.names.model),
    }
    assert "to delete" in changes.render()
    done = real_writes(run_for_real(glue, "plan_test__3"), third)
    assert done == planned(changes) - {("model lock", changes.changes[0].name)}

    # once a run is done, its plan finds its SageMaker resources in place: a retry only replaces the model
    _, again, _ = plan_of(glue, "plan_test__3")
    assert {(c.kind, c.action) for c in again.changes if c.kind.startswith("SageMaker")} == {
        ("SageMaker training job", "unchanged"),
        ("SageMaker model package version", "unchanged"),
        ("SageMaker model", "update"),
        ("SageMaker endpoint config", "unchanged"),
        ("SageMaker endpoint", "unchanged"),
    }


def test_images_from_another_registry_plan_their_copy_from_what_ecr_holds(local_aws: LocalAws) -> None:
    from sagelift.domain.plan import build_plan
    from sagelift.steps.plan_changes import PlanContext, plan_images

    world = Scenario(local_aws).build()
    platform = {**world.platform(), "ecr": {"allowed_source_registries": ["registry.example.com"]}}
    source = "registry.example.com/team/churn-serving"
    conf = demo_conf(model_docker_image=f"{source}:2.0")
    plan = Plan.from_xcom(build_plan(conf, platform, DAG_ID, "plan_test__1", triggered_by="dag_test"))
    ecr = local_aws.client("ecr")

    def planned_images() -> list[tuple[str, str, str]]:
        ctx = PlanContext(plan=plan, clients=lambda service, region=None: ecr, tags=[])
        with recording_aws_calls() as calls:
            changes = plan_images(ctx)
        assert writes(calls) == []
        return [(c.kind, c.name, c.action) for c in changes]

    target = "sagelift/team/churn-serving"
    assert planned_images() == [
        ("image", f"{SCIENTIST}.dkr.ecr.{REGION}.amazonaws.com/churn-train:1.4", "unchanged"),
        ("ECR repository", target, "create"),
        ("image copy", f"{target}:2.0", "create"),
    ]
    ecr.create_repository(repositoryName=target)
    assert planned_images()[1:] == [("image copy", f"{target}:2.0", "create")]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"})
    ecr.put_image(repositoryName=target, imageTag="2.0", imageManifest=manifest)
    # the tag is there: copied again only if the source moved, which only the copy reads
    assert planned_images()[1:] == [("image copy", f"{target}:2.0", "update")]


# Each test uses run ids of its own: the role chain is shared in the process per session name (the run's),
# and the local AWS forgets the chain's sessions between tests.
def test_a_platform_change_to_the_api_shows_old_and_new(
    glue: Any, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_for_real(glue, "plan_test__api")
    platform = json.loads(os.environ["SAGELIFT_PLATFORM"])
    platform["api"] = {**platform.get("api", {}), "throttle_rate_limit": 25, "integration_timeout_ms": 20000}
    monkeypatch.setenv("SAGELIFT_PLATFORM", json.dumps(platform))

    _, changes, calls = plan_of(glue, "plan_test__api")

    assert writes(calls) == []
    found = {c.kind: {f.path: (f.old, f.new) for f in c.fields} for c in changes.changes}
    assert found["API Gateway stage"]["*.*.throttling.rateLimit"][1] == "25"
    assert found["API Gateway REST API"]["POST /invocations integration.timeoutInMillis"] == (29000, 20000)


def test_an_async_endpoint_plans_its_api_path_in_place_of_the_realtime_one(
    glue: Any, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_for_real(glue, "plan_test__async")
    platform = json.loads(os.environ["SAGELIFT_PLATFORM"])
    captures = "s3://scientist-ml-data/captures/"
    platform["accounts"][SCIENTIST]["endpoint"] = {
        "allowed_modes": ["realtime", "async"],
        "capture_prefixes": [captures],
    }
    monkeypatch.setenv("SAGELIFT_PLATFORM", json.dumps(platform))
    endpoint = {"mode": "async", "async_inference": {"output_s3_uri": captures + "async/"}}

    _, changes, calls = plan_of(glue, "plan_test__async", endpoint=endpoint)

    assert writes(calls) == []
    api = {
        f.path: (f.old, f.new) for c in changes.changes if c.kind == "API Gateway REST API" for f in c.fields
    }
    assert api["POST /invocations"] == ("integration", None)
    assert api["POST /async-invocations"][0] is None
