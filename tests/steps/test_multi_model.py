"""A model on its team's shared multi-model endpoint against the local AWS (issue 20 item 1): the artifact
at its versioned key, one shared model/config/endpoint however many runs place models (two at once
converge), a re-deploy's new key with the old one pruned, and teardown that removes only one model's
artifacts while another is served, then the endpoint with the last one."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagelift.domain.lock import LockHolder, shared_endpoint_lock
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.teardown import TeardownPlan, TeardownRequest, build_teardown_plan
from sagelift.steps import lock as locks
from sagelift.steps import multi_model
from sagelift.steps.api import ApiGatewayClient, api_spec, expose_model_api
from sagelift.steps.errors import StepRetry
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_multi_model import invoke_through_api
from tests.support.scenario import DATA_BUCKET, REGION, demo_conf

SERVING = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving"
PREFIX = f"s3://{DATA_BUCKET}/mme/fraud/"
LOCKS = f"s3://{DATA_BUCKET}/locks/"
PLATFORM = {
    "region": REGION,
    "locks_s3_uri": LOCKS,
    "sagemaker": {"check_interval_seconds": 1},
    "multi_model_images": [SERVING],
    "accounts": {
        SCIENTIST_ACCOUNT: {
            "deployers": {"users": ["admin"]},
            "multi_model_endpoints": {"fraud": {"prefix": PREFIX, "image": SERVING + ":1.4"}},
        }
    },
}


def _plan(model_name: str, run_id: str) -> Plan:
    conf = demo_conf(model_name=model_name, multi_model={"endpoint": "fraud"})
    return Plan.from_xcom(build_plan(conf, PLATFORM, "sagemaker_deploy", run_id, triggered_by="admin"))


def _teardown(model_name: str) -> TeardownPlan:
    request = TeardownRequest(model_name=model_name, account_id=SCIENTIST_ACCOUNT)
    return build_teardown_plan(request, PLATFORM, "sagemaker_teardown", f"manual__{model_name}")


def _locks_left(aws: LocalAws) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix="locks/").get("Contents", [])
    return [o["Key"] for o in listed]


def _artifact(aws: LocalAws, model_name: str, body: bytes) -> str:
    s3 = aws.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=DATA_BUCKET)
    key = f"churn/output/{model_name}/output/model.tar.gz"
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    return f"s3://{DATA_BUCKET}/{key}"


def _under_prefix(aws: LocalAws) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="mme/fraud/").get("Contents", [])
    return {
        o["Key"].removeprefix("mme/fraud/"): s3.get_object(Bucket=DATA_BUCKET, Key=o["Key"])["Body"].read()
        for o in listed
    }


def _deploy(aws: LocalAws, plan: Plan, body: bytes) -> multi_model.MultiModelPlacement:
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    placement = multi_model.place_model(s3, sm, plan, _artifact(aws, plan.model_name, body))
    deploy = multi_model.ensure_shared_endpoint(sm, plan)
    if deploy.wait:
        multi_model.wait_for_shared_endpoint(sm, deploy.endpoint_name, plan.platform.sagemaker)
    multi_model.prune_versions(s3, plan, placement)
    return placement


def test_two_models_share_one_endpoint_and_a_redeploy_moves_to_a_new_key(local_aws: LocalAws) -> None:
    first = _deploy(local_aws, _plan("churn", "run-1"), b"churn v1")
    second = _deploy(local_aws, _plan("fraud-score", "run-2"), b"fraud v1")
    sm = local_aws.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["sagelift-mme-fraud"]
    model = sm.describe_model(ModelName="sagelift-mme-fraud")
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == PREFIX
    assert first.endpoint_name == second.endpoint_name == "sagelift-mme-fraud"
    assert _under_prefix(local_aws) == {first.target_model: b"churn v1", second.target_model: b"fraud v1"}

    again = _deploy(local_aws, _plan("churn", "run-3"), b"churn v2")
    assert again.target_model != first.target_model and again.target_model.startswith("churn/")
    assert _under_prefix(local_aws) == {again.target_model: b"churn v2", second.target_model: b"fraud v1"}
    tags = sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName="sagelift-mme-fraud")["EndpointArn"])
    assert tags["Tags"] == [{"Key": "sagelift:multi-model-endpoint", "Value": "fraud"}]


def test_two_runs_at_once_converge_on_one_endpoint(local_aws: LocalAws) -> None:
    plans = [_plan("churn", "run-a"), _plan("fraud-score", "run-b")]
    for plan in plans:
        _artifact(local_aws, plan.model_name, plan.model_name.encode())
    errors: list[BaseException] = []
    answers: list[Any] = []

    def deploy(plan: Plan) -> None:
        try:
            sm = local_aws.client("sagemaker")
            multi_model.ensure_shared_model(sm, plan, multi_model.shared_endpoint(plan))
            answers.append(multi_model.ensure_shared_endpoint(sm, plan))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=deploy, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    sm = local_aws.client("sagemaker")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["sagelift-mme-fraud"]
    assert {a.endpoint_name for a in answers} == {"sagelift-mme-fraud"}


def test_teardown_removes_one_model_and_the_endpoint_with_the_last(local_aws: LocalAws) -> None:
    churn = _deploy(local_aws, _plan("churn", "run-1"), b"churn v1")
    fraud = _deploy(local_aws, _plan("fraud-score", "run-2"), b"fraud v1")
    plan = _plan("churn", "run-1")
    endpoint = multi_model.shared_endpoint(plan)
    s3, sm = local_aws.client("s3"), local_aws.client("sagemaker")
    removed = multi_model.remove_model(s3, sm, _teardown("churn"), endpoint)
    assert removed.artifacts == [PREFIX + churn.target_model] and removed.others == ["fraud-score"]
    assert not removed.endpoint_deleted
    assert _under_prefix(local_aws) == {fraud.target_model: b"fraud v1"}
    assert sm.describe_endpoint(EndpointName="sagelift-mme-fraud")["EndpointStatus"] == "InService"

    last = multi_model.remove_model(s3, sm, _teardown("fraud-score"), endpoint)
    assert last.endpoint_deleted and last.others == []
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []


def _expose(aws: LocalAws, plan: Plan, placement: multi_model.MultiModelPlacement | None) -> None:
    expose_model_api(ApiGatewayClient(aws.client("apigateway")), api_spec(plan, [], placement))


def _paths(aws: LocalAws) -> set[str]:
    client = aws.client("apigateway")
    [api] = client.get_rest_apis()["items"]
    return {r["path"] for r in client.get_resources(restApiId=api["id"])["items"]}


def test_the_api_routes_the_model_to_its_current_key_and_the_other_model_keeps_serving(
    local_aws: LocalAws,
) -> None:
    churn_plan = _plan("churn", "run-1")
    churn = _deploy(local_aws, churn_plan, b"churn v1")
    fraud = _deploy(local_aws, _plan("fraud-score", "run-2"), b"fraud v1")
    _expose(local_aws, churn_plan, churn)
    route = "/models/churn/invocations"
    assert _paths(local_aws) == {"/", "/models", "/models/churn", route}
    answer = invoke_through_api(local_aws, route, b"1,2,3")
    assert answer == {"target_model": churn.target_model, "artifact": "churn v1"}

    # A re-deploy moves the route to the new key; the old key is gone; the other model still answers.
    again_plan = _plan("churn", "run-3")
    again = _deploy(local_aws, again_plan, b"churn v2")
    _expose(local_aws, again_plan, again)
    assert invoke_through_api(local_aws, route, b"1,2,3") == {
        "target_model": again.target_model,
        "artifact": "churn v2",
    }
    runtime = local_aws.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(
        EndpointName="sagelift-mme-fraud", Body=b"1", TargetModel=fraud.target_model
    )
    assert json.loads(answer["Body"].read())["artifact"] == "fraud v1"
    with pytest.raises(ClientError, match="Failed to download model data"):
        runtime.invoke_endpoint(EndpointName="sagelift-mme-fraud", Body=b"1", TargetModel=churn.target_model)

    # Back on an endpoint of its own: /models goes, /invocations comes, on the same API.
    own = Plan.from_xcom(build_plan(demo_conf(model_name="churn"), PLATFORM, "sagemaker_deploy", "run-4"))
    _expose(local_aws, own, None)
    assert _paths(local_aws) == {"/", "/invocations"}


def test_teardown_of_a_model_never_on_the_shared_endpoint_leaves_it_alone(local_aws: LocalAws) -> None:
    churn = _deploy(local_aws, _plan("churn", "run-1"), b"churn v1")
    plan = _plan("churn", "run-1")
    endpoints = plan.platform.account(SCIENTIST_ACCOUNT).multi_model_endpoints
    s3, sm = local_aws.client("s3"), local_aws.client("sagemaker")
    assert set(endpoints) == {"fraud"}
    assert multi_model.remove_from_shared_endpoints(s3, sm, _teardown("fraud-score")) == []
    assert _under_prefix(local_aws) == {churn.target_model: b"churn v1"}
    [removed] = multi_model.remove_from_shared_endpoints(s3, sm, _teardown("churn"))
    assert removed["endpoint"] == "sagelift-mme-fraud" and removed["endpoint_deleted"]
    assert sm.list_endpoints()["Endpoints"] == []


def test_a_teardown_and_another_model_s_first_deploy_at_once_leave_the_endpoint_serving_it(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last model leaves while another joins: the teardown has listed nobody else when the joining
    run places its artifact and deploys. The run's turn waits for the teardown's, then creates the shared
    model and endpoint again, so the endpoint ends serving it (without the team's lock the run adopted
    the serving endpoint, and the teardown deleted it under the run)."""
    monkeypatch.setattr(multi_model, "TEAM_POLL_SECONDS", 0.2)
    _deploy(local_aws, _plan("churn", "run-1"), b"churn v1")
    joining = _plan("fraud-score", "run-2")
    joined: dict[str, Any] = {}

    def join() -> None:
        try:
            joined["placement"] = _deploy(local_aws, joining, b"fraud v1")
        except BaseException as err:  # reported below
            joined["error"] = err

    listed = multi_model.shared_endpoint_users

    def users_then_join(s3: Any, endpoint: multi_model.SharedEndpoint) -> list[str]:
        users = listed(s3, endpoint)
        if "thread" not in joined:
            joined["thread"] = thread = threading.Thread(target=join)
            thread.start()
            thread.join(2)
            joined["during_the_teardown"] = not thread.is_alive()
        return users

    monkeypatch.setattr(multi_model, "shared_endpoint_users", users_then_join)
    s3, sm = local_aws.client("s3"), local_aws.client("sagemaker")
    endpoint = multi_model.shared_endpoint(joining)
    removal = multi_model.remove_model(s3, sm, _teardown("churn"), endpoint)
    joined["thread"].join(30)
    assert "error" not in joined, joined.get("error")
    assert removal.endpoint_deleted and removal.others == []
    assert joined["during_the_teardown"] is False  # it waited for the teardown's turn
    assert sm.describe_endpoint(EndpointName="sagelift-mme-fraud")["EndpointStatus"] == "InService"
    assert sm.describe_model(ModelName="sagelift-mme-fraud")["PrimaryContainer"]["Mode"] == "MultiModel"
    assert _under_prefix(local_aws) == {joined["placement"].target_model: b"fraud v1"}
    assert _locks_left(local_aws) == []


def test_a_deploy_finding_the_endpoint_being_deleted_waits_and_creates_it_again(local_aws: LocalAws) -> None:
    class DeletingAtFirst:
        """SageMaker's client, except that the first DescribeEndpoint finds the endpoint Deleting."""

        def __init__(self, client: Any) -> None:
            self.client, self.described = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
            self.described += 1
            if self.described == 1:
                return {"EndpointName": kwargs["EndpointName"], "EndpointStatus": "Deleting"}
            return dict(self.client.describe_endpoint(**kwargs))

    plan = _plan("churn", "run-1")
    sm = DeletingAtFirst(local_aws.client("sagemaker"))
    multi_model.place_model(local_aws.client("s3"), sm, plan, _artifact(local_aws, "churn", b"churn v1"))
    answer = multi_model.ensure_shared_endpoint(sm, plan)
    assert answer.created and answer.endpoint_name == "sagelift-mme-fraud"
    assert sm.described >= 2
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["sagelift-mme-fraud"]


def test_a_team_lock_held_too_long_retries_the_step_naming_the_holder(local_aws: LocalAws) -> None:
    plan = _plan("churn", "run-1")
    _artifact(local_aws, "churn", b"churn v1")
    endpoint = multi_model.shared_endpoint(plan)
    lock = shared_endpoint_lock(plan.platform, SCIENTIST_ACCOUNT, "fraud", endpoint.name)
    assert lock is not None and lock.uri == f"{LOCKS}{SCIENTIST_ACCOUNT}/multi-model/fraud.json"
    other = LockHolder("sagemaker_teardown", "manual__other", "0" * 8, 300)
    s3 = local_aws.client("s3")
    assert locks.try_acquire(s3, lock, other).acquired
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    turn = multi_model.team_turn(s3, plan, endpoint, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(StepRetry, match=r"sagelift-mme-fraud stayed locked by run manual__other"), turn:
        pytest.fail("the turn was taken while another run held it")
    assert now[0] >= multi_model.TEAM_WAIT_SECONDS
    assert json.loads(s3.get_object(Bucket=lock.bucket, Key=lock.key)["Body"].read())["run_id"] == (
        "manual__other"
    )


def test_a_run_adopting_an_endpoint_whose_instances_the_platform_changed_warns_and_leaves_it(
    local_aws: LocalAws, caplog: pytest.LogCaptureFixture
) -> None:
    _deploy(local_aws, _plan("churn", "run-1"), b"churn v1")
    changed = json.loads(json.dumps(PLATFORM))
    team = changed["accounts"][SCIENTIST_ACCOUNT]["multi_model_endpoints"]["fraud"]
    team.update(instance_type="ml.c5.2xlarge", instance_count=2)
    conf = demo_conf(model_name="fraud-score", multi_model={"endpoint": "fraud"})
    plan = Plan.from_xcom(build_plan(conf, changed, "sagemaker_deploy", "run-2", triggered_by="admin"))
    sm = local_aws.client("sagemaker")
    before = sm.describe_endpoint_config(EndpointConfigName="sagelift-mme-fraud")["ProductionVariants"]
    with caplog.at_level("WARNING", logger=multi_model.__name__):
        assert not multi_model.ensure_shared_endpoint(sm, plan).created
    assert (
        f"Shared endpoint sagelift-mme-fraud runs 1 x {before[0]['InstanceType']}, but the platform now says "
        "2 x ml.c5.2xlarge: a run never changes it"
    ) in caplog.text
    after = sm.describe_endpoint_config(EndpointConfigName="sagelift-mme-fraud")["ProductionVariants"]
    assert after == before
