"""The two-hop role chain: refused hops named, sessions that refresh themselves, no secret at rest."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from sagelift.domain.plan import derive_run_key
from tests.support.local_aws import MASTER_ACCOUNT, SCIENTIST_ACCOUNT, trust_policy
from tests.support.scenario import EXECUTION_ROLE, MASTER_ROLE, demo_conf, role_arn

pytestmark = pytest.mark.e2e


def _fail_message(capfd) -> str:
    return capfd.readouterr().out


def test_first_hop_refused_names_the_hop_and_the_role(run_deploy, local_aws, capfd):
    iam = local_aws.client("iam", MASTER_ACCOUNT)
    iam.update_assume_role_policy(
        RoleName=MASTER_ROLE, PolicyDocument=trust_policy("arn:aws:iam::999999999999:root")
    )

    result = run_deploy(demo_conf())

    assert result.states["assume_role_chain"] == "failed"
    log = _fail_message(capfd)
    assert (
        "hop 1 of 2 (runner identity -> arn:aws:iam::222222222222:role/sagelift-master-pipeline): "
        "AccessDenied assuming arn:aws:iam::222222222222:role/sagelift-master-pipeline"
    ) in log
    assert local_aws.client("sagemaker", SCIENTIST_ACCOUNT).list_training_jobs()["TrainingJobSummaries"] == []


def test_second_hop_refused_names_the_hop_and_the_role(run_deploy, local_aws, capfd):
    iam = local_aws.client("iam", SCIENTIST_ACCOUNT)
    iam.update_assume_role_policy(
        RoleName=EXECUTION_ROLE, PolicyDocument=trust_policy("arn:aws:iam::999999999999:role/someone-else")
    )

    result = run_deploy(demo_conf())

    assert result.states["assume_role_chain"] == "failed"
    log = _fail_message(capfd)
    assert (
        f"hop 2 of 2 ({role_arn(MASTER_ACCOUNT, MASTER_ROLE)} -> "
        f"{role_arn(SCIENTIST_ACCOUNT, EXECUTION_ROLE)}): AccessDenied"
    ) in log


def test_chained_session_refreshes_itself_after_expiry(scenario, local_aws, monkeypatch):
    """A 15-minute chained session, the clock moved past its expiry: the next call assumes again and works."""
    from freezegun import freeze_time

    connection = scenario.connection()
    connection["extra"]["session_duration_seconds"] = 900
    monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{SCIENTIST_ACCOUNT}", json.dumps(connection))
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    from tests.support.botocore_validation import recording_aws_calls

    start = datetime.datetime.now(datetime.UTC)
    with freeze_time(start) as clock, recording_aws_calls() as calls:
        client = SageMakerHook(aws_conn_id=f"sagelift_aws_{SCIENTIST_ACCOUNT}", region_name="us-east-1").conn
        client.list_training_jobs()
        assumed_before = sum(c.operation == "AssumeRole" for c in calls)
        clock.tick(datetime.timedelta(minutes=20))  # past the 15-minute expiry, as during a long deferral
        client.list_training_jobs()
        assumed_after = sum(c.operation == "AssumeRole" for c in calls)

    assert assumed_before == 2  # runner -> master, master -> execution role
    assert assumed_after >= assumed_before + 2  # both hops renewed
    durations = {c.params["DurationSeconds"] for c in calls if c.operation == "AssumeRole"}
    assert durations == {900}


def _issued_secrets() -> list[str]:
    """Every secret the local STS handed out (secret keys and session tokens of assumed roles)."""
    from moto.sts.models import sts_backends

    secrets = []
    for account in list(sts_backends):
        for backend in sts_backends[account].values():
            for role in backend.assumed_roles:
                secrets += [role.secret_access_key, role.session_token]
    return secrets


def test_no_secret_lands_in_the_database_logs_xcom_or_rendered_fields(
    run_deploy, scenario, airflow_db, capfd
):
    result = run_deploy(demo_conf())
    assert result.state == "success", result.states
    task_output = capfd.readouterr()
    secrets = [*_issued_secrets(), scenario.runner_key[1]]
    assert len(secrets) >= 5  # the runner key, and a secret key and a token for each of the two hops

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id == result.dag_run.run_id).all()
        xcoms = [json.dumps(x.value, default=str) for x in rows]
        facts = next(x.value for x in rows if x.task_id == "assume_role_chain")
        rendered = [
            json.dumps(r.rendered_fields, default=str) for r in session.query(RenderedTaskInstanceFields)
        ]
    assert xcoms and rendered
    haystacks = {
        "xcom": "\n".join(xcoms),
        "rendered fields": "\n".join(rendered),
        "task output": task_output.out + task_output.err,
    }
    db_files = list(Path(airflow_db).glob("*.db*"))
    for path in db_files + [p for p in (Path(airflow_db) / "logs").rglob("*") if p.is_file()]:
        haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = [(where, secret[:6]) for where, text in haystacks.items() for secret in secrets if secret in text]
    assert leaks == []
    # Step 2 publishes only non-secret facts.
    facts = json.loads(facts) if isinstance(facts, str) else facts
    assert set(facts) == {
        "aws_conn_id",
        "region",
        "account_id",
        "master_role_arn",
        "execution_role_arn",
        "caller_arn",
        "session_name",
        "expiration",
    }
    # Role session names trace CloudTrail entries back to the run.
    names = {c.params["RoleSessionName"] for c in result.calls if c.operation == "AssumeRole"}
    assert f"sagelift-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}-sagemaker_deploy" in names
    assert all(len(n) <= 64 for n in names)


def test_deferred_waits_refresh_the_chain_too(scenario, local_aws, monkeypatch):
    """The triggerer's async session (what the provider's SageMaker triggers use) renews expired hops."""
    import asyncio

    from freezegun import freeze_time

    connection = scenario.connection()
    connection["extra"]["session_duration_seconds"] = 900
    monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{SCIENTIST_ACCOUNT}", json.dumps(connection))
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    from tests.support.botocore_validation import recording_aws_calls

    async def two_calls_across_expiry(clock) -> list[str]:
        hook = SageMakerHook(aws_conn_id=f"sagelift_aws_{SCIENTIST_ACCOUNT}", region_name="us-east-1")
        async with await hook.get_async_conn() as client:
            first = await client.list_training_jobs()
            clock.tick(datetime.timedelta(minutes=20))
            second = await client.list_training_jobs()
        return [first["ResponseMetadata"]["HTTPStatusCode"], second["ResponseMetadata"]["HTTPStatusCode"]]

    with freeze_time(datetime.datetime.now(datetime.UTC)) as clock, recording_aws_calls() as calls:
        statuses = asyncio.run(two_calls_across_expiry(clock))

    assert statuses == [200, 200]
    assume_calls = [c for c in calls if c.operation == "AssumeRole"]
    assert len(assume_calls) >= 4  # both hops at creation, both again after expiry
