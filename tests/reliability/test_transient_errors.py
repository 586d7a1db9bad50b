"""Transient errors are retried and refusals are final (sagelift.steps.errors), seen from whole runs.

The case from the field: STS answering 500 for longer than botocore's own retries last. assume_role_chain
must fail that try as transient (retried), not blame the configuration, and succeed on the next try;
a hop AWS refuses must fail on the first try, naming the hop, with no retry. And the DAG's task-level
retry budget must cover such an outage whatever botocore's jitter.
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from sagelift.steps.role_chain import DEFAULT_RETRIES
from tests.support.local_aws import MASTER_ACCOUNT, SCIENTIST_ACCOUNT, trust_policy
from tests.support.scenario import MASTER_ROLE, demo_conf

pytestmark = pytest.mark.e2e

BEYOND_BOTOCORE = 3  # STS 500s past the attempts botocore makes in one call


@pytest.fixture
def fast_retries(deploy_dag, monkeypatch):
    """botocore's backoff a tenth and assume_role_chain's retry delay 1 s: what is retried, not how long."""
    from botocore.retries.standard import ExponentialBackoff

    original = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: original(self, context) / 10
    )
    monkeypatch.setattr(
        deploy_dag.task_dict["assume_role_chain"], "retry_delay", datetime.timedelta(seconds=1)
    )


def _tries(result) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in result.dag_run.get_task_instances()}


def test_sts_500s_beyond_botocores_retries_fail_one_try_and_the_next_succeeds(
    run_deploy, lifecycle, fast_retries, capfd
):
    attempts = DEFAULT_RETRIES["max_attempts"] + 1  # botocore's max_attempts counts the retries
    lifecycle.fault("sts:AssumeRole", "internal", count=attempts + BEYOND_BOTOCORE)

    result = run_deploy(demo_conf())

    assert result.state == "success", result.states
    assert _tries(result)["assume_role_chain"] == 2
    assert lifecycle.injected.count(("sts:AssumeRole", "internal")) == attempts + BEYOND_BOTOCORE
    output = capfd.readouterr().out
    assert (
        "STS did not answer (InternalFailure, HTTP 500) after botocore's retries; the step is retried"
        in output
    )
    assert "fix the account's connection" not in output


def test_a_refused_hop_fails_on_the_first_try_naming_the_hop(run_deploy, local_aws, capfd):
    local_aws.client("iam", MASTER_ACCOUNT).update_assume_role_policy(
        RoleName=MASTER_ROLE, PolicyDocument=trust_policy("arn:aws:iam::999999999999:root")
    )

    result = run_deploy(demo_conf())

    assert result.states["assume_role_chain"] == "failed"
    assert _tries(result)["assume_role_chain"] == 1  # final: no retry
    assert (
        f"hop 1 of 2 (runner identity -> arn:aws:iam::{MASTER_ACCOUNT}:role/{MASTER_ROLE}): "
        f"AccessDenied assuming arn:aws:iam::{MASTER_ACCOUNT}:role/{MASTER_ROLE}"
    ) in capfd.readouterr().out
    assert local_aws.client("sagemaker", SCIENTIST_ACCOUNT).list_training_jobs()["TrainingJobSummaries"] == []


def test_every_aws_task_retries_across_at_least_90_seconds(deploy_dag):
    """Airflow's own retry schedule (next_retry_datetime, on the DAG as the scheduler reads it): the last
    try of every task that calls AWS starts at least 90 s after the first ended, so an outage shorter than
    that is absorbed even when botocore's jittered attempts of each try all come quickly."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.serialization.serialized_objects import DagSerialization

    scheduled = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(deploy_dag))
    ended = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    windows = {}
    for task in scheduled.tasks:
        if task.task_id in ("validate", "summarize_run", "release_model_lock"):
            continue  # no AWS call (release_model_lock is a teardown task that gives the lock back)
        window = 0.0
        for try_number in range(1, task.retries + 1):
            ti = SimpleNamespace(
                retry_delay_override=None,
                task=task,
                try_number=try_number,
                dag_id=scheduled.dag_id,
                task_id=task.task_id,
                logical_date=ended,
                end_date=ended,
                log=None,
            )
            window += (TaskInstance.next_retry_datetime(ti) - ended).total_seconds()
        windows[task.task_id] = window
    assert "assume_role_chain" in windows
    assert {task_id: w for task_id, w in windows.items() if w < 90} == {}


# --- ensure_pvc: the in-pod program's refusals are final, its other failures retried ------------------
def test_ensure_pvc_refusals_are_final_and_an_unbound_claim_is_retried(monkeypatch):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from tests.operators.test_kubernetes import NS, RBAC, make_context, operator
    from tests.support.k8s_api import KubernetesApiDouble, can_run_pods

    if not can_run_pods():
        pytest.skip("the double's kubelet needs root and unshare --mount")
    with KubernetesApiDouble(namespaces=("default", NS), enforce_rbac=True) as k8s:
        k8s.apply_manifest(RBAC)
        for key, value in k8s.airflow_connection_env("sagelift_k8s_test").items():
            monkeypatch.setenv(key, value)

        k8s.create_claim(NS, "sagelift-pipeline", "10Mi")
        mismatch = make_context(pvc_size="50Mi")
        with pytest.raises(AirflowFailException, match="10Mi"):
            operator(mismatch).execute(mismatch)

        unbound = make_context(pvc_name="slow-claim", pvc_storage_class="local-wait")
        unbound["plan"]["platform"]["kubernetes"]["wait_for_bound_seconds"] = 1
        with pytest.raises(AirflowException) as retried:
            operator(unbound).execute(unbound)
        assert not isinstance(retried.value, AirflowFailException)
        assert "not Bound" in str(retried.value)

        k8s.deny("create", "persistentvolumeclaims")
        denied = make_context(pvc_name="another-claim")
        with pytest.raises(AirflowFailException, match="cannot create persistentvolumeclaims"):
            operator(denied).execute(denied)


# --- a later step assumes the chain again in its own process: the same classification ---------------
@pytest.fixture
def fast_backoff(monkeypatch):
    from botocore.retries.standard import ExponentialBackoff

    original = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: original(self, context) / 10
    )


def test_a_later_step_whose_chain_sts_cannot_answer_is_retried_and_a_refused_hop_is_final(
    scenario, local_aws, lifecycle, fast_backoff
):
    """resolve_tags in a fresh process (no chain cached yet): making its S3 client performs the chain."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from sagelift.operators.tags import S3ResolveTagsOperator
    from tests.support.task_context import FakeTaskInstance, step_plan, step_session

    def resolve_tags() -> None:
        plan = step_plan(platform=scenario.platform())
        session = step_session(f"sagelift_aws_{SCIENTIST_ACCOUNT}")
        operator = S3ResolveTagsOperator(task_id="resolve_tags", plan=plan, session=session)
        operator.execute({"ti": FakeTaskInstance({})})

    lifecycle.fault("sts:AssumeRole", "internal", count=DEFAULT_RETRIES["max_attempts"] + 1)
    with pytest.raises(AirflowException, match="STS did not answer") as outage:
        resolve_tags()
    assert not isinstance(outage.value, AirflowFailException)

    # The failed hop left nothing cached: the next try assumes it again, and now AWS refuses it.
    local_aws.client("iam", MASTER_ACCOUNT).update_assume_role_policy(
        RoleName=MASTER_ROLE, PolicyDocument=trust_policy("arn:aws:iam::999999999999:root")
    )
    with pytest.raises(AirflowFailException, match=r"hop 1 of 2 .* AccessDenied"):
        resolve_tags()
