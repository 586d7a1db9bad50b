"""sagemaker_teardown against the local AWS: after a deploy, nothing of the model is left; again is a no-op."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf

pytestmark = pytest.mark.e2e

MODEL = "churn-predictor"


@pytest.fixture(scope="module")
def teardown_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags" / "sagemaker_teardown.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("sagemaker_teardown")


def _teardown(dag, conf: dict[str, Any]):
    with recording_aws_calls() as calls:
        dag_run = dag.test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return dag_run, states, list(calls)


def _report(dag_run) -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="report", key="return_value")
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def _model_resources(aws) -> dict[str, list[str]]:
    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    apis = aws.client("apigateway", SCIENTIST_ACCOUNT).get_rest_apis()["items"]
    return {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints(NameContains=MODEL)["Endpoints"]],
        "endpoint_configs": [
            c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains=MODEL)["EndpointConfigs"]
        ],
        "models": [m["ModelName"] for m in sm.list_models(NameContains=MODEL)["Models"]],
        "apis": [a["name"] for a in apis if a["name"] == MODEL],
    }


def _conf(**overrides: Any) -> dict[str, Any]:
    return {"model_name": MODEL, "account_id": SCIENTIST_ACCOUNT, "confirm": MODEL, **overrides}


@pytest.mark.slow
def test_teardown_deletes_everything_of_the_model_then_finds_nothing(run_deploy, teardown_dag, local_aws):
    deployed = run_deploy(demo_conf())
    assert deployed.state == "success", deployed.states
    before = _model_resources(local_aws)
    assert all(before.values()), before
    ecr = local_aws.client("ecr", SCIENTIST_ACCOUNT)
    images_before = ecr.describe_images(repositoryName="churn-serving")["imageDetails"]

    dag_run, states, calls = _teardown(teardown_dag, _conf(delete_images=True))

    assert str(dag_run.state) == "success", states
    assert _model_resources(local_aws) == {"endpoints": [], "endpoint_configs": [], "models": [], "apis": []}
    report = _report(dag_run)
    assert report["endpoint"] == [MODEL]
    assert report["models"] == before["models"]
    assert report["endpoint_configs"] == before["endpoint_configs"]
    assert len(report["api"]) == 1
    # The scientist's own images in ECR were not copied by sagelift, so they stay.
    assert report["images"] == []
    assert ecr.describe_images(repositoryName="churn-serving")["imageDetails"] == images_before
    assert [(c.service, c.operation, c.errors) for c in calls if c.errors] == []

    again, states, _ = _teardown(teardown_dag, _conf())
    assert str(again.state) == "success", states
    report = _report(again)
    assert [report[k] for k in ("api", "endpoint", "endpoint_configs", "models", "images", "pvc")] == [[]] * 6


def test_a_teardown_waits_for_a_deploy_of_the_model_in_progress(
    run_deploy, scenario, teardown_dag, local_aws, monkeypatch, capfd
):
    """A teardown takes the model's lock too: it never deletes under a deploy that holds it."""
    import json

    from sagelift.domain.lock import plan_lock, run_holder
    from sagelift.domain.plan import Plan
    from sagelift.steps import lock as locks
    from tests.support.task_context import step_plan

    assert run_deploy(demo_conf()).state == "success"
    before = _model_resources(local_aws)
    scenario.platform_overrides["locks"] = {"check_interval_seconds": 1, "wait_budget_seconds": 3}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))
    deploying = Plan.from_xcom(step_plan(None, scenario.platform(), run_id="manual__deploying"))
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    assert locks.try_acquire(s3, plan_lock(deploying), run_holder(deploying)).acquired

    dag_run, states, _ = _teardown(
        teardown_dag, {"model_name": MODEL, "account_id": SCIENTIST_ACCOUNT, "confirm": MODEL}
    )

    assert states["acquire_model_lock"] == "failed"
    assert states["delete_sagemaker_resources"] == "upstream_failed"
    assert "is locked by run manual__deploying of sagemaker_deploy" in capfd.readouterr().out
    assert _model_resources(local_aws) == before  # nothing deleted under the deploy
    locks.release(s3, plan_lock(deploying), run_holder(deploying).run_key)
    dag_run, states, _ = _teardown(
        teardown_dag, {"model_name": MODEL, "account_id": SCIENTIST_ACCOUNT, "confirm": MODEL}
    )
    assert str(dag_run.state) == "success", states
    assert _model_resources(local_aws) == {"endpoints": [], "endpoint_configs": [], "models": [], "apis": []}


def test_wrong_confirm_is_refused_before_any_aws_call(scenario, teardown_dag, local_aws):
    requests_before = local_aws.request_count()

    dag_run, states, calls = _teardown(teardown_dag, _conf(confirm="churn"))

    assert str(dag_run.state) == "failed"
    assert states["validate"] == "failed"
    assert states["delete_sagemaker_resources"] != "success"
    assert calls == []
    assert local_aws.request_count() == requests_before


def test_the_request_rules():
    from sagelift.domain.errors import SageliftValidationError
    from sagelift.domain.ownership import is_per_run_name
    from sagelift.domain.teardown import parse_teardown_conf

    with pytest.raises(SageliftValidationError) as err:
        parse_teardown_conf({"model_name": MODEL, "account_id": "12", "confirm": "", "delete_pvc": "yes"})
    assert err.value.fields == ["account_id", "confirm", "delete_pvc"]
    assert is_per_run_name(f"{MODEL}-0a1b2c3d", MODEL)
    assert not is_per_run_name(f"{MODEL}-v2-0a1b2c3d", MODEL)


@pytest.mark.slow
def test_delete_images_deletes_only_this_models_copies_that_no_other_model_holds(
    run_deploy, scenario, teardown_dag, local_aws, monkeypatch, tmp_path
):
    """Two models copy the same serving image, each its own trainer; the scientist pushed an image of
    their own under the copy prefix. Tearing down one model deletes its trainer only; the shared image
    goes with the last model that recorded it; the scientist's image stays."""
    import json

    from sagelift.domain.images import derive_copy_record_tag
    from tests.support.oci_images import build_single_platform_image
    from tests.support.oci_registry import RegistryPair
    from tests.support.scenario import ecr_registry_password

    pair = RegistryPair(tmp_path / "registries", ecr_password=ecr_registry_password())
    try:
        built = {
            name: build_single_platform_image(tmp_path / name, "1.0", [2048, 1 << 16], seed=seed)
            for name, seed in (("churn-trainer", 51), ("fraud-trainer", 52), ("server", 53))
        }
        refs = {name: pair.push(image.reference, f"team/{name}", "1.0") for name, image in built.items()}
        scenario.use_registries(pair)
        monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))
        for model, trainer in ((MODEL, "churn-trainer"), ("fraud-scorer", "fraud-trainer")):
            deployed = run_deploy(
                demo_conf(
                    model_name=model, training_docker_image=refs[trainer], model_docker_image=refs["server"]
                )
            )
            assert deployed.state == "success", deployed.states
    finally:
        pair.stop()
    ecr = local_aws.client("ecr", SCIENTIST_ACCOUNT)
    scientists_own = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "e" * 64,
            "size": 2,
        },
        "layers": [],
    }
    own = ecr.put_image(
        repositoryName="sagelift/team/server", imageTag="hotfix", imageManifest=json.dumps(scientists_own)
    )["image"]["imageId"]["imageDigest"]

    def tags(repository: str) -> dict[str, list[str]]:
        return {
            d["imageDigest"]: sorted(d.get("imageTags", []))
            for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
        }

    server, churn_trainer = built["server"].digest, built["churn-trainer"].digest
    assert tags("sagelift/team/server")[server] == sorted(
        [derive_copy_record_tag(MODEL, server), derive_copy_record_tag("fraud-scorer", server)]
    )
    host = f"{SCIENTIST_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"

    dag_run, states, calls = _teardown(teardown_dag, _conf(delete_images=True))

    assert str(dag_run.state) == "success", states
    report = _report(dag_run)
    assert report["images"] == [f"{host}/sagelift/team/churn-trainer@{churn_trainer}"]
    assert report["images_kept"] == [f"{host}/sagelift/team/server@{server}"]
    # churn's run created churn-trainer (copy_images tags it with the owner tag): left empty, it goes
    assert report["repositories"] == ["sagelift/team/churn-trainer"]
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=["sagelift/team/churn-trainer"])
    assert tags("sagelift/team/server") == {
        server: [derive_copy_record_tag("fraud-scorer", server)],
        own: ["hotfix"],
    }
    assert churn_trainer not in json.dumps(tags("sagelift/team/fraud-trainer"))
    assert [(c.service, c.operation, c.errors) for c in calls if c.errors] == []

    fraud = {"model_name": "fraud-scorer", "account_id": SCIENTIST_ACCOUNT, "confirm": "fraud-scorer"}
    dag_run, states, _ = _teardown(teardown_dag, {**fraud, "delete_images": True})
    assert str(dag_run.state) == "success", states
    assert sorted(_report(dag_run)["images"]) == sorted(
        [
            f"{host}/sagelift/team/server@{server}",
            f"{host}/sagelift/team/fraud-trainer@{built['fraud-trainer'].digest}",
        ]
    )
    assert tags("sagelift/team/server") == {own: ["hotfix"]}
    # fraud's own repository goes; server, created by churn's run and holding the scientist's image, stays
    assert _report(dag_run)["repositories"] == ["sagelift/team/fraud-trainer"]
