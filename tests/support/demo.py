"""`make demo`: run sagemaker_deploy once against the local stand-ins and print what it created.

It starts what the end-to-end tests start (tests/e2e/conftest.py, tests/e2e/test_steps.py), through
the same builders in tests/support/scenario.py:

- the local AWS (moto server on 127.0.0.1) with the three-account world of the tests;
- the Kubernetes API double, onboarded with plugins/sagelift/assets/k8s/rbac.yaml, so step 1's pod really runs;
- two OCI registries: a team's *source* registry and the scientist account's ECR registry.

A training and a serving image (small OCI images written on the spot) are pushed to the source registry
under the repositories and tags the conf names, and the conf's two image parameters are pointed at them,
so step 4 copies both into the account's ECR. A private Airflow home (.airflow/demo) is pointed at the
stand-ins through the same Variable and connections an ML engineer would create, the DAG runs once with
the conf (dag.test: the real operators, in one process), and the demo prints every task's state, the run
summary, the copied images' digests as the account's registry serves them, the resources found in the
scientist account, and its own wall time. Exit status 0 when the run succeeded.

tests/ops/test_demo.py runs it and checks that output.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parents[2]
IMAGE_PARAMS = ("training_docker_image", "model_docker_image")


def _prepare_airflow_home() -> Path:
    from cryptography.fernet import Fernet

    given = os.environ.get("SAGELIFT_DEMO_HOME")  # a new directory of the caller's (tests/ops/test_demo.py)
    home = Path(given) if given else ROOT / ".airflow" / "demo"
    if not given:
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Airflow encrypts what it stores with this key (a deferred task's trigger arguments among
            # them); without one it warns, at the first deferral, that values are stored in clear.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # summarize_run records the endpoint as an Asset through an AssetAlias. The first event for
            # an asset no DAG declares makes Airflow warn twice ("AssetModel ... not found", then
            # "Emitting event for inactive AssetModel") while it creates the asset, by design
            # (apache/airflow#48565); every demo starts from an empty database, so it would always warn.
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow.assets.manager=ERROR",
            "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.session_factory.RoleChainSessionFactory",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    for path in (str(ROOT / "plugins"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return home


def _ignore_known_library_deprecations() -> None:
    """Two deprecation notices that come from Airflow's own dependencies, not from sagelift, and that
    every Airflow 3.3 process with these versions prints. Each is matched by its exact message and
    origin, so any other warning still shows (and fails tests/ops/test_demo.py).

    - pathspec 1.x deprecates ``GitWildMatchPattern``, which Airflow's file discovery still uses to read
      plugins/.airflowignore (glob syntax, Airflow's default).
    - Starlette deprecates plain httpx for its TestClient, which svcs imports unconditionally when
      Airflow's in-process execution API (what dag.test runs tasks through) is imported.

    Must run after ``import airflow``: Airflow then adds a filter that shows DeprecationWarnings raised
    in airflow modules, and the filter added last takes precedence.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"GitWildMatchPattern \('gitwildmatch'\) is deprecated",
        category=DeprecationWarning,
        module=r"airflow(\.sdk)?\._shared\.module_loading\.file_discovery",
    )
    warnings.filterwarnings(
        "ignore",
        message=r"Using `httpx` with `starlette\.testclient` is deprecated",
        module=r"fastapi\.testclient",
    )


def local_conf(conf: dict[str, Any], source_registry: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The conf with each image parameter moved to ``source_registry``, same repository and tag; and
    ``{param: "repository:tag"}`` for the images to push there."""
    from sagelift.domain.images import parse_image_reference

    conf = dict(conf)
    names: dict[str, str] = {}
    for param in IMAGE_PARAMS:
        if not conf.get(param):
            continue
        ref = parse_image_reference(conf[param], param)
        names[param] = f"{ref.repository}:{ref.tag or 'latest'}"
        conf[param] = f"{source_registry}/{names[param]}"
    return conf, names


def push_images(registries: Any, names: dict[str, str], workdir: Path) -> dict[str, str]:
    """Write one small single-platform image per parameter and push it to the source registry, as a
    team's CI would; ``{param: digest}``."""
    from tests.support.oci_images import build_single_platform_image

    digests: dict[str, str] = {}
    for seed, (param, name) in enumerate(sorted(names.items()), start=1):
        repository, tag = name.rsplit(":", 1)
        image = build_single_platform_image(workdir / param, tag, [4096, 1 << 16], seed=seed)
        registries.push(image.reference, repository, tag)
        digests[param] = image.digest
    return digests


def registry_digest(registries: Any, name: str, account: str) -> str | None:
    """The digest the account's ECR registry serves for ``repository:tag``, None when it has none."""
    from sagelift.steps.registry import RegistryAccess, RegistryCredentials, RegistryHook
    from tests.support.scenario import ecr_registry_password

    access = RegistryAccess(
        host=registries.ecr.host,
        credentials=RegistryCredentials("AWS", ecr_registry_password(account)),
        ca_file=str(registries.ca.ca_file),
    )
    return RegistryHook().digest_if_present(f"{registries.ecr.host}/{name}", access)


def describe_account(aws, account: str) -> list[str]:  # type: ignore[no-untyped-def]
    sm = aws.client("sagemaker", account)
    lines = []
    for job in sm.list_training_jobs()["TrainingJobSummaries"]:
        detail = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        lines.append(
            f"training job     {job['TrainingJobName']:<40} {detail['TrainingJobStatus']:<10} "
            f"image {detail['AlgorithmSpecification']['TrainingImage']}"
        )
    for model in sm.list_models()["Models"]:
        container = sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
        if container.get("ModelPackageName"):  # built from the run's registered version
            lines.append(f"model            {model['ModelName']:<40} version {container['ModelPackageName']}")
            package = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
            container = {**package["InferenceSpecification"]["Containers"][0], **container}
        lines.append(f"model            {model['ModelName']:<40} image {container.get('Image')}")
        lines.append(f"{'':<17}{'':<40} artifact {container.get('ModelDataUrl')}")
    for config in sm.list_endpoint_configs()["EndpointConfigs"]:
        lines.append(f"endpoint config  {config['EndpointConfigName']}")
    for endpoint in sm.list_endpoints()["Endpoints"]:
        detail = sm.describe_endpoint(EndpointName=endpoint["EndpointName"])
        tags = sm.list_tags(ResourceArn=detail["EndpointArn"])["Tags"]
        lines.append(
            f"endpoint         {endpoint['EndpointName']:<40} {detail['EndpointStatus']:<10} "
            f"config {detail['EndpointConfigName']}"
        )
        lines.append("  tags           " + ", ".join(f"{t['Key']}={t['Value']}" for t in tags))
    ecr = aws.client("ecr", account)
    for repository in ecr.describe_repositories()["repositories"]:
        tags = ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
        if any(t["Key"] == "sagelift:run-id" for t in tags):  # created by the run, not by the world
            lines.append(f"ECR repository   {repository['repositoryName']}")
    apigw = aws.client("apigateway", account)
    for api in apigw.get_rest_apis()["items"]:
        lines.append(f"REST API         {api['name']:<40} id {api['id']}")
        for stage in apigw.get_stages(restApiId=api["id"])["item"]:
            lines.append(
                f"  invoke URL     https://{api['id']}.execute-api.{aws.region}.amazonaws.com/"
                f"{stage['stageName']}/invocations"
            )
    return lines


def task_result(dag_run: Any, task_id: str) -> Any:
    """A task's return value as the run stored it in the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def main(conf_path: str) -> int:
    home = _prepare_airflow_home()
    conf = json.loads((ROOT / conf_path).read_text())

    import airflow  # noqa: F401  (it installs warning filters that ours must follow)

    _ignore_known_library_deprecations()

    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import initdb

    from sagelift.domain.platform import EcrSettings
    from sagelift.domain.summary import render_run_summary
    from tests.support.k8s_api import can_run_pods
    from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
    from tests.support.oci_registry import RegistryPair
    from tests.support.scenario import K8S_NAMESPACE, Scenario, ecr_registry_password, onboarded_cluster

    with contextlib.ExitStack() as stack:
        aws = stack.enter_context(LocalAws())
        world = Scenario(aws)
        print("sagelift demo: sagemaker_deploy against local stand-ins")
        print(f"  local AWS        {aws.url} (scientist account {SCIENTIST_ACCOUNT}, region {REGION})")
        k8s = None
        if can_run_pods():
            k8s = stack.enter_context(onboarded_cluster())
            world.use_kubernetes(k8s)
            print(
                f"  Kubernetes API   {k8s.url} (namespace {K8S_NAMESPACE}, plugins/sagelift/assets/k8s/rbac.yaml applied)"
            )
        else:
            print("  Kubernetes API   not started: its kubelet needs root and unshare, so ensure_pvc skips")
        registries = RegistryPair(home / "registries", ecr_password=ecr_registry_password())
        stack.callback(registries.stop)
        world.use_registries(registries)
        print(f"  source registry  {registries.source.host} (your team's registry)")
        print(
            f"  ECR registry     {registries.ecr.host} "
            f"(stands in for {SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com)"
        )

        conf, names = local_conf(conf, registries.source.host)
        pushed = push_images(registries, names, home / "images")
        print(f"\nconf {conf_path}, its images pushed to the source registry:")
        for param in sorted(names):
            print(f"  {param:<22} {conf[param]:<45} {pushed[param]}")

        world.build()
        os.environ.update(world.airflow_env())
        initdb()
        bag = DagBag(dag_folder=str(ROOT / "dags" / "sagemaker_deploy.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.get_dag("sagemaker_deploy")
        dag_run = dag.test(run_conf=conf)

        print(f"\nrun {dag_run.run_id}: {dag_run.state}")
        for ti in sorted(dag_run.get_task_instances(), key=lambda t: dag.task_ids.index(t.task_id)):
            print(f"  {ti.task_id:<18} {ti.state}")

        summary = task_result(dag_run, "summarize_run")
        if summary:
            print("\nrun summary (the summarize_run task's log and XCom):")
            for line in render_run_summary(summary).splitlines():
                print(f"  {line}")

        print(f"\nimages in account {SCIENTIST_ACCOUNT}'s ECR registry:")
        for param in sorted(names):
            name = EcrSettings.repository_prefix + names[param]
            served = registry_digest(registries, name, SCIENTIST_ACCOUNT)
            verdict = "the source's digest" if served == pushed[param] else f"the source has {pushed[param]}"
            print(f"  {param:<22} {name:<45} {served or 'missing'} ({verdict})")

        print(f"\ncreated in account {SCIENTIST_ACCOUNT}:")
        for line in describe_account(aws, SCIENTIST_ACCOUNT):
            print(f"  {line}")
        if k8s is not None:
            for claim in k8s.pvcs(K8S_NAMESPACE):
                print(
                    f"  PVC              {claim['metadata']['name']:<40} {claim['status']['phase']:<10} "
                    f"{claim['spec']['resources']['requests']['storage']} in namespace {K8S_NAMESPACE}"
                )
        succeeded = str(dag_run.state) == "success"
    print(f"\ndemo wall time: {time.monotonic() - STARTED:.0f} s")
    return 0 if succeeded else 1


if __name__ == "__main__":
    code = main(sys.argv[1] if len(sys.argv) > 1 else "include/examples/demo.json")
    # Everything main started is stopped by now. What remains is the interpreter freeing about a million
    # objects (Airflow, moto, botocore models) one by one, 5 to 10 s on a busy machine for nothing: run
    # the exit handlers (temporary files, the database engine, logging), then leave.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
