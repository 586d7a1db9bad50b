"""
### sagemaker_teardown: delete what sagemaker_deploy created for a model

Trigger with `model_name`, `account_id` and `confirm` (the model name typed again; anything else is
refused before any AWS call; you must be one of the account's deployers). Through the same role chain as
sagemaker_deploy, in your account, and holding the model's lock (so it waits for a deploy of the model in
progress, and no deploy starts while it deletes), it deletes:

1. **remove_api**: the model's API Gateway API, with its usage plan and API key;
2. **delete_sagemaker_resources**: the endpoint `<model_name>`, then every endpoint config and model
   `<model_name>-<run key>` tagged as this model's (training jobs cannot be deleted and stay in history;
   so does the model registry: the model package group `<model_name>` and every version are kept);
3. **delete_images** (if `delete_images`): the images sagelift recorded copying for this model, unless
   another model still uses or recorded them (never images you pushed yourself), then each repository
   left empty that sagelift created for this model;
4. **delete_pvc** (if `delete_pvc`): the pipeline's volume claim, when it was created for this model;
5. **report**: what was deleted. Running it again succeeds and reports that nothing was left.
"""

from __future__ import annotations

# The DAG processor imports the airflow.* modules a DAG file names at its top once, in its manager, before
# it forks each parse ([dag_processor] parsing_pre_import_modules): the provider modules the operators
# below use are named here so that no parse imports them again (tests/dags/test_import_deny_list.py).
import airflow.providers.amazon.aws.hooks.base_aws
import airflow.providers.amazon.aws.hooks.ecr
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.amazon.aws.hooks.sagemaker
import airflow.providers.amazon.aws.hooks.sts
import airflow.providers.amazon.aws.links.base_aws  # noqa: F401 (pre-imported, see above)
from airflow.sdk import DAG, chain

from sagelift.operators.apigateway import ApiGatewayRemoveOperator
from sagelift.operators.lock import S3AcquireModelLockOperator, S3ReleaseModelLockOperator
from sagelift.operators.sts import StsAssumeRoleChainOperator
from sagelift.operators.teardown import (
    EcrTeardownImagesOperator,
    KubernetesTeardownPvcOperator,
    SageMakerTeardownOperator,
    TeardownReportOperator,
    TeardownValidateOperator,
    teardown_params,
)

with DAG(
    dag_id="sagemaker_teardown",
    schedule=None,
    catchup=False,
    params=teardown_params(),
    doc_md=__doc__,
    tags=["sagelift", "sagemaker", "teardown"],
    default_args={"trigger_rule": "none_failed", "retries": 1},
) as dag:
    validate = TeardownValidateOperator(task_id="validate", retries=0)
    plan = validate.output
    assume_role_chain = StsAssumeRoleChainOperator(task_id="assume_role_chain", plan=plan)
    session = assume_role_chain.output
    # A teardown takes the model's lock like a deploy does, so it never deletes under a running deploy.
    acquire_model_lock = S3AcquireModelLockOperator(task_id="acquire_model_lock", plan=plan, session=session)
    remove_api = ApiGatewayRemoveOperator(
        task_id="remove_api", plan=plan, session=session, trigger_rule="all_success"
    )
    delete_sagemaker = SageMakerTeardownOperator(
        task_id="delete_sagemaker_resources", plan=plan, session=session
    )
    delete_images = EcrTeardownImagesOperator(
        task_id="delete_images", plan=plan, session=session, sagemaker=delete_sagemaker.output
    )
    delete_pvc = KubernetesTeardownPvcOperator(task_id="delete_pvc", plan=plan)
    report = TeardownReportOperator(
        task_id="report",
        plan=plan,
        api=remove_api.output,
        sagemaker=delete_sagemaker.output,
        images=delete_images.output,
        pvc=delete_pvc.output,
    )
    release_model_lock = S3ReleaseModelLockOperator(
        task_id="release_model_lock", plan=plan, session=session
    ).as_teardown(setups=acquire_model_lock)
    chain(
        validate,
        assume_role_chain,
        acquire_model_lock,
        remove_api,
        delete_sagemaker,
        delete_images,
        delete_pvc,
        report,
        release_model_lock,
    )
