"""Staged promotion across two scientist accounts (issue 17 item 9).

The whole promotion runs against the local AWS with both accounts onboarded: a staging run trains and
deploys in 333333333333 (its image copied from a source registry into that account's ECR), its version is
registered there, and a promoted run deploys that version into 444444444444 through that account's own
role chain, its image copied from staging's ECR into production's by digest. Each account's ECR is a real
registry protected by the password the local ECR API hands out for that account, so the copy succeeds
only with each chain's own ECR credentials.

A test seam: the platform's ``ecr.registry_endpoint`` template cannot send two accounts to two loopback
registries, so the promotion step's endpoint lookup is pointed at them by account (the ECR API calls,
the credentials and the copy are the product's own).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagelift.config import load_retrain_models, registered_retrain
from sagelift.dags.retrain import build_retrain_dag
from sagelift.domain.promotion import PromoteFrom, Stage, stage_conf
from tests.support.local_aws import MASTER_ACCOUNT, REGION, SCIENTIST_ACCOUNT, trust_policy
from tests.support.scenario import (
    DAG_TEST_USER,
    EXECUTION_ROLE,
    MASTER_ROLE,
    SCIENTIST_ROLES,
    demo_conf,
    ecr_registry_password,
    role_arn,
)
from tests.support.task_context import FakeTaskInstance

STAGING, PRODUCTION = SCIENTIST_ACCOUNT, "444444444444"
STAGES = [{"name": "staging", "account_id": STAGING}, {"name": "production", "account_id": PRODUCTION}]


# --- the retrain DAG of a staged registration -----------------------------------------------------------
class RecordingTaskInstance(FakeTaskInstance):
    def xcom_pull(self, task_ids: str, key: str = "return_value", **kwargs: Any) -> Any:
        self.pulled = {"task_ids": task_ids, **kwargs}
        return super().xcom_pull(task_ids, key)


def _staged_registration(folder: Path) -> dict[str, Any]:
    # a value that Jinja would render: the promoted run must receive it as written (conf is data)
    conf = demo_conf(quality_gate=[], endpoint={"instance_count": 1}, environment={"NOTE": "{{ 7*191 }}"})
    registration = {"owner": "priya.shah", "schedule": "0 3 * * 1", "conf": conf, "stages": STAGES}
    (folder / f"{conf['model_name']}.json").write_text(json.dumps(registration))
    return registration


def _promote(dag: Any, registered: Any) -> tuple[Any, RecordingTaskInstance]:
    from airflow.sdk.exceptions import DagRunTriggerException

    task = dag.get_task("promote_to_production")
    run_id = "scheduled__2026-03-02T03:00:00+00:00"
    ti = RecordingTaskInstance({"register_model": registered}, dag_id=dag.dag_id, run_id=run_id)
    task.render_template_fields({"run_id": run_id, "ti": ti, "dag": dag})
    with pytest.raises(DagRunTriggerException) as triggered:
        task.execute({"run_id": run_id, "ti": ti, "task_instance": ti, "dag": dag})
    return triggered.value, ti


def test_a_staged_retrain_deploys_to_staging_then_promotes_the_version_it_registered(tmp_path):
    registration = _staged_registration(tmp_path)
    (model,) = load_retrain_models(tmp_path)
    dag = build_retrain_dag(model)
    assert [t.task_id for t in dag.topological_sort()] == ["deploy_to_staging", "promote_to_production"]
    first = dag.get_task("deploy_to_staging")
    assert first.conf == registration["conf"]

    triggered, ti = _promote(dag, {"version": 4, "status": "Approved"})

    prefix = f"retrain__{dag.dag_id}__"
    assert ti.pulled == {
        "task_ids": "register_model",
        "dag_id": "sagemaker_deploy",
        "run_id": f"{prefix}staging__scheduled__2026-03-02T03:00:00+00:00",
    }
    assert triggered.dag_run_id == f"{prefix}production__scheduled__2026-03-02T03:00:00+00:00"
    assert triggered.conf == stage_conf(
        registration["conf"], Stage("production", PRODUCTION), PromoteFrom(STAGING, 4)
    )
    assert triggered.conf["account_id"] == PRODUCTION and "training_docker_image" not in triggered.conf
    assert triggered.conf["environment"] == {"NOTE": "{{ 7*191 }}"}  # rendered fields left it alone
    # validate recognises both runs as the registration's (the owner acts in both), and nothing else
    found = registered_retrain("operator_triggered", triggered.dag_run_id, triggered.conf, tmp_path)
    assert found is not None and found.owner == "priya.shah"
    staging_run = f"{prefix}staging__scheduled__2026-03-02T03:00:00+00:00"
    assert registered_retrain("operator_triggered", staging_run, registration["conf"], tmp_path) == found
    moved = {**triggered.conf, "promote_from": {"account_id": "555555555555", "version": 4}}
    assert registered_retrain("operator_triggered", triggered.dag_run_id, moved, tmp_path) is None
    assert registered_retrain("manual", triggered.dag_run_id, triggered.conf, tmp_path) is None


@pytest.mark.parametrize(
    ("registered", "needle"),
    [
        (None, "registered no model package version"),
        ({"skipped": True, "reason": "train-only"}, "registered no model package version"),
        ({"version": 4, "status": "Rejected"}, "is Rejected; not promoted"),
    ],
)
def test_nothing_is_promoted_when_the_previous_stage_registered_no_usable_version(
    tmp_path, registered, needle
):
    from airflow.sdk.exceptions import AirflowFailException

    _staged_registration(tmp_path)
    (model,) = load_retrain_models(tmp_path)
    with pytest.raises(AirflowFailException) as failed:
        _promote(build_retrain_dag(model), registered)
    assert needle in str(failed.value)


# --- the whole promotion against the local AWS ----------------------------------------------------------
def _onboard_production(scenario: Any, local_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second scientist account, onboarded as the first: roles, lock bucket, connection, platform."""
    iam = local_aws.client("iam", PRODUCTION)
    for name in SCIENTIST_ROLES:
        principal = (
            role_arn(MASTER_ACCOUNT, MASTER_ROLE)
            if name == EXECUTION_ROLE
            else f"arn:aws:iam::{PRODUCTION}:root"
        )
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(principal))
    local_aws.client("s3", PRODUCTION).create_bucket(Bucket=f"sagelift-state-{PRODUCTION}")
    monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{PRODUCTION}", json.dumps(scenario.connection(PRODUCTION)))


def _platform(scenario: Any, registries: Any, deployers: dict[str, list[str]]) -> str:
    platform = scenario.platform()
    platform["accounts"] = {account: {"deployers": {"users": users}} for account, users in deployers.items()}
    platform["ecr"] = registries.platform_ecr_settings()
    return json.dumps(platform)


def _xcom(dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key="return_value")
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def _served(local_aws: Any, account: str, endpoint: str) -> dict[str, str]:
    sm = local_aws.client("sagemaker", account)
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    container = model.get("PrimaryContainer") or model["Containers"][0]
    if "ModelPackageName" in container:  # a model built from its registered version
        package = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
        container = package["InferenceSpecification"]["Containers"][0]
    return {"image": container["Image"], "artifact": container["ModelDataUrl"]}


@pytest.mark.slow
def test_a_version_is_promoted_from_staging_to_production_with_the_same_digest_and_artifact(
    run_deploy, scenario, local_aws, monkeypatch, tmp_path
):
    from sagelift.steps import promotion
    from tests.support.oci_images import build_single_platform_image
    from tests.support.oci_registry import OciRegistry, RegistryPair

    _onboard_production(scenario, local_aws, monkeypatch)
    pair = RegistryPair(tmp_path / "registries", ecr_password=ecr_registry_password(STAGING))
    production_ecr = OciRegistry(
        tmp_path / "registries" / "ecr-production", pair.ca, "AWS", ecr_registry_password(PRODUCTION)
    ).start()
    hosts = {STAGING: pair.ecr.host, PRODUCTION: production_ecr.host}
    monkeypatch.setattr(
        promotion, "render_registry_endpoint", lambda template, account, region: hosts[account]
    )
    both = [DAG_TEST_USER]
    monkeypatch.setenv(
        "AIRFLOW_VAR_SAGELIFT_PLATFORM", _platform(scenario, pair, {STAGING: both, PRODUCTION: both})
    )
    try:
        server = build_single_platform_image(tmp_path / "server", "2.0", [4096, 1 << 18], seed=11)
        server_ref = pair.push(server.reference, "team/churn-server", "2.0")

        staging = run_deploy(demo_conf(model_docker_image=server_ref))
        assert staging.state == "success", staging.states
        registered = _xcom(staging.dag_run, "register_model")

        conf = stage_conf(
            demo_conf(), Stage("production", PRODUCTION), PromoteFrom(STAGING, registered["version"])
        )
        production_ecr.mark()
        production = run_deploy(conf)

    finally:
        production_ecr.stop()
        pair.stop()

    assert production.state == "success", production.states
    assert production.states["train_model"] == "skipped"
    summary = _xcom(production.dag_run, "summarize_run")
    assert summary["promoted_from"]["model_package_arn"] == registered["model_package_arn"]
    assert summary["train_only"] is False
    staged, promoted = (
        _served(local_aws, STAGING, "churn-predictor"),
        _served(local_aws, PRODUCTION, "churn-predictor"),
    )
    repository = "sagelift/team/churn-server"
    assert staged["image"] == f"{STAGING}.dkr.ecr.{REGION}.amazonaws.com/{repository}@{server.digest}"
    assert promoted["image"] == f"{PRODUCTION}.dkr.ecr.{REGION}.amazonaws.com/{repository}@{server.digest}"
    # the layers really moved into production's registry, and its ECR records the copy for the model
    # (the registry holds the promotion's tag; the ECR API, which shares no state with it, the copy record)
    assert production_ecr.blob_uploads()
    tag = f"promoted-{STAGING}-v{registered['version']}"
    assert any(
        r.method == "PUT" and r.path == f"/v2/{repository}/manifests/{tag}" and r.status == 201
        for r in production_ecr.requests()
    )
    images = local_aws.client("ecr", PRODUCTION).describe_images(repositoryName=repository)["imageDetails"]
    assert {d["imageDigest"] for d in images} == {server.digest}
    assert images[0]["imageTags"] == [f"sagelift.churn-predictor.{server.digest[7:39]}"]
    copied = _xcom(production.dag_run, "copy_images")["model_docker_image"]
    assert copied["promote_from"]["model_package_arn"] == registered["model_package_arn"]
    # the version exists only in staging's registry (moto keeps each account's state): reading it there
    # took staging's own chain; every request body was valid for botocore
    described = [
        c.params.get("ModelPackageName") for c in production.calls if c.operation == "DescribeModelPackage"
    ]
    assert registered["model_package_arn"] in described
    assert [c.errors for c in production.calls if c.errors] == []

    # the same artifact: staging's trained model.tar.gz, registered and deployed in production as it is
    assert promoted["artifact"] == staged["artifact"] == registered["model_data_url"]
    # production's own version of the model names the staging version it copies
    version = _xcom(production.dag_run, "register_model")
    described = local_aws.client("sagemaker", PRODUCTION).describe_model_package(
        ModelPackageName=version["model_package_arn"]
    )
    assert (
        described["CustomerMetadataProperties"]["sagelift:promoted_from"] == registered["model_package_arn"]
    )
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == promoted["image"]


def test_validate_refuses_a_promotion_by_a_user_who_is_not_a_deployer_in_the_source_account(
    scenario, local_aws, monkeypatch
):
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from sagelift.operators.validate import ValidateRunOperator

    _onboard_production(scenario, local_aws, monkeypatch)
    platform = {
        **scenario.platform(),
        "accounts": {
            STAGING: {"deployers": {"users": ["priya"]}},
            PRODUCTION: {"deployers": {"users": [DAG_TEST_USER]}},
        },
    }
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    conf = stage_conf(demo_conf(), Stage("production", PRODUCTION), PromoteFrom(STAGING, 1))
    dag_run = SimpleNamespace(
        conf=conf,
        dag_id="sagemaker_deploy",
        run_id="manual__promote",
        run_type="manual",
        triggering_user_name=DAG_TEST_USER,
    )
    before = local_aws.request_count()
    with pytest.raises(AirflowFailException) as refused:
        ValidateRunOperator(task_id="validate").execute({"dag_run": dag_run})
    first_line = str(refused.value).splitlines()[0]
    assert (
        f"promote_from.account_id: user '{DAG_TEST_USER}' may not deploy into account {STAGING}" in first_line
    )
    assert len(first_line) < 200
    assert local_aws.request_count() == before  # refused before any AWS call


@pytest.mark.slow
def test_the_staged_retrain_dag_promotes_the_version_its_staging_run_registered(tmp_path, airflow_db):
    """The retrain DAG runs for real (dag.test): its first task starts the staging run, the second reads that
    run's register_model XCom through Airflow (another DAG's run) and starts the production run with the
    promotion conf. (dag.test cannot run the triggered runs: a stand-in for them records what register_model
    returns and marks each finished, so the waits end.)"""
    import threading

    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    registration = _staged_registration(tmp_path)
    (model,) = load_retrain_models(tmp_path)
    dag = build_retrain_dag(model)
    started: dict[str, Any] = {}
    done = threading.Event()

    def stand_in_for_the_deploy_runs() -> None:
        while not done.wait(0.2):
            with create_session() as session:
                for run in session.query(DagRun).filter(DagRun.dag_id == "sagemaker_deploy"):
                    if run.run_id in started:
                        continue
                    started[run.run_id] = run.conf
                    if "promote_from" not in run.conf:  # staging: it registered version 5
                        XComModel.set(
                            "return_value",
                            {"version": 5, "status": "Approved", "model_package_group": "churn-predictor"},
                            dag_id="sagemaker_deploy",
                            task_id="register_model",
                            run_id=run.run_id,
                            serialize=False,  # stored as the execution API stores a task's return value
                            session=session,
                        )
                    run.state = "success"
                if len(started) == 2:
                    return

    watcher = threading.Thread(target=stand_in_for_the_deploy_runs, daemon=True)
    watcher.start()
    try:
        retrain_run = dag.test()
    finally:
        done.set()
        watcher.join(10)

    assert str(retrain_run.state) == "success"
    prefix = f"retrain__{dag.dag_id}__"
    (staging_id,) = [r for r in started if r.startswith(prefix + "staging__")]
    (production_id,) = [r for r in started if r.startswith(prefix + "production__")]
    assert started[staging_id] == registration["conf"]
    assert started[production_id] == stage_conf(
        registration["conf"], Stage("production", PRODUCTION), PromoteFrom(STAGING, 5)
    )


def test_a_source_account_without_its_connection_is_refused_naming_it(monkeypatch):
    """The provider would fall back to the worker's own identity: copy_images refuses instead."""
    from airflow.sdk.exceptions import AirflowFailException

    from sagelift.domain.params import default_conf
    from sagelift.domain.plan import SessionFacts, build_plan
    from sagelift.operators.ecr import EcrCopyImagesOperator

    platform = {
        "region": REGION,
        "accounts": {
            STAGING: {"deployers": {"users": ["priya"]}},
            PRODUCTION: {"deployers": {"users": ["priya"]}},
        },
    }
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    monkeypatch.delenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{STAGING}", raising=False)
    conf = stage_conf(demo_conf(), Stage("production", PRODUCTION), PromoteFrom(STAGING, 1))
    plan = build_plan({**default_conf(), **conf}, platform, "sagemaker_deploy", "r1", triggered_by="priya")
    session = SessionFacts(
        region=REGION,
        account_id=PRODUCTION,
        execution_role_arn=role_arn(PRODUCTION, EXECUTION_ROLE),
        caller_arn="arn:aws:sts::444444444444:assumed-role/sagelift-pipeline-execution/s",
        session_name="s",
        aws_conn_id=f"sagelift_aws_{PRODUCTION}",
    ).to_xcom()
    task = EcrCopyImagesOperator(task_id="copy_images", plan=plan, session=session, tags=[])
    with pytest.raises(AirflowFailException) as refused:
        task.execute({"ti": FakeTaskInstance({})})
    assert f"promote_from.account_id: account {STAGING} is onboarded but its AWS connection" in str(
        refused.value
    )
    assert f"'sagelift_aws_{STAGING}' does not exist" in str(refused.value)
