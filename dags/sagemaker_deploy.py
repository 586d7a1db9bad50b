"""
### sagemaker_deploy: train a SageMaker model and expose it as an endpoint in your AWS account

Trigger with a conf JSON (the trigger form below, the REST API or the CLI) naming your model, your
onboarded account and either a training image, a built-in algorithm or an existing model artifact.
The run:

1. **validate** checks every parameter and fails naming the field and the rule, before anything is created;
2. **ensure_pvc** makes sure the pipeline's PersistentVolumeClaim exists;
3. **assume_role_chain** reaches your account: runner identity -> master pipeline role -> your pipeline
   execution role;
4. **resolve_tags** reads the organisation's standard tags and adds the run's own;
5. **copy_images** copies images from other registries into your account's ECR;
6. **train_model** trains on SageMaker (skipped when you deploy an existing artifact);
7. **create_model** registers the model;
8. **deploy_endpoint** creates your HTTPS endpoint, or updates it to this run's model;
9. **expose_api** puts an API Gateway API in front of it for other applications.

Resources are named `<model_name>-<run key>`; the endpoint keeps the name `<model_name>` across runs.
See the README for the parameters, the REST API and onboarding.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, chain

from sagelift.operators.apigateway import ApiGatewayExposeOperator
from sagelift.operators.ecr import EcrCopyImagesOperator
from sagelift.operators.kubernetes import KubernetesEnsurePvcOperator
from sagelift.operators.params import airflow_params
from sagelift.operators.sagemaker import (
    SageMakerCreateModelOperator,
    SageMakerDeployEndpointOperator,
    SageMakerTrainModelOperator,
)
from sagelift.operators.sts import StsAssumeRoleChainOperator
from sagelift.operators.tags import S3ResolveTagsOperator
from sagelift.operators.validate import ValidateRunOperator

with DAG(
    dag_id="sagemaker_deploy",
    schedule=None,
    catchup=False,
    params=airflow_params(),
    doc_md=__doc__,
    tags=["sagelift", "sagemaker"],
    default_args={
        # A skipped optional step (no image to copy, an artifact to deploy) must not skip the rest.
        "trigger_rule": "none_failed",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
):
    chain(
        ValidateRunOperator(task_id="validate"),
        KubernetesEnsurePvcOperator(task_id="ensure_pvc"),
        StsAssumeRoleChainOperator(task_id="assume_role_chain"),
        S3ResolveTagsOperator(task_id="resolve_tags"),
        EcrCopyImagesOperator(task_id="copy_images"),
        SageMakerTrainModelOperator(task_id="train_model"),
        SageMakerCreateModelOperator(task_id="create_model"),
        SageMakerDeployEndpointOperator(task_id="deploy_endpoint"),
        ApiGatewayExposeOperator(task_id="expose_api"),
    )
