"""`make demo`: run sagemaker_deploy once against the local stand-ins and print what it created.

Starts the local AWS (moto server on 127.0.0.1), builds the three-account world of the tests, points a
private Airflow home (.airflow/demo) at it through the same connection and Variable an ML engineer would
create, runs the DAG with the given conf (dag.test: the real operators, in one process), prints the
resources found in the scientist account, and stops everything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _prepare_airflow_home() -> Path:
    home = ROOT / ".airflow" / "demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.sts.RoleChainSessionFactory",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    for path in (str(ROOT / "plugins"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return home


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
        detail = sm.describe_model(ModelName=model["ModelName"])
        lines.append(
            f"model            {model['ModelName']:<40} artifact {detail['PrimaryContainer']['ModelDataUrl']}"
        )
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
    apigw = aws.client("apigateway", account)
    for api in apigw.get_rest_apis()["items"]:
        lines.append(f"REST API         {api['name']:<40} id {api['id']}")
        for stage in apigw.get_stages(restApiId=api["id"])["item"]:
            lines.append(
                f"  invoke URL     https://{api['id']}.execute-api.{aws.region}.amazonaws.com/"
                f"{stage['stageName']}/invocations"
            )
    return lines


def main(conf_path: str) -> int:
    _prepare_airflow_home()
    conf = json.loads((ROOT / conf_path).read_text())

    from airflow.utils.db import initdb

    from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
    from tests.support.scenario import Scenario

    with LocalAws() as aws:
        world = Scenario(aws).build()
        os.environ.update(world.airflow_env())
        print(f"local AWS on {aws.url}; scientist account {SCIENTIST_ACCOUNT}")
        initdb()
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.get_dag("sagemaker_deploy")
        dag_run = dag.test(run_conf=conf)
        print()
        print(f"run {dag_run.run_id}: {dag_run.state}")
        for ti in sorted(dag_run.get_task_instances(), key=lambda t: dag.task_ids.index(t.task_id)):
            print(f"  {ti.task_id:<18} {ti.state}")
        print()
        print(f"created in account {SCIENTIST_ACCOUNT}:")
        for line in describe_account(aws, SCIENTIST_ACCOUNT):
            print(f"  {line}")
        return 0 if str(dag_run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "include/examples/demo.json"))
