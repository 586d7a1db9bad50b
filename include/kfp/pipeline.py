"""sagelift's pipeline on the Kubeflow Pipelines v2 DSL: the 13 original parameters (and the serving
settings), the eight steps.

Compile with ``make kfp-compile`` (writes plugins/sagelift/assets/kfp/sagemaker_deploy.yaml, package
data of sagelift, committed and checked by ``make test``). Each step is a lightweight Python component that calls the matching
function of ``sagelift_kfp.steps``, which builds its requests with ``sagelift.domain``: the same
builders as the Airflow DAG.

Compile-time settings (environment variables; the committed YAML uses the defaults):

- ``SAGELIFT_KFP_BASE_IMAGE``: the components' image (default ``sagelift-kfp:0.1.0``, built from
  include/kfp/Dockerfile: Python with kfp, boto3, kubernetes, ``sagelift.domain``, ``sagelift.pod`` and
  ``sagelift_kfp`` installed);
- ``SAGELIFT_KFP_PACKAGES``: space-separated pip requirements installed when a component starts (default
  none: the image has everything; set it to use a stock Python image instead);
- ``SAGELIFT_KFP_PLATFORM_CONFIGMAP``: the ConfigMap whose ``platform.json`` key holds the platform
  configuration (default ``sagelift-platform``), passed to every component as ``SAGELIFT_PLATFORM``.
"""

import argparse
import inspect
import os
from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl, kubernetes

from sagelift.domain.kfp import PIPELINE_PARAMETER_NAMES
from sagelift.domain.params import PARAMETERS, ParamSpec

PIPELINE_NAME = "sagemaker-deploy"
DEFAULT_BASE_IMAGE = "sagelift-kfp:0.1.0"
DEFAULT_PLATFORM_CONFIGMAP = "sagelift-platform"
PLATFORM_KEY = "platform.json"
# package data of sagelift, read by the operator from the installed package
PACKAGE = Path(__file__).resolve().parents[2] / "plugins/sagelift/assets/kfp/sagemaker_deploy.yaml"


# --- the step bodies, as components ------------------------------------------------------------
# Lightweight components carry their function's source, so each body imports what it uses.
def ensure_pvc(
    model_name: str,
    account_id: str,
    model_docker_image: str,
    model_artifact_s3_path: str,
    environment: dict,
    training_algorithm_name: str,
    training_docker_image: str,
    training_hyperparameters: dict,
    training_instance_count: int,
    training_instance_type: str,
    endpoint_instance_type: str,
    training_channels: list,
    training_s3_output_path: str,
    endpoint: dict,
    training: dict,
    request_overrides: dict,
    tuning: dict,
    quality_gate: list,
    batch: dict,
    multi_model: dict,
    instance_recommendation: dict,
    monitoring: dict,
    labeling: dict,
    plan_only: bool,
    pipeline_name: str,
    run_id: str,
) -> str:
    """Validate the run (as Airflow's validate step) and ensure the pipeline's claim; returns the plan.

    The plan travels as JSON text: a KFP struct would turn its integers into floats and refuse nulls.
    """
    conf = dict(locals())  # first statement: the run parameters and the two run facts
    import json

    from sagelift_kfp import steps

    dag_id, run_id = conf.pop("pipeline_name"), conf.pop("run_id")
    plan = steps.plan_run(conf, dag_id, run_id)
    print(steps.ensure_pvc(plan))
    return json.dumps(plan)


def assume_role_chain(plan: str) -> dict:
    """Act in the scientist account: runner identity -> master role -> execution role."""
    import json

    from sagelift_kfp import steps

    facts = steps.assume_role_chain(json.loads(plan))
    print(f"Acting in account {facts['account_id']} as {facts['caller_arn']}")
    return facts


def plan_changes(plan: str, identity: dict) -> str:
    """With plan_only: print what the run would change (read-only calls) and stop it; "apply" otherwise."""
    import json

    from sagelift_kfp import steps

    from sagelift.domain.changes import ChangeSet

    changes = steps.plan_changes(json.loads(plan))
    if changes is None:
        return "apply"
    print(ChangeSet.from_xcom(changes).render())
    return "plan"


def acquire_model_lock(plan: str, identity: dict) -> dict:
    """Take the model's lock so runs of one model take turns; waits within the platform's budget."""
    import json

    from sagelift_kfp import steps

    taken = steps.acquire_lock(json.loads(plan))
    print(f"Model lock: {taken}")
    return taken


def release_model_lock(
    model_name: str,
    account_id: str,
    model_docker_image: str,
    model_artifact_s3_path: str,
    environment: dict,
    training_algorithm_name: str,
    training_docker_image: str,
    training_hyperparameters: dict,
    training_instance_count: int,
    training_instance_type: str,
    endpoint_instance_type: str,
    training_channels: list,
    training_s3_output_path: str,
    endpoint: dict,
    training: dict,
    request_overrides: dict,
    tuning: dict,
    quality_gate: list,
    batch: dict,
    multi_model: dict,
    instance_recommendation: dict,
    monitoring: dict,
    labeling: dict,
    plan_only: bool,
    pipeline_name: str,
    run_id: str,
) -> bool:
    """The exit handler: give the model's lock back whatever the run's outcome.

    An exit task takes only the run's parameters, so it validates them again for the plan; a run whose
    parameters do not validate never took the lock.
    """
    conf = dict(locals())  # first statement: the run parameters and the two run facts
    from sagelift_kfp import steps

    from sagelift.domain.errors import SageliftValidationError

    dag_id, run_id = conf.pop("pipeline_name"), conf.pop("run_id")
    try:
        released = steps.release_lock(conf, dag_id, run_id)
    except SageliftValidationError:
        print("The run did not validate, so it took no lock: nothing to give back.")
        return False
    print(f"Model lock given back: {released}")
    return released


def resolve_tags(plan: str, identity: dict) -> list:
    """The organisation's standard tags plus the run's own."""
    import json

    from sagelift_kfp import steps

    return steps.resolve_tags(json.loads(plan))


def copy_images(plan: str, tags: list) -> dict:
    """The run's images in the account's ECR, pinned by digest."""
    import json

    from sagelift_kfp import steps

    return steps.copy_images(json.loads(plan), tags)


def label_data(plan: str, tags: list) -> dict:
    """With labeling set: the workteam labels the conf's manifest (a Ground Truth labeling job), whose
    output manifest the plan already lists as a training channel."""
    import json

    from sagelift_kfp import labeling

    return labeling.label_data(json.loads(plan), tags)


def train_model(plan: str, tags: list, images: dict, metrics: dsl.Output[dsl.Metrics]) -> str:
    """Train on SageMaker (the given artifact when training is skipped); returns the artifact URI.

    The job's final metric values (FinalMetricDataList) are the step's Metrics artifact, which the KFP
    UI shows and compares across runs; spot facts (interruptions, billable and training seconds) too.
    With tuning set, the step runs the tuning job and the job is its best training job: the artifact
    also shows the best objective value and the number of training jobs the tuning completed.
    """
    import json

    from sagelift_kfp import steps

    artifact, facts = steps.train_model(json.loads(plan), tags, images)
    for name, value in sorted((facts.get("metrics") or {}).items()):
        metrics.log_metric(name, value)
    tuned = facts.get("tuning") or {}
    best = tuned.get("best") or {}
    if best.get("objective_value") is not None:
        metrics.log_metric(f"tuning:best:{best.get('objective_metric')}", best["objective_value"])
        metrics.log_metric("tuning:completed_jobs", (tuned.get("jobs") or {}).get("completed", 0))
    for name in ("interruptions", "billable_seconds", "training_seconds"):
        if facts.get("spot") and facts.get(name) is not None:
            metrics.log_metric(f"spot:{name}", facts[name])
    return artifact


def register_model(plan: str, tags: list, images: dict, model_data_url: str) -> dict:
    """Register the run's model package version; a quality gate failure rejects it and stops the run."""
    import json

    from sagelift_kfp import governance

    return governance.register_model(json.loads(plan), tags, images, model_data_url)


def recommend_instance(plan: str, tags: list, registered: dict) -> NamedTuple(
    "Recommended", [("recommendation", dict), ("deploy_plan", str)]
):
    """Which hosting types fit the model, what each costs per hour and the pick (with an Inference
    Recommender job when the conf asks); ``deploy_plan``: the plan deploy_endpoint deploys ("auto"
    resolved to the pick)."""
    import json
    from typing import NamedTuple

    from sagelift_kfp import recommendation

    answer = recommendation.recommend_instance(json.loads(plan), tags, registered)
    resolved = json.dumps(recommendation.deploy_plan(json.loads(plan), answer))
    outputs = NamedTuple("Recommended", [("recommendation", dict), ("deploy_plan", str)])  # noqa: UP014
    return outputs(answer, resolved)


def create_model(plan: str, tags: list, images: dict, model_data_url: str, registered: dict) -> str:
    """Create the SageMaker model from the run's registered version (on a team's shared multi-model
    endpoint: the artifact at its key, and the shared model)."""
    import json

    from sagelift_kfp import governance, multi_model

    if multi_model.applies(json.loads(plan)):
        return multi_model.create_model(json.loads(plan), model_data_url)
    return governance.create_model(json.loads(plan), tags, images, model_data_url, registered)


def deploy_endpoint(plan: str, tags: list, model_name: str) -> dict:
    """Create the model's endpoint, or update it to this run's model (or the team's shared one)."""
    import json

    from sagelift_kfp import multi_model, steps

    if multi_model.applies(json.loads(plan)):
        return multi_model.deploy_endpoint(json.loads(plan), model_name)
    return steps.deploy_endpoint(json.loads(plan), tags, model_name)


def expose_api(plan: str, tags: list, endpoint: dict) -> dict:
    """Put an API Gateway API in front of the endpoint."""
    import json

    from sagelift_kfp import multi_model, steps

    if multi_model.applies(json.loads(plan)):
        return multi_model.expose_api(json.loads(plan), tags, endpoint)
    return steps.expose_api(json.loads(plan), tags, endpoint)


def batch_transform(plan: str, tags: list, model_name: str) -> dict:
    """With batch set: score the S3 input prefix with the run's model (a batch transform job)."""
    import json

    from sagelift_kfp import batch

    return batch.batch_transform(json.loads(plan), tags, model_name)


def monitor_endpoint(plan: str, tags: list, endpoint: dict) -> dict:
    """With monitoring set: baseline the training data, put a data-quality schedule and drift alarms on
    the endpoint."""
    import json

    from sagelift_kfp import monitoring

    return monitoring.monitor_endpoint(json.loads(plan), tags, endpoint)


STEPS = (
    ensure_pvc,
    assume_role_chain,
    plan_changes,
    acquire_model_lock,
    resolve_tags,
    copy_images,
    label_data,
    train_model,
    register_model,
    recommend_instance,
    create_model,
    deploy_endpoint,
    expose_api,
    monitor_endpoint,
    batch_transform,
    release_model_lock,
)


def _kfp_type(spec: ParamSpec) -> type:
    """The Python type KFP maps to the parameter's type: str, int (NUMBER_INTEGER), dict (STRUCT), list."""
    return type(spec.default)


def build_pipeline(
    base_image: str = DEFAULT_BASE_IMAGE,
    packages: tuple[str, ...] = (),
    platform_configmap: str = DEFAULT_PLATFORM_CONFIGMAP,
):
    """The pipeline function, its components built with these image and package settings."""
    c = {
        step.__name__: dsl.component(
            step,
            base_image=base_image,
            packages_to_install=list(packages),
            # kfp itself is in the image (or in ``packages``): no runtime install of the SDK
            install_kfp_package=False,
        )
        for step in STEPS
    }

    def configure(task: dsl.PipelineTask, name: str) -> dsl.PipelineTask:
        # No KFP retry policy: it would rerun a step after a refusal too. Each step runs itself again
        # after a transient error only (sagelift_kfp.steps.retried), as Airflow retries its tasks.
        task.set_display_name(name).set_caching_options(False)
        kubernetes.use_config_map_as_env(
            task,
            config_map_name=platform_configmap,
            config_map_key_to_env={PLATFORM_KEY: "SAGELIFT_PLATFORM"},
        )
        return task

    def sagemaker_deploy(*args):
        run = dict(zip(PIPELINE_PARAMETER_NAMES, args, strict=True))
        facts = {"pipeline_name": PIPELINE_NAME, "run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER}
        # Runs of one model take turns: the lock taken after assume_role_chain is given back by the exit
        # handler, which runs after the steps whatever their outcome.
        release = configure(c["release_model_lock"](**run, **facts), "release_model_lock")
        with dsl.ExitHandler(release, name="model-lock-held"):
            plan = configure(c["ensure_pvc"](**run, **facts), "ensure_pvc").output
            role = configure(c["assume_role_chain"](plan=plan), "assume_role_chain")
            # plan_only: plan_changes prints what the run would change, and nothing after it runs.
            planned = configure(c["plan_changes"](plan=plan, identity=role.output), "plan_changes")
            with dsl.If(planned.output == "apply", name="changes-allowed"):
                # Its wait is bounded by the platform, and its S3 errors are retried inside.
                lock = configure(
                    c["acquire_model_lock"](plan=plan, identity=role.output), "acquire_model_lock"
                )
                tags = configure(
                    c["resolve_tags"](plan=plan, identity=role.output).after(lock), "resolve_tags"
                )
                images = configure(c["copy_images"](plan=plan, tags=tags.output), "copy_images")
                # labels before training (after copy_images, as on Airflow); train_model reads them
                # through the plan's channels, so only the order is wired
                labeled = configure(c["label_data"](plan=plan, tags=tags.output).after(images), "label_data")
                train = configure(
                    c["train_model"](plan=plan, tags=tags.output, images=images.output).after(labeled),
                    "train_model",
                )
                registered = configure(
                    c["register_model"](
                        plan=plan,
                        tags=tags.output,
                        images=images.output,
                        model_data_url=train.outputs["Output"],
                    ),
                    "register_model",
                )
                # which types fit, their price and the pick; deploy_endpoint deploys it for "auto"
                recommended = configure(
                    c["recommend_instance"](plan=plan, tags=tags.output, registered=registered.output),
                    "recommend_instance",
                )
                model = configure(
                    c["create_model"](
                        plan=plan,
                        tags=tags.output,
                        images=images.output,
                        model_data_url=train.outputs["Output"],
                        registered=registered.output,
                    ).after(recommended),
                    "create_model",
                )
                endpoint = configure(
                    c["deploy_endpoint"](
                        plan=recommended.outputs["deploy_plan"], tags=tags.output, model_name=model.output
                    ),
                    "deploy_endpoint",
                )
                exposed = configure(
                    c["expose_api"](plan=plan, tags=tags.output, endpoint=endpoint.output), "expose_api"
                )
                # a data-quality monitor on the endpoint (skips without monitoring); one line of steps
                watch = c["monitor_endpoint"](plan=plan, tags=tags.output, endpoint=endpoint.output)
                monitored = configure(watch.after(exposed), "monitor_endpoint")
                # batch mode: the model scores the conf's S3 prefix (the endpoint steps skip); one line
                # of steps, as on Airflow
                configure(
                    c["batch_transform"](plan=plan, tags=tags.output, model_name=model.output).after(
                        monitored
                    ),
                    "batch_transform",
                )

    # The parameters are the 13 original ones and the serving settings of the one definition,
    # sagelift.domain.params, with their defaults: KFP reads them from this signature and calls the
    # body with them in this order.
    sagemaker_deploy.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=_kfp_type(p)
            )
            for p in PARAMETERS
            if p.name in PIPELINE_PARAMETER_NAMES
        ]
    )
    return dsl.pipeline(
        name=PIPELINE_NAME,
        description="sagelift: train a SageMaker model and expose it as an API in the scientist's account.",
    )(sagemaker_deploy)


def settings_from_env() -> dict:
    return {
        "base_image": os.environ.get("SAGELIFT_KFP_BASE_IMAGE") or DEFAULT_BASE_IMAGE,
        "packages": tuple(os.environ.get("SAGELIFT_KFP_PACKAGES", "").split()),
        "platform_configmap": os.environ.get("SAGELIFT_KFP_PLATFORM_CONFIGMAP") or DEFAULT_PLATFORM_CONFIGMAP,
    }


def compile_pipeline(output: Path) -> None:
    compiler.Compiler().compile(build_pipeline(**settings_from_env()), package_path=str(output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PACKAGE)
    compile_pipeline(parser.parse_args().output)


if __name__ == "__main__":
    main()
