"""Steps 1 and 4 seen end to end: the PVC through the Kubernetes double, and images copied between real
registries into the account's ECR. (Step 8's stable API per model: tests/e2e/test_deploy.py.)"""

from __future__ import annotations

import pytest

from sagelift.domain.plan import derive_run_key
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf, ecr_registry_password

pytestmark = pytest.mark.e2e


def test_pvc_is_ensured_by_a_real_pod_whose_output_reaches_the_task_log(run_deploy, kubernetes_api, capfd):
    if kubernetes_api is None:
        pytest.skip("the Kubernetes double's kubelet needs root and unshare to run pods")
    # The double lives for the whole session: a claim name of this test's own makes "missing" certain.
    result = run_deploy(demo_conf(pvc_name="steps-test-scratch", pvc_size="64Mi"))
    captured = capfd.readouterr()
    log = captured.out + captured.err

    assert result.states["ensure_pvc"] == "success", result.states
    claims = {c["metadata"]["name"]: c for c in kubernetes_api.pvcs("sagelift")}
    claim = claims["steps-test-scratch"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "64Mi"
    assert claim["status"]["phase"] == "Bound"
    assert "ensure_pvc: created claim steps-test-scratch in namespace sagelift" in log
    assert [p["metadata"]["name"] for p in kubernetes_api.created("pods")]  # a pod did run
    assert kubernetes_api.pods("sagelift") == []  # and was deleted afterwards


def test_images_from_another_registry_are_copied_and_used_by_digest(
    run_deploy, scenario, local_aws, monkeypatch, tmp_path
):
    import json

    from tests.support.oci_images import build_single_platform_image
    from tests.support.oci_registry import RegistryPair

    pair = RegistryPair(tmp_path / "registries", ecr_password=ecr_registry_password())
    try:
        trainer = build_single_platform_image(tmp_path / "trainer", "2.0", [4096, 1 << 20], seed=7)
        server = build_single_platform_image(tmp_path / "server", "2.0", [4096, 1 << 19], seed=8)
        trainer_ref = pair.push(trainer.reference, "team/churn-trainer", "2.0")
        server_ref = pair.push(server.reference, "team/churn-server", "2.0")
        scenario.use_registries(pair)
        monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))

        result = run_deploy(demo_conf(training_docker_image=trainer_ref, model_docker_image=server_ref))
    finally:
        pair.stop()

    assert result.state == "success", result.states
    assert result.states["copy_images"] == "success"
    ecr_host = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    name = f"churn-predictor-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}"
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    training_image = sm.describe_training_job(TrainingJobName=name)["AlgorithmSpecification"]["TrainingImage"]
    assert training_image == f"{ecr_host}/sagelift/team/churn-trainer@{trainer.digest}"
    assert (
        sm.describe_model_package(
            ModelPackageName=sm.describe_model(ModelName=name)["PrimaryContainer"]["ModelPackageName"]
        )["InferenceSpecification"]["Containers"][0]["Image"]
        == f"{ecr_host}/sagelift/team/churn-server@{server.digest}"
    )
    repositories = local_aws.client("ecr", SCIENTIST_ACCOUNT).describe_repositories()["repositories"]
    assert {"sagelift/team/churn-trainer", "sagelift/team/churn-server"} <= {
        r["repositoryName"] for r in repositories
    }
