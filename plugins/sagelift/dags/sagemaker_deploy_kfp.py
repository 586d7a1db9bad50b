"""
### sagemaker_deploy_kfp: the same run, executed by Kubeflow Pipelines

For teams that keep Kubeflow Pipelines as the executor. Trigger it with exactly the conf you would give
`sagemaker_deploy` (the same parameters, defaults and trigger form). The run:

1. **validate** checks every parameter against the platform configuration and fails naming the field
   and the rule, before anything is submitted;
2. **run_kfp_pipeline** uploads the compiled pipeline `sagelift/assets/kfp/sagemaker_deploy.yaml` (package data) (once per
   content change), submits one KFP run with the validated parameters and follows it; the task's
   "KFP run" link opens it in the KFP UI. The KFP run performs the eight steps of `sagemaker_deploy`
   (ensure_pvc ... expose_api) with the same request builders, so it creates the same resources.

Stopping this task terminates the KFP run. Resources created by KFP are named from the KFP run id, so
a retry of this task follows the KFP run it already submitted. See the README, "Running on Kubeflow
Pipelines", for the KFP connection and the components' image.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, chain

from sagelift.dags.params import airflow_params
from sagelift.operators.kfp import KubeflowPipelinesRunOperator
from sagelift.operators.validate import ValidateRunOperator

with DAG(
    dag_id="sagemaker_deploy_kfp",
    schedule=None,
    catchup=False,
    params=airflow_params(),
    doc_md=__doc__,
    tags=["sagelift", "sagemaker", "kubeflow"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
) as dag:
    # The KFP components reach the account from the platform configuration, not an Airflow connection.
    validate = ValidateRunOperator(task_id="validate", require_aws_connection=False, engine="kfp")
    run_kfp_pipeline = KubeflowPipelinesRunOperator(
        task_id="run_kfp_pipeline",
        pipeline_name="sagemaker-deploy",
        experiment_name="sagelift",
        plan=validate.output,
    )
    chain(validate, run_kfp_pipeline)
