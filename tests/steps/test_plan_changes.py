"""A plan before any change (issue 16 item 9): plan_changes makes read-only calls only, and a real run
then makes exactly the creates and updates the plan listed.

The steps run in this process against the local AWS with the SageMaker lifecycle emulation (endpoints
and jobs end at once), in the order both engines run them; every AWS call is recorded in the client
(``recording_aws_calls``) and every request the local AWS received is in its log, so a write cannot hide
in either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sagelift.domain.changes import Change, ChangeSet
from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import api, endpoint, lock, model, training
from sagelift.steps.images import publish_images
from sagelift.steps.plan_changes import plan_changes
from sagelift.steps.tags import resolve_tags
from tests.support.botocore_validation import RecordedCall, recording_aws_calls
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import Scenario, demo_conf

DAG_ID = "sagemaker_deploy"
MODEL = "churn-predictor"
READ_PREFIXES = ("Describe", "List", "Get", "Head")
# Writes that change nothing a run owns: the model's lock is taken and given back within the run.
LOCK_OPERATIONS = ("PutObject", "DeleteObject")


@pytest.fixture
def world(local_aws: LocalAws) -> Iterator[tuple[LocalAws, dict[str, Any]]]:
    built = Scenario(local_aws).build()
    with SageMakerLifecycle(time_scale=60).installed(local_aws):
        yield local_aws, built.platform()


def clients_of(aws: LocalAws) -> Any:
    made: dict[str, Any] = {}

    def client(service: str, region: str | None = None) -> Any:
        if service not in made:
            made[service] = aws.client(service, SCIENTIST_ACCOUNT)
        return made[service]

    return client


def a_plan(platform: dict[str, Any], run_id: str, **conf: Any) -> Plan:
    return Plan.from_xcom(build_plan(demo_conf(**conf), platform, DAG_ID, run_id, triggered_by="dag_test"))


def writes(calls: list[RecordedCall]) -> list[RecordedCall]:
    return [c for c in calls if not c.operation.startswith(READ_PREFIXES)]


def run_for_real(plan: Plan, clients: Any) -> None:
    """The deploy's steps as both engines run them, after the lock is taken."""
    s3, sm = clients("s3"), clients("sagemaker")
    held = lock.acquire_waiting(s3, plan)
    assert held["lock_uri"]
    tags = resolve_tags(plan, s3)
    images = publish_images(plan, clients, tags, source_credentials=None)
    request = training.training_request(plan, tags, images)
    training.start_training(sm, request)
    described = training.wait_for_training(sm, request["TrainingJobName"], 1, 30)
    artifact = training.model_artifact(plan, training.training_outcome(described))
    model.replace_model(sm, model.model_request(plan, tags, images, artifact))
    change = endpoint.reconcile_endpoint(sm, plan, tags)
    described = (
        endpoint.wait_for_endpoint(sm, plan) if change.wait else sm.describe_endpoint(EndpointName=MODEL)
    )
    endpoint.conclude_deploy(sm, plan, described, lock.runs_in_progress(s3, plan))
    api.expose_model_api(api.ApiGatewayClient(clients("apigateway")), api.api_spec(plan, tags))
    assert lock.release_run(s3, plan)


def touched(call: RecordedCall, plan: Plan) -> tuple[str, str]:
    """The resource a write operation changes, named as the plan names it."""
    p, names = call.params, plan.names
    kinds = {
        "CreateTrainingJob": ("SageMaker training job", names.training_job),
        "CreateModel": ("SageMaker model", names.model),
        "DeleteModel": ("SageMaker model", str(p.get("ModelName"))),
        "CreateEndpointConfig": ("SageMaker endpoint config", names.endpoint_config),
        "CreateEndpoint": ("SageMaker endpoint", names.endpoint),
        "UpdateEndpoint": ("SageMaker endpoint", names.endpoint),
        "CreateRestApi": ("API Gateway REST API", names.api),
        "CreateDeployment": ("API Gateway stage", f"{names.api}/prod"),
        "CreateStage": ("API Gateway stage", f"{names.api}/prod"),
        "UpdateStage": ("API Gateway stage", f"{names.api}/prod"),
    }
    if call.operation in kinds:
        return kinds[call.operation]
    if call.operation == "AddTags":  # SageMaker: only the endpoint is tagged after its creation
        return "SageMaker endpoint", names.endpoint
    if call.operation == "TagResource":
        arn = str(p["resourceArn"])
        return (
            ("API Gateway stage", f"{names.api}/prod")
            if "/stages/" in arn
            else ("API Gateway REST API", names.api)
        )
    # the API's parts: its resource, method, integration and their responses
    return "API Gateway REST API", names.api


def planned(changes: ChangeSet) -> set[tuple[str, str]]:
    """The resources the plan says the run creates or updates; API names lose their id suffix."""
    return {(c.kind, c.name.split(" (")[0]) for c in changes.changes if c.action != "unchanged"}


def by_kind(changes: ChangeSet) -> dict[str, Change]:
    return {c.kind: c for c in changes.changes}


def test_a_plan_writes_nothing_and_a_real_run_then_does_what_it_said(
    world: tuple[LocalAws, dict[str, Any]],
) -> None:
    aws, platform = world
    clients = clients_of(aws)
    first = a_plan(platform, "manual__1", plan_only=True)

    before = aws.request_count()
    with recording_aws_calls() as calls:
        changes = plan_changes(first, clients)
    assert calls and writes(calls) == [], [c.operation for c in writes(calls)]
    # the local AWS's own log agrees: API Gateway reads are GETs, the other services' are named reads
    received = aws.requests[before:]
    assert all(
        r.method in ("GET", "HEAD") or r.target.split(".")[-1].startswith(READ_PREFIXES) for r in received
    ), [(r.method, r.path, r.target) for r in received if r.method not in ("GET", "HEAD")]
    assert {c.action for c in changes.changes} == {"create", "unchanged"}  # nothing there yet
    assert by_kind(changes)["model lock"].action == "create"
    rendered = changes.render()
    assert "Nothing was changed." in rendered and "+ create    SageMaker endpoint churn-predictor" in rendered

    # the real run (plan_only off, same run) creates exactly what the plan listed
    real = a_plan(platform, "manual__1")
    with recording_aws_calls() as calls:
        run_for_real(real, clients)
    done = {touched(c, real) for c in writes(calls) if c.operation not in LOCK_OPERATIONS}
    assert done == planned(changes) - {("model lock", changes.changes[0].name)}

    # a second run that changes the instance type: the plan names each change, old -> new
    second = a_plan(platform, "manual__2", endpoint_instance_type="ml.m5.xlarge", plan_only=True)
    with recording_aws_calls() as calls:
        changes = plan_changes(second, clients)
    assert writes(calls) == []
    found = by_kind(changes)
    endpoint_fields = {f.path: (f.old, f.new) for f in found["SageMaker endpoint"].fields}
    assert found["SageMaker endpoint"].action == "update"
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
    assert found["SageMaker training job"].action == "create"
    assert found["image"].action == "unchanged"
    stage = found["API Gateway stage"]
    assert stage.action == "update" and {f.path for f in stage.fields} >= {"deploymentId"}
    assert "ml.m5.large -> ml.m5.xlarge" in changes.render()

    real = a_plan(platform, "manual__2", endpoint_instance_type="ml.m5.xlarge")
    with recording_aws_calls() as calls:
        run_for_real(real, clients)
    done = {touched(c, real) for c in writes(calls) if c.operation not in LOCK_OPERATIONS}
    assert done == planned(changes) - {("model lock", changes.changes[0].name)}
    # once the run is done, its plan finds its SageMaker resources in place: a retry only replaces the model
    again = plan_changes(a_plan(platform, "manual__2", endpoint_instance_type="ml.m5.xlarge"), clients)
    assert {(c.kind, c.action) for c in again.changes if c.kind.startswith("SageMaker")} == {
        ("SageMaker training job", "unchanged"),
        ("SageMaker model", "update"),
        ("SageMaker endpoint config", "unchanged"),
        ("SageMaker endpoint", "unchanged"),
    }
