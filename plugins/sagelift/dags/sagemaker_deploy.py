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
6. **train_model** trains on SageMaker (skipped when you deploy an existing artifact); with `tuning` set,
   **tune_model** runs a hyperparameter tuning job instead and its best training job's model is deployed;
   with `labeling` set, **label_data** first has your workteam label a manifest (Ground Truth) to train on;
7. **register_model** registers the run's version in the model registry and applies the quality gate;
   in an account that requires approval, **approve_deploy** waits for a deployer to approve that version
   in the Airflow UI (Required Actions; reject or no answer stops the run, nothing deployed);
   **recommend_instance** answers which instance types fit the model, what each costs per hour and
   which it picks (with `endpoint_instance_type: "auto"` the run deploys the pick);
   **create_model** creates the model from that version;
8. **deploy_endpoint** creates your HTTPS endpoint, or updates it to this run's model;
9. **expose_api** puts an API Gateway API in front of it for other applications;
   with `monitoring` set, **monitor_endpoint** baselines the training data and puts a data-quality
   schedule and drift alarms on the endpoint;
   with `batch` set, steps 8-9 skip and **batch_transform** scores your S3 prefix with the model instead;
10. **summarize_run** prints what the run created or updated and the invoke URL.

With `plan_only: true`, the run stops after **plan_changes** (after step 3): it prints what it would
create, update (old -> new) or leave unchanged, and changes nothing.

Runs of the same model in the same account take turns: **acquire_model_lock** (after step 3) waits while
another run of the model holds its lock, and **release_model_lock** gives it back at the end, whatever
the outcome. Runs of different models never wait for each other.

Resources are named `<model_name>-<run key>`; the endpoint keeps the name `<model_name>` across runs.
Each task's *Task Docs* explain its step; its extra links open the SageMaker console, CloudWatch logs and
the API Gateway stage. On failure, the targets in the Variable `sagelift_notifications` are told.
See the README for the parameters, the REST API and onboarding.
"""

from __future__ import annotations

from datetime import timedelta

# The DAG processor imports the airflow.* modules a DAG file names at its top once, in its manager, before
# it forks each parse ([dag_processor] parsing_pre_import_modules): the provider modules the operators
# below use are named here so that no parse imports them again (tests/dags/test_import_deny_list.py).
import airflow.providers.amazon.aws.hooks.base_aws
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.amazon.aws.hooks.sagemaker
import airflow.providers.amazon.aws.hooks.sts
import airflow.providers.amazon.aws.links.base_aws
import airflow.providers.amazon.aws.operators.sagemaker
import airflow.providers.amazon.aws.triggers.sagemaker
import airflow.providers.amazon.aws.utils.waiter_with_logging
import airflow.providers.common.compat.sdk
import airflow.providers.standard.operators.hitl  # noqa: F401 (pre-imported, see above)
from airflow.sdk import DAG

from sagelift.dags.params import airflow_params, share_form_params
from sagelift.notifications import SageliftNotifier
from sagelift.operators.apigateway import ApiGatewayExposeOperator
from sagelift.operators.approval import SageMakerApproveDeployOperator
from sagelift.operators.batch import SageMakerBatchTransformOperator
from sagelift.operators.ecr import EcrCopyImagesOperator
from sagelift.operators.kubernetes import KubernetesEnsurePvcOperator
from sagelift.operators.labeling import SageMakerLabelingOperator
from sagelift.operators.lock import S3AcquireModelLockOperator, S3ReleaseModelLockOperator
from sagelift.operators.model_registry import SageMakerRegisterModelOperator
from sagelift.operators.monitoring import SageMakerMonitorEndpointOperator
from sagelift.operators.plan import PlanChangesOperator
from sagelift.operators.recommendation import SageMakerRecommendInstanceOperator
from sagelift.operators.sagemaker import (
    SageMakerCreateModelOperator,
    SageMakerDeployEndpointOperator,
    SageMakerTrainModelOperator,
)
from sagelift.operators.sts import StsAssumeRoleChainOperator
from sagelift.operators.summary import RunSummaryOperator
from sagelift.operators.tags import S3ResolveTagsOperator
from sagelift.operators.tuning import SageMakerTuneModelOperator
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
        "on_failure_callback": SageliftNotifier("failure"),
    },
) as dag:
    validate = ValidateRunOperator(
        task_id="validate",
        doc_md="Checks every parameter and the platform configuration; fails naming the field and the rule, "
        "before anything is created. Returns the run's plan: validated parameters and every resource name.",
    )
    plan = validate.output
    ensure_pvc = KubernetesEnsurePvcOperator(
        task_id="ensure_pvc",
        plan=plan,
        doc_md="Makes sure the pipeline's PersistentVolumeClaim exists (a small pod creates it if missing). "
        "Skipped when the platform has no Kubernetes step.",
    )
    assume_role_chain = StsAssumeRoleChainOperator(
        task_id="assume_role_chain",
        plan=plan,
        doc_md="Reaches your account through the role chain (runner -> master pipeline role -> your "
        "pipeline execution role) and checks who it acts as. Returns identifiers only, never credentials.",
    )
    session = assume_role_chain.output
    plan_changes = PlanChangesOperator(
        task_id="plan_changes",
        plan=plan,
        session=session,
        doc_md="With plan_only: true, reads your account (Describe/List/Get calls only) and prints what the run "
        "would create, update (old -> new for each field) or leave unchanged, then skips every later step: "
        "nothing is changed. Otherwise it does nothing and the run goes on.",
    )
    acquire_model_lock = S3AcquireModelLockOperator(
        task_id="acquire_model_lock",
        plan=plan,
        session=session,
        doc_md="Takes your model's lock in your account so that two runs of the same model never work at "
        "once; waits (deferred) while another run of the model holds it, up to the platform's budget. "
        "Without a lock location in the platform, it only warns that runs are not serialized.",
    )
    resolve_tags = S3ResolveTagsOperator(
        task_id="resolve_tags",
        plan=plan,
        session=session,
        trigger_rule="all_success",  # what Airflow requires of the task after a setup task (the lock)
        doc_md="Reads the organisation's standard tag document from S3 and adds the run's own tags "
        "(model, DAG, run, account); every resource the run creates carries them.",
    )
    tags = resolve_tags.output
    copy_images = EcrCopyImagesOperator(
        task_id="copy_images",
        plan=plan,
        session=session,
        tags=tags,
        doc_md="Copies training and serving images from other registries into your account's ECR and pins "
        "every image by digest. Images already in your ECR are used as they are. With promote_from, it "
        "reads that version in the source account and copies its serving image from there by digest.",
    )
    images = copy_images.output
    label_data = SageMakerLabelingOperator(
        task_id="label_data",
        plan=plan,
        session=session,
        tags=tags,
        doc_md="With labeling set: runs the Ground Truth labeling job `<model_name>-<run key>` over your "
        "manifest with your account's workteam and waits (deferred) until the people are done; its output "
        "manifest is a training channel of train_model or tune_model. Marking it failed stops the job. "
        "Skipped otherwise.",
    )
    train_model = SageMakerTrainModelOperator(
        task_id="train_model",
        plan=plan,
        session=session,
        tags=tags,
        images=images,
        doc_md="Runs the SageMaker training job `<model_name>-<run key>` and streams its logs here. Skipped "
        "when you deploy an existing artifact, or when tuning is set (tune_model trains then). Links: the job "
        "in the console and its CloudWatch logs.",
    )
    tune_model = SageMakerTuneModelOperator(
        task_id="tune_model",
        plan=plan,
        session=session,
        tags=tags,
        images=images,
        doc_md="With tuning set: runs the SageMaker hyperparameter tuning job `<model_name, cut>-<run key>` "
        "(train_model skips) and logs its progress: training jobs completed, running and failed, and the "
        "best so far. Its best training job's model is the one deployed. Skipped otherwise.",
    )
    register_model = SageMakerRegisterModelOperator(
        task_id="register_model",
        plan=plan,
        session=session,
        tags=tags,
        images=images,
        training=train_model.output,
        doc_md="Registers this run's version in the model package group `<model_name>` (created if missing): "
        "the serving image by digest, the artifact, the final metrics and the tags. With a quality_gate, a "
        "metric below its threshold makes the version Rejected and stops the run here; an account that "
        "requires approval gets PendingManualApproval, else Approved. Skipped for a train-only run.",
    )
    registered = register_model.output
    approve_deploy = SageMakerApproveDeployOperator(
        task_id="approve_deploy",
        plan=plan,
        session=session,
        tags=tags,
        registered=registered,
        doc_md="In an account that requires approval: shows the version, its metrics and what the run will "
        "change, and waits (Required Actions) for one of the account's deployers. Approve: the version "
        "becomes Approved and the run deploys it. Reject, or no answer before the platform's timeout: the "
        "version becomes Rejected and this task fails, so nothing is deployed. Skipped in other accounts.",
        # the deployers are told that a run waits for them, and where to answer (sagelift_notifications)
        notifiers=[SageliftNotifier("approval")],
    )
    recommend_instance = SageMakerRecommendInstanceOperator(
        task_id="recommend_instance",
        plan=plan,
        session=session,
        tags=tags,
        registered=registered,
        doc_md="Answers which hosting instance types fit the model (its artifact's size, CPU or GPU serving, "
        "your account's allowed types), what each costs per hour in the region (sagelift's dated price "
        "table) and which it picks: the cheapest that fits. With instance_recommendation.job, a SageMaker "
        "Inference Recommender job load-tests them first (deferred; marking the task failed stops it) and "
        'the pick is its cheapest answer that fits. With endpoint_instance_type "auto", deploy_endpoint '
        "deploys the pick. Skipped when the run has no instance-backed endpoint of its own.",
    )
    create_model = SageMakerCreateModelOperator(
        task_id="create_model",
        plan=plan,
        session=session,
        tags=tags,
        images=images,
        training=train_model.output,
        tuning=tune_model.output,
        registered=registered,
        doc_md="Creates the SageMaker model `<model_name>-<run key>` from the run's registered version "
        "(its image digest and artifact) with the environment. With multi_model: copies the artifact to "
        "`<prefix><model_name>/<run key>.tar.gz` on the team's shared endpoint and ensures its shared model.",
    )
    deploy_endpoint = SageMakerDeployEndpointOperator(
        task_id="deploy_endpoint",
        plan=plan,
        session=session,
        tags=tags,
        model=create_model.output,
        recommendation=recommend_instance.output,
        doc_md="Creates the endpoint config `<model_name>-<run key>` and creates the endpoint `<model_name>`, "
        "or updates it in place; waits until it is InService and fails if SageMaker rolled back. With "
        "multi_model: creates or adopts the team's shared endpoint `sagelift-mme-<team>` instead.",
    )
    expose_api = ApiGatewayExposeOperator(
        task_id="expose_api",
        plan=plan,
        session=session,
        tags=tags,
        endpoint=deploy_endpoint.output,
        doc_md="Creates or updates the model's API Gateway REST API (POST /invocations, or /async-invocations for an async endpoint) in front of the "
        "endpoint and deploys it; the invoke URL stays the same across runs. With multi_model: POST "
        "/models/<model_name>/invocations, routed to the model's current key on the shared endpoint.",
    )
    monitor_endpoint = SageMakerMonitorEndpointOperator(
        task_id="monitor_endpoint",
        plan=plan,
        session=session,
        tags=tags,
        endpoint=deploy_endpoint.output,
        doc_md="With monitoring set: runs the Model Monitor baseline job `<model_name>-<run key>` over the "
        "training channel (deferred; cancel stops it), then puts the data-quality schedule `<model_name>` "
        "on the endpoint (a re-run updates it) and one CloudWatch drift alarm per baselined feature. "
        "Skipped otherwise. Links: the schedule and the baseline job.",
    )
    batch_transform = SageMakerBatchTransformOperator(
        task_id="batch_transform",
        plan=plan,
        session=session,
        tags=tags,
        model=create_model.output,
        doc_md="With batch set: scores your S3 input prefix with the run's model in the SageMaker batch "
        "transform job `<model_name>-<run key>` (no endpoint, no API) and writes one `<object>.out` per "
        "input object under the output prefix. Skipped otherwise. Links: the job and its CloudWatch logs.",
    )
    summarize_run = RunSummaryOperator(
        task_id="summarize_run",
        plan=plan,
        images=images,
        training=train_model.output,
        model=create_model.output,
        endpoint=deploy_endpoint.output,
        api=expose_api.output,
        batch=batch_transform.output,
        monitoring=monitor_endpoint.output,
        labeling=label_data.output,
        registered=registered,
        tuning=tune_model.output,
        approval=approve_deploy.output,
        recommendation=recommend_instance.output,  # the summary shows the three answers
        on_success_callback=SageliftNotifier("success"),
        doc_md="Prints what the run created or updated and the invoke URL; its XCom is the run summary.",
    )
    # The run's teardown: it gives the lock back once the steps are done, whatever their outcome.
    release_model_lock = S3ReleaseModelLockOperator(
        task_id="release_model_lock",
        plan=plan,
        session=session,
        doc_md="Gives your model's lock back at the end of the run, whatever its outcome, so the next run "
        "of the model can start. Not counted in the run's own state.",
    ).as_teardown(setups=acquire_model_lock)
    # Every later step is ordered by the data it reads (.output above); ensure_pvc reads only the plan,
    # so it is put first explicitly, as in the original pipeline.
    ensure_pvc >> assume_role_chain
    # The lock is held from before the first resource of the model is created to the end of the run.
    # A plan-only run stops at plan_changes, before the lock is taken and before any write.
    plan_changes >> acquire_model_lock
    acquire_model_lock >> resolve_tags
    summarize_run >> release_model_lock
    # A rejected or unanswered approval fails approve_deploy: create_model and every later step are then
    # upstream_failed (the none_failed rule would run them after a mere skip).
    approve_deploy >> recommend_instance >> create_model
    # One of train_model and tune_model skips; register_model reads the deployed job from SageMaker (with
    # tuning, the tuning job's best job), so it follows both.
    train_model >> tune_model >> register_model
    # Labels before training, after copy_images (cheap checks first, people's work last); both training
    # tasks read the labeled manifest through the plan's channels, so only the order is wired.
    copy_images >> label_data >> [train_model, tune_model]
    # The steps stay one line: monitor_endpoint (serving only) and batch_transform after expose_api. In
    # each run one of the two paths skips (serving or batch) and a skipped step passes the run on
    # (none_failed); a failed batch job leaves the serving steps skipped, not upstream_failed.
    expose_api >> monitor_endpoint >> batch_transform

# The form stays on the DAG; each task's copy of it only slowed every parse (see share_form_params).
share_form_params(dag)
